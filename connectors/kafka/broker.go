package kafka

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is the embedded single-node Kafka broker: franz-go's kfake with its
// data persisted under a directory, so topics survive a restart. Records
// carry log-append time, which Sluice reads as arrival time.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// StartBroker starts the embedded broker listening on addr (host:port; port 0
// picks a free one) and persisting under dataDir/kafka.
func StartBroker(addr, dataDir string, logger *slog.Logger) (*Broker, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: listen on %s: %w (set kafka.embedded.addr to a free address)", addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	used := false
	listen := func(string, string) (net.Listener, error) {
		if used {
			return nil, fmt.Errorf("embedded broker: one listener only")
		}
		used = true
		return ln, nil
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(listen),
		kfake.DataDir(filepath.Join(dataDir, "kafka")),
		kfake.DefaultNumPartitions(DefaultPartitions),
		kfake.BrokerConfigs(map[string]string{"log.message.timestamp.type": "LogAppendTime"}),
		kfake.WithLogger(kfakeLogger{logger}),
	)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &Broker{cluster: c, addr: ln.Addr().String()}, nil
}

// Addr returns the address clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker; its data stays on disk.
func (b *Broker) Close() error {
	b.cluster.Close()
	return nil
}

type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	if k.l == nil || level > kfake.LogLevelWarn || level == kfake.LogLevelNone {
		return
	}
	k.l.Warn(fmt.Sprintf(msg, args...), "component", "broker")
}
