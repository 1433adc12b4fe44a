package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client sends events to a Sluice node's ingest endpoint.
type Client struct {
	URL  string // for example http://127.0.0.1:8080
	HTTP *http.Client
}

// Send posts events (JSON objects) to a stream as one NDJSON request. When
// the node sheds load (429) or cannot reach Kafka (503), it waits for the
// Retry-After the node asked for and tries again until ctx is done; events
// that carry _event_id are never counted twice by such retries.
func (c *Client) Send(ctx context.Context, stream string, events [][]byte) (*Response, error) {
	body := bytes.Join(events, []byte("\n"))
	endpoint := strings.TrimRight(c.URL, "/") + "/v1/streams/" + url.PathEscape(stream) + "/events"
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("no Sluice node answers at %s (start one with `sluice up`, or pass --server): %w", c.URL, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var out Response
			if err := json.Unmarshal(b, &out); err != nil {
				return nil, fmt.Errorf("ingest answer: %w", err)
			}
			return &out, nil
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		var e ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("stream %q: %s (%s)", stream, e.Error, resp.Status)
		}
		return nil, fmt.Errorf("stream %q: %s", stream, resp.Status)
	}
}
