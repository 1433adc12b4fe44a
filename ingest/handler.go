package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/schemas"
)

// Pattern is the route Register installs.
const Pattern = "POST /v1/streams/{stream}/events"

// Defaults of Options.
const (
	DefaultMaxBodyBytes   = 8 << 20
	DefaultMaxInFlight    = 64
	DefaultProduceTimeout = 10 * time.Second
)

// Streams tells ingest which streams exist. Definitions change at run time,
// so ingest asks on every request.
type Streams interface {
	// Stream returns the named stream's definition and a decoder for its
	// current schema, or ok=false.
	Stream(name string) (stream *featurestore.Stream, dec *schemas.Decoder, ok bool)
}

// Options configure a Handler. The zero value of every field means its
// default.
type Options struct {
	// MaxBodyBytes bounds a request body; larger bodies get 413.
	// Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxInFlight bounds the requests handled at once; more get 429 with
	// Retry-After. Default DefaultMaxInFlight.
	MaxInFlight int
	// ProduceTimeout bounds the wait for Kafka's acknowledgements; past it
	// the request gets 503 with Retry-After. Default DefaultProduceTimeout.
	ProduceTimeout time.Duration
	// Logger receives one line per failed produce, never one per event.
	// Default: discard.
	Logger *slog.Logger
	// Registerer receives the sluice_ingest_* metrics. Default: none.
	Registerer prometheus.Registerer
	// Now is the clock used for assigned event ids and for latency.
	// Default time.Now.
	Now func() time.Time
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	if o.MaxBodyBytes < 0 {
		return fmt.Errorf("ingest: MaxBodyBytes is %d: use a positive size or 0 for the default", o.MaxBodyBytes)
	}
	if o.MaxInFlight < 0 {
		return fmt.Errorf("ingest: MaxInFlight is %d: use a positive count or 0 for the default", o.MaxInFlight)
	}
	if o.ProduceTimeout < 0 {
		return fmt.Errorf("ingest: ProduceTimeout is %v: use a positive duration or 0 for the default", o.ProduceTimeout)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.ProduceTimeout <= 0 {
		o.ProduceTimeout = DefaultProduceTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Handler serves POST /v1/streams/{stream}/events. It is stateless apart
// from its in-flight limit; run as many as the load needs.
type Handler struct {
	client  *kgo.Client
	streams Streams
	opts    Options
	log     *slog.Logger
	slots   chan struct{}
	m       *metrics
}

// New returns a Handler that produces with client, which the caller
// configures (acks=all and the idempotent producer, franz-go's defaults, are
// what make a 200 mean the events are durable) and closes. Invalid option
// values are replaced by their defaults; call Options.Validate to catch them.
func New(client *kgo.Client, streams Streams, opts Options) *Handler {
	opts = opts.withDefaults()
	return &Handler{
		client:  client,
		streams: streams,
		opts:    opts,
		log:     opts.Logger.With("component", "ingest"),
		slots:   make(chan struct{}, opts.MaxInFlight),
		m:       newMetrics(opts.Registerer),
	}
}

// Register installs the handler on mux under Pattern. The pattern answers
// other methods with 405.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(Pattern, h)
}

// Response is the body of a 200 answer.
type Response struct {
	// Accepted counts the events Kafka acknowledged.
	Accepted int `json:"accepted"`
	// Rejected lists the invalid events; never null.
	Rejected []Rejection `json:"rejected"`
}

// Rejection names one invalid event by its 0-based position in the body.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// ErrorResponse is the body of every answer other than 200.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ServeHTTP handles one batch of events for the stream named by the
// {stream} path value.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	stream, dec, ok := h.streams.Stream(name)
	if !ok {
		h.fail(w, http.StatusNotFound, fmt.Sprintf("unknown stream %q (apply a feature repository that defines it)", name))
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		h.fail(w, http.StatusTooManyRequests, fmt.Sprintf(
			"too many ingest requests in flight (the limit is %d); retry after 1 second", h.opts.MaxInFlight))
		return
	}

	body, err := h.readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"request body is larger than the limit of %d bytes (http.max_body_bytes): send fewer events per request", h.opts.MaxBodyBytes))
			return
		}
		h.fail(w, http.StatusBadRequest, fmt.Sprintf("read request body: %v", err))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		h.fail(w, http.StatusBadRequest, "request body is empty: send NDJSON (one event object per line), a JSON array of event objects, or one event object")
		return
	}
	events, err := splitBody(body, isNDJSON(r.Header.Get("Content-Type")))
	if err != nil {
		h.fail(w, http.StatusBadRequest, fmt.Sprintf("stream %q: request body: %v; nothing was written", name, err))
		return
	}

	b := h.newBatch(stream, dec, events)
	res := h.produce(r.Context(), stream, b)
	h.m.rejected.WithLabelValues(stream.Name).Add(float64(len(b.rejected)))
	h.m.accepted.WithLabelValues(stream.Name).Add(float64(res.acked))
	if res.err != nil {
		h.log.Warn("produce failed", "stream", stream.Name, "topic", stream.Topic,
			"records", len(b.records), "acknowledged", res.acked, "err", res.err)
		w.Header().Set("Retry-After", "1")
		h.fail(w, http.StatusServiceUnavailable, res.message(stream, len(b.records)))
		return
	}
	resp := Response{Accepted: res.acked, Rejected: b.rejected}
	if resp.Rejected == nil {
		resp.Rejected = []Rejection{}
	}
	h.reply(w, http.StatusOK, resp)
}

// readBody reads the whole body, refusing more than MaxBodyBytes.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	size := r.ContentLength
	if size < 0 {
		size = 64 << 10
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (h *Handler) fail(w http.ResponseWriter, code int, msg string) {
	h.reply(w, code, ErrorResponse{Error: msg})
}

func (h *Handler) reply(w http.ResponseWriter, code int, v any) {
	h.m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	out, err := json.Marshal(v)
	if err != nil { // the response types always marshal
		panic(fmt.Sprintf("ingest: marshal response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	out = append(out, '\n')
	if _, err := w.Write(out); err != nil {
		h.log.Debug("write response", "err", err)
	}
}
