package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is sluice.yaml (DESIGN.md section 7). Every field is optional.
type Config struct {
	DataDir    string           `yaml:"data_dir"`
	HTTP       HTTPConfig       `yaml:"http"`
	Kafka      KafkaConfig      `yaml:"kafka"`
	ClickHouse ClickHouseConfig `yaml:"clickhouse"`
	Flight     FlightConfig     `yaml:"flight"`
	Auth       AuthConfig       `yaml:"auth"`
	Online     OnlineConfig     `yaml:"online"`
	Offline    OfflineConfig    `yaml:"offline"`
	Log        LogConfig        `yaml:"log"`
}

type HTTPConfig struct {
	Addr         string    `yaml:"addr"`
	TLS          TLSConfig `yaml:"tls"`
	MaxBodyBytes int64     `yaml:"max_body_bytes"`
}

type TLSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

type KafkaConfig struct {
	Brokers  []string `yaml:"brokers"`
	Embedded struct {
		Addr string `yaml:"addr"`
	} `yaml:"embedded"`
	SASL struct {
		Mechanism string `yaml:"mechanism"`
		User      string `yaml:"user"`
		Password  string `yaml:"password"`
	} `yaml:"sasl"`
	TLS struct {
		Enabled bool   `yaml:"enabled"`
		CA      string `yaml:"ca"`
	} `yaml:"tls"`
}

type ClickHouseConfig struct {
	Addr     string `yaml:"addr"`
	Database string `yaml:"database"`
	Managed  string `yaml:"managed"`
}

type FlightConfig struct {
	Addr string `yaml:"addr"`
}

type AuthConfig struct {
	Tokens []map[string]any `yaml:"tokens"`
}

type OnlineConfig struct {
	// DedupeHorizon is how long the online store remembers event ids.
	DedupeHorizon time.Duration `yaml:"dedupe_horizon"`
}

type OfflineConfig struct {
	// FlushInterval bounds how long a busy stream's events wait before
	// they are written to Parquet.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// defaultConfig returns the defaults of DESIGN.md section 7.
func defaultConfig() Config {
	var c Config
	c.DataDir = "./data"
	c.HTTP.Addr = ":8080"
	c.HTTP.MaxBodyBytes = 8 << 20
	c.Kafka.Embedded.Addr = "127.0.0.1:9092"
	c.ClickHouse.Database = "sluice"
	c.ClickHouse.Managed = "auto"
	c.Flight.Addr = ":8815"
	c.Online.DedupeHorizon = 24 * time.Hour
	c.Offline.FlushInterval = 10 * time.Second
	c.Log.Level = "info"
	c.Log.Format = "text"
	return c
}

// loadConfig reads path (if not empty) over the defaults.
func loadConfig(path string) (Config, error) {
	c := defaultConfig()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, c.Validate()
}

// Validate checks the config and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: empty (set a directory, for example ./data)"))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr: %q: %v (use host:port, for example :8080)", c.HTTP.Addr, err))
	}
	if len(c.Kafka.Brokers) == 0 {
		if _, _, err := net.SplitHostPort(c.Kafka.Embedded.Addr); err != nil {
			errs = append(errs, fmt.Errorf("kafka.embedded.addr: %q: %v (use host:port, for example 127.0.0.1:9092)", c.Kafka.Embedded.Addr, err))
		}
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("http.max_body_bytes: must be positive"))
	}
	if (c.HTTP.TLS.Cert == "") != (c.HTTP.TLS.Key == "") {
		errs = append(errs, errors.New("http.tls: set both cert and key, or neither"))
	}
	if c.Kafka.SASL.Mechanism != "" && c.Kafka.SASL.Mechanism != "PLAIN" {
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: %q is not supported yet (use PLAIN)", c.Kafka.SASL.Mechanism))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q (use debug, info, warn or error)", c.Log.Level))
	}
	if c.Online.DedupeHorizon <= 0 {
		errs = append(errs, errors.New("online.dedupe_horizon: must be positive (for example 24h)"))
	}
	if c.Offline.FlushInterval <= 0 {
		errs = append(errs, errors.New("offline.flush_interval: must be positive (for example 10s)"))
	}
	return errors.Join(errs...)
}
