package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// ndjsonBody returns n events of about 120 bytes over 10,000 users.
func ndjsonBody(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"user_id":"user-%05d","amount":%d.%02d,"ts":"2024-05-01T10:%02d:%02d.%03dZ","country":"DE"}`+"\n",
			i*7919%10000, i%1000, i%100, i/60%60, i%60, i%1000)
	}
	return b.Bytes()
}

// BenchmarkIngest posts 1,000-event NDJSON requests over 1 and 8
// connections to a handler producing to an in-process broker.
func BenchmarkIngest(b *testing.B) {
	const perRequest = 1000
	body := ndjsonBody(perRequest)
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			e := newEnv(b, Options{Now: time.Now})
			hc := e.srv.Client()
			hc.Transport.(*http.Transport).MaxIdleConnsPerHost = conns
			url := e.srv.URL + "/v1/streams/transactions/events"
			errs := make([]error, conns)
			events := 0
			b.SetBytes(int64(len(body) * conns))
			for b.Loop() {
				var wg sync.WaitGroup
				for c := range conns {
					wg.Go(func() { errs[c] = postOK(hc, url, body) })
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				events += perRequest * conns
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func postOK(hc *http.Client, url string, body []byte) error {
	resp, err := hc.Post(url, "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(out, []byte(`{"accepted":1000,"rejected":[]}`)) {
		return fmt.Errorf("status %d: %s", resp.StatusCode, out)
	}
	return nil
}
