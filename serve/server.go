package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
)

// Check is one readiness check: nil when ready, else why not.
type Check func(ctx context.Context) error

// Options configures a Server.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Now        func() time.Time
	// Ready lists the checks of GET /readyz by name.
	Ready map[string]Check
	// CaughtUp says whether a view version has caught up with its stream
	// (stream.CaughtUp over the online store). Until it has, features are
	// read from the view's previous version. Nil reads the current version
	// always.
	CaughtUp CaughtUpFunc
}

// CaughtUpFunc reports whether a view version has caught up with its
// stream.
type CaughtUpFunc func(repo *featurestore.Repo, cv *featurestore.CompiledView) (bool, error)

// Server serves features, the registry and health endpoints.
type Server struct {
	registry *featurestore.Registry
	store    *online.Store
	opts     Options
	views    compiled
	latency  *prometheus.HistogramVec
}

// New returns a server over a registry and an online store.
func New(reg *featurestore.Registry, store *online.Store, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{registry: reg, store: store, opts: opts}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_serve_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route and status code.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"route", "code"})
	opts.Registerer.MustRegister(s.latency)
	return s
}

func (s *Server) now() time.Time { return s.opts.Now() }

// Register adds the server's routes to mux; without an online store, the
// feature route is left out.
func (s *Server) Register(mux *http.ServeMux) {
	if s.store != nil {
		mux.Handle("POST /get-online-features", s.timed("get-online-features", s.getOnlineFeatures))
	}
	mux.Handle("GET /v1/registry", s.timed("registry", s.getRegistry))
	mux.Handle("POST /v1/registry/apply", s.timed("registry-apply", s.applyRegistry))
	mux.Handle("GET /v1/datasets", s.timed("datasets", s.listDatasets))
	mux.Handle("GET /v1/datasets/{id}", s.timed("dataset", s.getDataset))
	mux.Handle("POST /v1/datasets", s.timed("datasets-register", s.registerDataset))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status := map[string]string{}
	code := http.StatusOK
	for name, check := range s.opts.Ready {
		if err := check(ctx); err != nil {
			status[name] = err.Error()
			code = http.StatusServiceUnavailable
		} else {
			status[name] = "ok"
		}
	}
	writeJSON(w, code, status)
}

// ApplyRequest is the body of POST /v1/registry/apply: the repository's
// files by name.
type ApplyRequest struct {
	Files  map[string]string `json:"files"`
	DryRun bool              `json:"dry_run"`
}

// ApplyResponse is the answer of POST /v1/registry/apply.
type ApplyResponse struct {
	Changed bool                  `json:"changed"`
	Plan    string                `json:"plan"`
	Changes []featurestore.Change `json:"changes"`
}

func (s *Server) applyRegistry(w http.ResponseWriter, r *http.Request) {
	var req ApplyRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		writeBodyError(w, err)
		return
	}
	files := map[string][]byte{}
	for name, text := range req.Files {
		files[name] = []byte(text)
	}
	plan, err := ApplyFiles(r.Context(), s.registry, files, req.DryRun)
	switch {
	case errors.Is(err, featurestore.ErrRegistryUnavailable):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err)
		return
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusOK, ApplyResponse{Changed: plan.Changed(), Plan: plan.String(), Changes: plan.Changes})
}

// ApplyFiles parses a feature repository's files and applies them.
func ApplyFiles(ctx context.Context, reg *featurestore.Registry, files map[string][]byte, dryRun bool) (*featurestore.Plan, error) {
	next, err := featurestore.Parse(files)
	if err != nil {
		return nil, err
	}
	return reg.Apply(ctx, next, dryRun)
}

func (s *Server) getRegistry(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.registry.Repo())
}

func (s *Server) timed(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		s.latency.WithLabelValues(route, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// writeBodyError answers a body that could not be read: 413 when too large.
func writeBodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", tooBig.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
