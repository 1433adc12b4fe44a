package testkit

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/connectors/clickhouse"
)

func TestStartClickHouse(t *testing.T) {
	ch := StartClickHouse(t)

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + ch.HTTPAddr() + "/?query=" + url.QueryEscape("SELECT 40 + 2, toString(toDateTime(86400))"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(body), "42\t1970-01-02 00:00:00\n"; got != want {
		t.Errorf("HTTP interface answered %q, want %q", got, want)
	}

	c := ch.Client(t, "sluice_testkit")
	if v := c.Version(); !v.AtLeast(18, 16) {
		t.Errorf("version %v: want 18.16 or later", v)
	}
	res, err := c.Query(context.Background(), "SELECT name FROM system.databases WHERE name = 'sluice_testkit'", clickhouse.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]any{{"sluice_testkit"}}, res.Rows); diff != "" {
		t.Errorf("Open did not create the database (-want +got):\n%s", diff)
	}

	// The server stops cleanly on request, and its ports close.
	c.Close()
	start := time.Now()
	if err := ch.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Get("http://" + ch.HTTPAddr() + "/ping"); err == nil {
		t.Error("the server still answers after Stop")
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
}
