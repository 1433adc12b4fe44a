package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// Request is the body of POST /get-online-features.
type Request struct {
	Features         []string                 `json:"features,omitempty"`
	FeatureService   string                   `json:"feature_service,omitempty"`
	Entities         map[string][]EntityValue `json:"entities"`
	FullFeatureNames bool                     `json:"full_feature_names"`
	At               string                   `json:"at,omitempty"`
}

// Response is Feast's Column-oriented answer.
type Response struct {
	Metadata struct {
		FeatureNames []string `json:"feature_names"`
	} `json:"metadata"`
	Results []Column `json:"results"`
}

// Column holds one feature's values, statuses and event timestamps, one per
// requested row.
type Column struct {
	Values          []any    `json:"values"`
	Statuses        []string `json:"statuses"`
	EventTimestamps []string `json:"event_timestamps"`
}

// ref is one requested feature.
type ref struct {
	view    *featurestore.CompiledView
	feature int
}

const epoch = "1970-01-01T00:00:00Z"

// compiled caches the compiled views of one registry version.
type compiled struct {
	mu    sync.Mutex
	repo  *featurestore.Repo
	views map[string]*servedView
}

// servedView is a view's current version and its previous one, which
// reads use until the current version has caught up.
type servedView struct {
	current, previous *featurestore.CompiledView
	ready             bool // the current version has caught up
	checked           time.Time
}

// recheck is how often a view version that is catching up is checked
// again.
const recheck = 100 * time.Millisecond

// get returns the versions of a view to read: the current one, and the
// previous one while the current is catching up (nil otherwise). caughtUp
// nil serves the current version always.
func (c *compiled) get(repo *featurestore.Repo, name string, caughtUp CaughtUpFunc) (cur, prev *featurestore.CompiledView, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.repo != repo {
		c.repo, c.views = repo, map[string]*servedView{}
	}
	sv, ok := c.views[name]
	if !ok {
		cv, err := featurestore.Compile(repo, name)
		if err != nil {
			return nil, nil, err
		}
		sv = &servedView{current: cv}
		// A previous version that no longer compiles is not served.
		sv.previous, _ = featurestore.CompilePrevious(repo, name)
		c.views[name] = sv
	}
	if sv.previous == nil || sv.ready || caughtUp == nil {
		return sv.current, nil, nil
	}
	if now := time.Now(); now.Sub(sv.checked) >= recheck {
		up, err := caughtUp(repo, sv.current)
		if err != nil {
			return nil, nil, fmt.Errorf("feature view %q: %w", name, err)
		}
		sv.ready, sv.checked = up, now
	}
	if sv.ready {
		return sv.current, nil, nil
	}
	return sv.current, sv.previous, nil
}

func (s *Server) getOnlineFeatures(w http.ResponseWriter, r *http.Request) {
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		writeBodyError(w, err)
		return
	}
	resp, err := s.lookup(&req)
	if err != nil {
		var bad *badRequest
		if errors.As(err, &bad) {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

func (s *Server) lookup(req *Request) (*Response, error) {
	t := s.now().UnixMicro()
	if req.At != "" {
		at, err := time.Parse(time.RFC3339Nano, req.At)
		if err != nil {
			return nil, badf("at: %q is not an RFC 3339 time (for example 2026-01-02T15:04:05Z)", req.At)
		}
		t = at.UnixMicro()
	}
	refs, err := s.resolve(req)
	if err != nil {
		return nil, err
	}
	rows := -1
	for name, vals := range req.Entities {
		if rows >= 0 && len(vals) != rows {
			return nil, badf("entities: %q has %d values but others have %d (give one value per row for every key)", name, len(vals), rows)
		}
		rows = len(vals)
	}
	if rows < 0 {
		return nil, badf("entities: none given (for example {\"user_id\": [\"u1\"]})")
	}
	resp := &Response{}
	for _, k := range entityColumns(refs, req.Entities) {
		col := newColumn(rows)
		for _, v := range req.Entities[k] {
			col.Values = append(col.Values, v.json())
			col.Statuses = append(col.Statuses, window.Present.String())
			col.EventTimestamps = append(col.EventTimestamps, epoch)
		}
		resp.Metadata.FeatureNames = append(resp.Metadata.FeatureNames, k)
		resp.Results = append(resp.Results, col)
	}
	for _, group := range groupByView(refs) {
		cols, err := s.readView(group, req, rows, t)
		if err != nil {
			return nil, err
		}
		for i, rf := range group {
			name := rf.view.View.Features[rf.feature].Name
			if req.FullFeatureNames {
				name = rf.view.View.Name + "__" + name
			}
			resp.Metadata.FeatureNames = append(resp.Metadata.FeatureNames, name)
			resp.Results = append(resp.Results, cols[i])
		}
	}
	return resp, nil
}

// resolve turns the Request's features or service into references.
func (s *Server) resolve(req *Request) ([]ref, error) {
	repo := s.registry.Repo()
	sel, err := repo.Select(req.Features, req.FeatureService)
	if err != nil {
		// The request's field is feature_service.
		return nil, &badRequest{strings.ReplaceAll(err.Error(), "feature service", "feature_service")}
	}
	refs := make([]ref, len(sel))
	for i, fr := range sel {
		cv, prev, err := s.views.get(repo, fr.View, s.opts.CaughtUp)
		if err != nil {
			return nil, err
		}
		refs[i] = ref{cv, fr.Feature}
		if prev == nil {
			continue
		}
		// The previous version serves the features it has; one that is
		// new comes from the current version as far as it has got.
		name := cv.View.Features[fr.Feature].Name
		if j := slices.IndexFunc(prev.View.Features, func(f featurestore.Feature) bool { return f.Name == name }); j >= 0 {
			refs[i] = ref{prev, j}
		}
	}
	return refs, nil
}

// readView evaluates one view's requested features for every row.
func (s *Server) readView(group []ref, req *Request, rows int, t int64) ([]Column, error) {
	cv := group[0].view
	keys := make([]string, rows)
	parts := make([]string, len(cv.Entity.Keys))
	for row := range rows {
		for i, k := range cv.Entity.Keys {
			vals, ok := req.Entities[k]
			if !ok {
				return nil, badf("entities: missing %q (feature view %q is keyed by %s)", k, cv.View.Name, strings.Join(cv.Entity.Keys, ", "))
			}
			text, err := canonicalKey(vals[row], cv.Entity, i)
			if err != nil {
				return nil, err
			}
			parts[i] = text
		}
		keys[row] = schemas.JoinKey(parts)
	}
	if t < s.now().Add(-cv.Retention).UnixMicro() {
		return nil, badf("at: feature view %q keeps state for %s; read at a time within that of now", cv.View.Name, cv.Retention)
	}
	which := make([]int, len(group))
	for i, rf := range group {
		which[i] = rf.feature
	}
	cols := make([]Column, len(group))
	for i := range cols {
		cols[i] = newColumn(rows)
	}
	out := make([]window.Value, len(which))
	err := s.store.ReadState(cv.View.Name, cv.View.Version, keys, cv.Layout, func(_ int, st *window.State, raw window.RawFunc) error {
		cv.Layout.EvalSpecs(t, st, raw, which, out)
		for i, v := range out {
			cols[i].Values = append(cols[i].Values, jsonValue(v.V))
			cols[i].Statuses = append(cols[i].Statuses, v.Status.String())
			ts := epoch
			if v.HasTime {
				ts = time.UnixMicro(v.Time).UTC().Format(time.RFC3339Nano)
			}
			cols[i].EventTimestamps = append(cols[i].EventTimestamps, ts)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read feature view %q: %w", cv.View.Name, err)
	}
	return cols, nil
}

// newColumn returns an empty column with room for rows values; its lists
// are never null in JSON.
func newColumn(rows int) Column {
	return Column{Values: make([]any, 0, rows), Statuses: make([]string, 0, rows), EventTimestamps: make([]string, 0, rows)}
}

// canonicalKey renders key part i of an entity as the stream engine does:
// an int64 key in canonical decimal form.
func canonicalKey(v EntityValue, ent *featurestore.Entity, i int) (string, error) {
	if i >= len(ent.Types) || ent.Types[i] != schemas.Int64 {
		return v.text, nil
	}
	n, err := strconv.ParseInt(v.text, 10, 64)
	if err != nil {
		return "", badf("entities: %s: %q is not an int64 (entity %q has int64 keys)", ent.Keys[i], v.text, ent.Name)
	}
	return strconv.FormatInt(n, 10), nil
}

// groupByView groups references by view, keeping the Request's order.
func groupByView(refs []ref) [][]ref {
	var groups [][]ref
	at := map[*featurestore.CompiledView]int{}
	for _, r := range refs {
		i, ok := at[r.view]
		if !ok {
			i = len(groups)
			at[r.view] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], r)
	}
	return groups
}

// entityColumns orders the key columns: the views' keys first, then any
// other requested key, by name.
func entityColumns(refs []ref, entities map[string][]EntityValue) []string {
	var cols []string
	for _, r := range refs {
		for _, k := range r.view.Entity.Keys {
			if _, ok := entities[k]; ok && !slices.Contains(cols, k) {
				cols = append(cols, k)
			}
		}
	}
	var rest []string
	for k := range entities {
		if !slices.Contains(cols, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(cols, rest...)
}

// EntityValue is one entity key value of a Request: a JSON string or an
// integer, kept in its canonical text form.
type EntityValue struct {
	text   string
	number bool
}

// StringKey is a string key value.
func StringKey(s string) EntityValue { return EntityValue{text: s} }

// IntKey is an integer key value.
func IntKey(i int64) EntityValue { return EntityValue{text: strconv.FormatInt(i, 10), number: true} }

// MarshalJSON renders the value as the caller sent it.
func (v EntityValue) MarshalJSON() ([]byte, error) { return json.Marshal(v.json()) }

// UnmarshalJSON accepts a JSON string or integer.
func (v *EntityValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.number = false
		return json.Unmarshal(b, &v.text)
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("entity key %s: want a string or an integer", b)
	}
	i, err := n.Int64()
	if err != nil {
		return fmt.Errorf("entity key %s: want a string or an integer", b)
	}
	v.text, v.number = strconv.FormatInt(i, 10), true
	return nil
}

// json renders the value back as the caller sent it.
func (v EntityValue) json() any {
	if v.number {
		i, _ := strconv.ParseInt(v.text, 10, 64)
		return i
	}
	return v.text
}

// jsonValue maps a feature value to JSON; non-finite floats become null.
func jsonValue(v any) any {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil
	}
	return v
}
