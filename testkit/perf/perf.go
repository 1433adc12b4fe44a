package perf

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
)

// Figure is one measured value, optionally beside its peer's.
type Figure struct {
	Name      string
	Value     float64
	Unit      string
	Peer      string // "" when there is none
	PeerValue float64
	PeerUnit  string
}

// String renders the summary line of DESIGN.md section 10.
func (f Figure) String() string {
	s := fmt.Sprintf("%s: %s %s", f.Name, num(f.Value), f.Unit)
	if f.Peer != "" {
		s += fmt.Sprintf(" | peer %s: %s %s", f.Peer, num(f.PeerValue), f.PeerUnit)
		if f.PeerValue != 0 {
			s += fmt.Sprintf(" | ratio %.2f", f.Value/f.PeerValue)
		}
	}
	return s
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// Options are shared by the benchmarks.
type Options struct {
	Dir      string    // scratch directory; a temporary one when empty
	Progress io.Writer // progress lines; nil discards them
	Events   int       // events to use (0: the benchmark's default)
	Rate     int       // events per second for steady-load benchmarks
	Duration time.Duration
	// Bin is the sluice binary for steps that run in their own process
	// (default: this executable, which is sluice under `sluice bench`).
	Bin string
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// scratch returns the scratch directory and a cleanup.
func (o *Options) scratch() (string, func(), error) {
	if o.Dir != "" {
		return o.Dir, func() {}, os.MkdirAll(o.Dir, 0o755)
	}
	dir, err := os.MkdirTemp("", "sluice-bench-")
	return dir, func() { os.RemoveAll(dir) }, err
}

// cluster is an embedded broker, producers and a registry over it.
type cluster struct {
	broker   *kafka.Broker
	kc       kafka.Cluster
	producer *kgo.Client
	// changelog is the stream engine's producer, without linger as
	// `sluice up` gives it.
	changelog *kgo.Client
	registry  *featurestore.Registry
}

func startCluster(ctx context.Context, dir, repoYAML string) (*cluster, error) {
	b, err := kafka.StartBroker("127.0.0.1:0", filepath.Join(dir, "broker"), nil)
	if err != nil {
		return nil, err
	}
	c := &cluster{broker: b, kc: kafka.Cluster{Brokers: []string{b.Addr()}}}
	if c.producer, err = c.kc.Producer(kgo.ProducerBatchMaxBytes(1 << 20)); err != nil {
		c.close()
		return nil, err
	}
	if c.changelog, err = c.kc.Producer(kgo.ProducerLinger(0)); err != nil {
		c.close()
		return nil, err
	}
	log, err := kafka.NewRegistryLog(ctx, c.kc, c.producer)
	if err != nil {
		c.close()
		return nil, err
	}
	c.registry, err = featurestore.OpenRegistry(ctx, log, func(ctx context.Context, next *featurestore.Repo) error {
		return kafka.EnsureTopics(ctx, c.producer, kafka.TopicsFor(next)...)
	})
	if err != nil {
		c.close()
		return nil, err
	}
	repo, err := featurestore.Parse(map[string][]byte{"bench.yaml": []byte(repoYAML)})
	if err != nil {
		c.close()
		return nil, err
	}
	if _, err := c.registry.Apply(ctx, repo, false); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// setup makes the scratch directory and a cluster with the example's
// repository; close undoes both.
func setup(ctx context.Context, o *Options) (dir string, c *cluster, close func(), err error) {
	dir, cleanup, err := o.scratch()
	if err != nil {
		return "", nil, nil, err
	}
	if c, err = startCluster(ctx, dir, fraudRepo); err != nil {
		cleanup()
		return "", nil, nil, err
	}
	return dir, c, func() { c.close(); cleanup() }, nil
}

// catchUp runs a job until its lag is zero and returns how long that took.
func catchUp(ctx context.Context, run func(context.Context) error, lag func(context.Context) (int64, error)) (time.Duration, error) {
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run(runCtx) }()
	for {
		n, err := lag(ctx)
		if err == nil && n == 0 {
			break
		}
		if ctx.Err() != nil {
			cancel()
			<-done
			return 0, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	cancel()
	return took, <-done
}

func (c *cluster) close() {
	if c.producer != nil {
		c.producer.Close()
	}
	if c.changelog != nil {
		c.changelog.Close()
	}
	c.broker.Close()
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

// fraudRepo is the example's transactions stream with a view of 5 windowed
// and 2 last-value features (DESIGN.md section 10, stream benchmark).
const fraudRepo = `
kind: entity
name: user
key: user_id
---
kind: stream
name: transactions
entity: user
timestamp: ts
timestamp_unit: ms
schema:
  - {name: txn_id, type: string}
  - {name: user_id, type: string}
  - {name: merchant_id, type: string}
  - {name: amount, type: float64}
  - {name: country, type: string, nullable: true}
  - {name: is_fraud, type: bool, nullable: true}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: user_txn
entity: user
source: transactions
features:
  - {name: last_amount, field: amount, agg: last, ttl: 30d}
  - {name: last_country, field: country, agg: last, ttl: 30d}
  - {name: txn_count_1h, agg: count, window: 1h}
  - {name: amount_sum_24h, field: amount, agg: sum, window: 24h}
  - {name: amount_mean_7d, field: amount, agg: mean, window: 7d}
  - {name: amount_max_7d, field: amount, agg: max, window: 7d, hop: 1h}
  - {name: merchants_24h, field: merchant_id, agg: approx_distinct, window: 24h}
`

// Names lists the benchmarks.
var Names = []string{"stream", "freshness", "ingest", "offline", "pit", "memory"}

// Run runs the named benchmark and returns its figures.
func Run(ctx context.Context, name string, o Options) ([]Figure, error) {
	switch name {
	case "stream":
		return Stream(ctx, o)
	case "freshness":
		return Freshness(ctx, o)
	case "ingest":
		return Ingest(ctx, o)
	case "offline":
		return Offline(ctx, o)
	case "pit":
		return PIT(ctx, o)
	case "memory":
		return Memory(ctx, o)
	}
	return nil, fmt.Errorf("unknown benchmark %q (have %s)", name, strings.Join(Names, ", "))
}
