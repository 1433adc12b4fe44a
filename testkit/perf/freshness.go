package perf

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/stream"
)

// Freshness measures the time from ingest's acknowledgement of an event to
// the moment a read of the online store includes it, under a steady load.
// Every 20 ms a probe event of a fresh entity is posted; a watcher reads
// that entity's features every millisecond until they count it.
func Freshness(ctx context.Context, o Options) ([]Figure, error) {
	rate, dur := o.Rate, o.Duration
	if rate == 0 {
		rate = 50_000
	}
	if dur == 0 {
		dur = 15 * time.Second
	}
	dir, c, closeAll, err := setup(ctx, &o)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	store, err := online.Open(filepath.Join(dir, "online"), online.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	eng := stream.NewEngine(c.kc, c.registry, store, c.changelog, stream.Options{})
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(runCtx) }()
	defer func() { cancel(); <-engDone }()

	mux := http.NewServeMux()
	ingest.New(c.producer, ingest.RegistryStreams(c.registry), ingest.Options{MaxInFlight: 256}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	o.progress("freshness: %d events/s for %s, a probe every 20 ms", rate, dur)
	loadDone := make(chan struct{})
	var achieved float64
	go func() { defer close(loadDone); achieved = steadyLoad(runCtx, srv.URL, rate, dur) }()
	lat, err := probe(runCtx, srv.URL, store, c.registry.Repo(), dur)
	<-loadDone
	if err != nil {
		return nil, err
	}
	if len(lat) < 10 {
		return nil, fmt.Errorf("freshness: only %d probes came through after the warm-up", len(lat))
	}
	sortDurations(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return []Figure{
		{Name: "freshness_load", Value: achieved, Unit: "events/s"},
		{Name: "freshness_p50", Value: ms(percentile(lat, 50)), Unit: "ms"},
		{Name: "freshness_p99", Value: ms(percentile(lat, 99)), Unit: "ms"},
	}, nil
}

// steadyLoad posts rate events per second in 500-event requests from 4
// connections until dur has passed, and returns the rate it achieved.
func steadyLoad(ctx context.Context, url string, rate int, dur time.Duration) float64 {
	const perRequest, conns = 500, 4
	bodies := fraudBodies(8, perRequest)
	interval := time.Duration(float64(time.Second) * perRequest * conns / float64(rate))
	start := time.Now()
	deadline := start.Add(dur)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := w; time.Now().Before(deadline); i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if post(ctx, url, bodies[i%len(bodies)]) == nil {
					sent.Add(perRequest)
				}
			}
		}()
	}
	wg.Wait()
	return float64(sent.Load()) / time.Since(start).Seconds()
}

// probe posts one event of a new entity every 20 ms and returns, for each,
// the time from acknowledgement to visibility in the online store.
func probe(ctx context.Context, url string, store *online.Store, repo *featurestore.Repo, dur time.Duration) ([]time.Duration, error) {
	cv, err := featurestore.Compile(repo, "user_txn")
	if err != nil {
		return nil, err
	}
	count := -1
	for i, f := range cv.View.Features {
		if f.Name == "txn_count_1h" {
			count = i
		}
	}
	which := []int{count}
	out := make([]window.Value, 1)
	var lat []time.Duration
	// The first two seconds warm up: their probes are not counted.
	warm := time.Now().Add(2 * time.Second)
	deadline := time.Now().Add(dur)
	for i := 0; time.Now().Before(deadline); i++ {
		key := fmt.Sprintf("probe-%06d", i)
		ev := fmt.Sprintf(`{"txn_id":"p%d","user_id":%q,"merchant_id":"m","amount":1,"ts":%d}`, i, key, time.Now().UnixMilli())
		if err := post(ctx, url, [][]byte{[]byte(ev)}); err != nil {
			return nil, err
		}
		acked := time.Now()
		for {
			t := time.Now().Add(time.Second).UnixMicro()
			err := store.ReadState(cv.View.Name, cv.View.Version, []string{key}, cv.Layout, func(_ int, st *window.State, raw window.RawFunc) error {
				cv.Layout.EvalSpecs(t, st, raw, which, out)
				return nil
			})
			if err != nil {
				return nil, err
			}
			if out[0].V == int64(1) {
				if acked.After(warm) {
					lat = append(lat, time.Since(acked))
				}
				break
			}
			if time.Since(acked) > 30*time.Second {
				return nil, fmt.Errorf("freshness: probe %s not visible after 30 s", key)
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Until(acked.Add(20 * time.Millisecond)))
	}
	return lat, nil
}
