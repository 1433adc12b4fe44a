package perf

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/testkit"
)

// Stream measures the stream engine's throughput applying a view of 5
// windowed and 2 last-value features to events already in an 8-partition
// topic, beside the rate at which a plain franz-go consumer reads the same
// topic in the same run.
func Stream(ctx context.Context, o Options) ([]Figure, error) {
	n := o.Events
	if n == 0 {
		n = 500_000
	}
	dir, c, closeAll, err := setup(ctx, &o)
	if err != nil {
		return nil, err
	}
	defer closeAll()

	o.progress("stream: producing %d events of 100,000 users to 8 partitions", n)
	if err := produceFraud(ctx, c.producer, n, 100_000); err != nil {
		return nil, err
	}
	o.progress("stream: consuming them with a plain franz-go consumer")
	raw, err := consumeRate(ctx, c, n)
	if err != nil {
		return nil, err
	}
	o.progress("stream: applying them with the stream engine")
	store, err := online.Open(filepath.Join(dir, "online"), online.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	eng := stream.NewEngine(c.kc, c.registry, store, c.changelog, stream.Options{})
	took, err := catchUp(ctx, eng.Run, func(ctx context.Context) (int64, error) { return eng.Lag(ctx, c.registry) })
	if err != nil {
		return nil, err
	}
	return []Figure{{
		Name: "stream", Value: float64(n) / took.Seconds(), Unit: "events/s",
		Peer: "franz-go-consume", PeerValue: raw, PeerUnit: "events/s",
	}}, nil
}

// produceFraud writes n fraud events of users users, spread over the last
// week, keyed by user.
func produceFraud(ctx context.Context, cl *kgo.Client, n, users int) error {
	gen := testkit.NewFraudGen(1, users, users/50+1)
	now := time.Now()
	var failed atomic.Value
	for i := range n {
		ts := now.Add(-7 * 24 * time.Hour).Add(time.Duration(i) * 7 * 24 * time.Hour / time.Duration(n))
		ev := gen.Next(ts)
		r := &kgo.Record{Topic: "transactions", Key: []byte(ev["user_id"].(string)), Value: gen.JSON(ev, true)}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if err, _ := failed.Load().(error); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

// consumeRate reads the whole topic with a plain consumer and returns its
// rate in records per second.
func consumeRate(ctx context.Context, c *cluster, n int) (float64, error) {
	cl, err := c.kc.Client(kgo.ConsumeTopics("transactions"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	start := time.Now()
	got := 0
	for got < n {
		fs := cl.PollRecords(ctx, 10_000)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		got += fs.NumRecords()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
