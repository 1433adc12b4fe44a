package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "data_dir: /srv/sluice\nhttp: {addr: \"127.0.0.1:9000\"}\nonline: {dedupe_horizon: 2h}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/srv/sluice" || c.HTTP.Addr != "127.0.0.1:9000" || c.Online.DedupeHorizon != 2*time.Hour {
		t.Errorf("config not read: %+v", c)
	}
	// Fields the file leaves out keep their defaults.
	if c.Kafka.Embedded.Addr != "127.0.0.1:9092" || c.HTTP.MaxBodyBytes != 8<<20 || c.Offline.FlushInterval != 10*time.Second {
		t.Errorf("defaults lost: %+v", c)
	}
	if c, err := loadConfig(writeConfig(t, "")); err != nil || c.DataDir != "./data" {
		t.Errorf("empty file: %+v, %v", c, err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"htp: {addr: \":1\"}", "field htp not found"},
		{"http: {addr: \"nonsense\"}", "http.addr"},
		{"log: {level: loud}", `log.level: "loud"`},
		{"http: {tls: {cert: a.pem}}", "http.tls: set both cert and key"},
		{"online: {dedupe_horizon: 0s}", "online.dedupe_horizon"},
		{"kafka: {sasl: {mechanism: GSSAPI}}", "kafka.sasl.mechanism"},
	} {
		_, err := loadConfig(writeConfig(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.want)
		}
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing config file must be an error")
	}
}

func TestParseRole(t *testing.T) {
	if r, err := parseRole("all"); err != nil || !r.ingest || !r.stream || !r.offline {
		t.Errorf("all: %+v %v", r, err)
	}
	if r, err := parseRole("ingest"); err != nil || !r.ingest || r.stream || r.offline {
		t.Errorf("ingest: %+v %v", r, err)
	}
	if r, err := parseRole("serve"); err != nil || !r.serve || r.stream {
		t.Errorf("serve: %+v %v", r, err)
	}
	if _, err := parseRole("flight"); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("flight: %v", err)
	}
	if _, err := parseRole("bogus"); err == nil {
		t.Error("bogus role accepted")
	}
}
