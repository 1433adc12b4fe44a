package perf

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/testkit"
)

// Ingest measures events acknowledged per second by the HTTP ingest
// endpoint: NDJSON bodies of 1,000 events from 8 connections, produced to
// the embedded broker with acks=all.
func Ingest(ctx context.Context, o Options) ([]Figure, error) {
	dur := o.Duration
	if dur == 0 {
		dur = 10 * time.Second
	}
	_, c, closeAll, err := setup(ctx, &o)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	mux := http.NewServeMux()
	ingest.New(c.producer, ingest.RegistryStreams(c.registry), ingest.Options{MaxInFlight: 64}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	const conns, perRequest = 8, 1000
	bodies := fraudBodies(16, perRequest)
	o.progress("ingest: %d connections posting %d-event NDJSON bodies for %s", conns, perRequest, dur)
	var accepted atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &ingest.Client{URL: srv.URL}
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += conns {
				resp, err := client.Send(ctx, "transactions", bodies[i%len(bodies)])
				if err != nil {
					firstErr.Store(err)
					return
				}
				accepted.Add(int64(resp.Accepted))
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	rate := float64(accepted.Load()) / time.Since(start).Seconds()
	return []Figure{{Name: "ingest", Value: rate, Unit: "events/s"}}, nil
}

// fraudBodies renders k request bodies of n events each, as NDJSON lines.
func fraudBodies(k, n int) [][][]byte {
	gen := testkit.NewFraudGen(2, 100_000, 2000)
	now := time.Now()
	out := make([][][]byte, k)
	for i := range out {
		for range n {
			out[i] = append(out[i], gen.JSON(gen.Next(now), false))
		}
	}
	return out
}

// post sends one NDJSON body and returns when it is acknowledged.
func post(ctx context.Context, url string, lines [][]byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/streams/transactions/events", bytes.NewReader(bytes.Join(lines, []byte("\n"))))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ingest answered %s", resp.Status)
	}
	return nil
}
