package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/ksuid"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"golang.org/x/sync/errgroup"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/stream"
)

type upFlags struct {
	repo         string
	role         string
	httpAddr     string
	embeddedAddr string
	brokers      []string
}

func upCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a Sluice node (every role in one process by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if f.httpAddr != "" {
				c.HTTP.Addr = f.httpAddr
			}
			if f.embeddedAddr != "" {
				c.Kafka.Embedded.Addr = f.embeddedAddr
			}
			if len(f.brokers) > 0 {
				c.Kafka.Brokers = f.brokers
			}
			if err := c.Validate(); err != nil {
				return err
			}
			return runUp(cmd.Context(), c, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repo, "repo", "", "feature repository directory to apply at start")
	fl.StringVar(&f.role, "role", "all", "roles to run: all, ingest, stream, offline, serve")
	fl.StringVar(&f.httpAddr, "http.addr", "", "HTTP listen address (overrides http.addr)")
	fl.StringVar(&f.embeddedAddr, "kafka.embedded.addr", "", "embedded broker address (overrides kafka.embedded.addr)")
	fl.StringSliceVar(&f.brokers, "kafka.brokers", nil, "Kafka brokers; none runs the embedded broker")
	return cmd
}

// roles says which parts of a node run.
type roles struct{ ingest, stream, offline, serve bool }

func parseRole(s string) (roles, error) {
	switch s {
	case "all":
		return roles{ingest: true, stream: true, offline: true}, nil
	case "ingest":
		return roles{ingest: true}, nil
	case "stream":
		return roles{stream: true}, nil
	case "offline":
		return roles{offline: true}, nil
	case "serve":
		return roles{serve: true}, nil
	case "monitor", "flight":
		return roles{}, fmt.Errorf("--role %s: not available in this version (use all, ingest, stream, offline or serve)", s)
	}
	return roles{}, fmt.Errorf("--role %q: unknown (use all, ingest, stream, offline or serve)", s)
}

func runUp(ctx context.Context, c Config, f *upFlags) error {
	r, err := parseRole(f.role)
	if err != nil {
		return err
	}
	logger := newLogger(c.Log)
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	cluster, closeBroker, err := kafkaCluster(c, logger)
	if err != nil {
		return err
	}
	defer closeBroker()
	producer, err := cluster.Producer(kafka.SlogLogger(logger))
	if err != nil {
		return err
	}
	defer producer.Close()

	registry, err := openRegistry(ctx, cluster, producer, logger)
	if err != nil {
		return err
	}
	if f.repo != "" {
		if err := applyDir(ctx, registry, f.repo, logger); err != nil {
			return err
		}
	}

	mux := http.NewServeMux()
	ready := map[string]serve.Check{"kafka": func(ctx context.Context) error { return kafka.Ping(ctx, producer) }}
	var jobs []func(context.Context) error

	var store *online.Store
	if r.stream || r.serve {
		store, err = online.Open(filepath.Join(c.DataDir, "online"), online.Options{DedupeHorizon: c.Online.DedupeHorizon, Logger: logger})
		if err != nil {
			return err
		}
		defer store.Close()
		ready["online_store"] = func(context.Context) error { return store.Check() }
		jobs = append(jobs, store.Run)
	}
	if r.serve {
		id, err := replicaID(c.DataDir)
		if err != nil {
			return err
		}
		rep := stream.NewReplica(cluster, registry, store, producer, stream.ReplicaOptions{Logger: logger, Registerer: reg, ID: id})
		jobs = append(jobs, rep.Run)
		ready["replica"] = caughtUp(func(ctx context.Context) (int64, error) { return rep.Lag(ctx, registry) })
	}
	var sink *offline.Sink
	var viewCaughtUp serve.CaughtUpFunc
	if r.offline {
		var err error
		if sink, err = offline.Open(filepath.Join(c.DataDir, "offline"), offline.Options{Logger: logger}); err != nil {
			return err
		}
		defer sink.Close()
		job := stream.NewOfflineSink(cluster, registry, sink, producer, stream.SinkOptions{
			Logger: logger, Registerer: reg, FlushInterval: c.Offline.FlushInterval,
		})
		jobs = append(jobs, job.Run)
	}
	if r.stream {
		opts := stream.Options{Logger: logger, Registerer: reg}
		// New view versions backfill from the offline store of the data
		// directory: through the sink when this process runs it, else
		// from the files an offline worker beside it commits there.
		opts.History = func(ctx context.Context, name string, schema *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error) {
			if sink != nil {
				return sink.History(ctx, name, schema, offline.HistoryOptions{}, fn)
			}
			return offline.ReadHistory(ctx, filepath.Join(c.DataDir, "offline"), name, schema, offline.HistoryOptions{}, fn)
		}
		// The engine waits for each batch's changelog before committing
		// it, so its records go out at once on a client of their own
		// rather than lingering beside ingest's.
		changelog, err := cluster.Producer(kafka.SlogLogger(logger), kgo.ProducerLinger(0))
		if err != nil {
			return err
		}
		defer changelog.Close()
		eng := stream.NewEngine(cluster, registry, store, changelog, opts)
		jobs = append(jobs, eng.Run)
		// A worker that serves reads judges catch-up on the partitions it
		// owns.
		viewCaughtUp = eng.CaughtUp
		ready["stream"] = caughtUp(func(ctx context.Context) (int64, error) { return eng.Lag(ctx, registry) })
	}
	chJob, chSQL, closeCH, err := clickHouseSide(c, r.offline, registry, logger, reg)
	if err != nil {
		return err
	}
	defer closeCH()
	if chJob != nil {
		jobs = append(jobs, chJob)
	}
	chSQL.Register(mux)
	if r.ingest {
		ingest.New(producer, ingest.RegistryStreams(registry), ingest.Options{
			MaxBodyBytes: c.HTTP.MaxBodyBytes, Logger: logger, Registerer: reg,
		}).Register(mux)
	}

	// Readiness checks are complete now; the server reads the map from here on.
	sopts := serve.Options{Logger: logger, Registerer: reg, Gatherer: reg, Ready: ready, CaughtUp: viewCaughtUp}
	if store != nil && viewCaughtUp == nil {
		sopts.CaughtUp = func(repo *featurestore.Repo, cv *featurestore.CompiledView) (bool, error) {
			return stream.CaughtUp(repo, cv, store.Offsets, registry.Ready)
		}
	}
	serve.New(registry, store, sopts).Register(mux)
	srv := &http.Server{Addr: c.HTTP.Addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("sluice up", "http", c.HTTP.Addr, "kafka", cluster.Brokers, "data_dir", c.DataDir, "role", f.role)
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error { return serveHTTP(ectx, srv, c.HTTP.TLS) })
	eg.Go(func() error { return registry.Run(ectx) })
	for _, job := range jobs {
		eg.Go(func() error { return job(ectx) })
	}
	err = eg.Wait()
	// Jobs have committed their state; now flush what ingest produced.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := producer.Flush(flushCtx); ferr != nil {
		logger.Error("flush producer", "err", ferr)
	}
	logger.Info("sluice stopped")
	return err
}

// serveHTTP serves until ctx is done, then drains in-flight requests.
func serveHTTP(ctx context.Context, srv *http.Server, tls TLSConfig) error {
	errc := make(chan error, 1)
	go func() {
		var err error
		if tls.Cert != "" {
			err = srv.ListenAndServeTLS(tls.Cert, tls.Key)
		} else {
			err = srv.ListenAndServe()
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("http: %w (set http.addr to a free address)", err)
		}
		return nil
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return <-errc
}

// kafkaCluster returns the configured cluster, starting the embedded broker
// when no brokers are configured.
func kafkaCluster(c Config, logger *slog.Logger) (kafka.Cluster, func(), error) {
	var opts []kgo.Opt
	if c.Kafka.SASL.Mechanism == "PLAIN" {
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Kafka.SASL.User, Pass: c.Kafka.SASL.Password}.AsMechanism()))
	}
	if c.Kafka.TLS.Enabled {
		opts = append(opts, kgo.DialTLS())
	}
	if len(c.Kafka.Brokers) > 0 {
		return kafka.Cluster{Brokers: c.Kafka.Brokers, Opts: opts}, func() {}, nil
	}
	b, err := kafka.StartBroker(c.Kafka.Embedded.Addr, c.DataDir, logger)
	if err != nil {
		return kafka.Cluster{}, nil, err
	}
	logger.Info("embedded kafka broker", "addr", b.Addr())
	return kafka.Cluster{Brokers: []string{b.Addr()}}, func() { b.Close() }, nil
}

// kafkaWait bounds how long a starting node waits for its Kafka cluster.
const kafkaWait = 2 * time.Minute

// openRegistry loads the registry from its topic, waiting for Kafka to
// answer; applying a plan creates the topics of its streams first.
func openRegistry(ctx context.Context, cluster kafka.Cluster, producer *kgo.Client, logger *slog.Logger) (*featurestore.Registry, error) {
	var log *kafka.RegistryLog
	deadline := time.Now().Add(kafkaWait)
	for {
		var err error
		if log, err = kafka.NewRegistryLog(ctx, cluster, producer); err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("kafka at %v: %w (check kafka.brokers)", cluster.Brokers, err)
		}
		logger.Warn("waiting for kafka", "brokers", cluster.Brokers, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return featurestore.OpenRegistry(ctx, log, func(ctx context.Context, next *featurestore.Repo) error {
		return kafka.EnsureTopics(ctx, producer, kafka.TopicsFor(next)...)
	})
}

func applyDir(ctx context.Context, reg *featurestore.Registry, dir string, logger *slog.Logger) error {
	repo, err := featurestore.ParseDir(dir)
	if err != nil {
		return err
	}
	plan, err := reg.Apply(ctx, repo, false)
	if err != nil {
		return fmt.Errorf("apply %s: %w", dir, err)
	}
	logger.Info("applied feature repository", "dir", dir, "changed", plan.Changed())
	if plan.Changed() {
		fmt.Fprint(os.Stderr, plan.String())
	}
	return nil
}

// replicaID returns the id of a serve replica's consumer group, kept in
// the data dir so a restarted replica resumes where it stopped.
func replicaID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "replica-id")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	id := ksuid.New().String()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("replica id: %w", err)
	}
	return id, nil
}

// maxReadyLag is how far behind the stream engine may be and still be ready.
const maxReadyLag = 10_000

func caughtUp(lag func(context.Context) (int64, error)) serve.Check {
	return func(ctx context.Context) error {
		n, err := lag(ctx)
		if err != nil {
			return err
		}
		if n > maxReadyLag {
			return fmt.Errorf("%d records behind (ready within %d)", n, maxReadyLag)
		}
		return nil
	}
}

func brokerCmd(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka broker alone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			logger := newLogger(c.Log)
			b, err := kafka.StartBroker(addr, c.DataDir, logger)
			if err != nil {
				return err
			}
			logger.Info("embedded kafka broker", "addr", b.Addr(), "data_dir", c.DataDir)
			<-cmd.Context().Done()
			return b.Close()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9092", "listen address")
	return cmd
}
