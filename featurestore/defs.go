package featurestore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// Entity is a thing features describe, identified by one or more key fields.
type Entity struct {
	Name  string         `json:"name"`
	Keys  []string       `json:"keys"`
	Types []schemas.Type `json:"types"`
}

// Stream is a stream of events: a Kafka topic and the schema of its events.
type Stream struct {
	Name   string          `json:"name"`
	Topic  string          `json:"topic"`
	Entity string          `json:"entity"`
	Schema *schemas.Schema `json:"schema"`
}

// Agg names an aggregation; the constants live in package window.
type Agg = window.Agg

// Feature is one feature of a view.
type Feature struct {
	Name  string `json:"name"`
	Field string `json:"field,omitempty"` // "" for count of events
	Agg   Agg    `json:"agg"`
	// Window is the window length; 0 means lifetime (or, for last/first,
	// bounded by TTL only).
	Window time.Duration `json:"-"`
	// Hop is the step the window tail moves in; 0 means the default for the
	// window (see window.DefaultHop).
	Hop time.Duration `json:"-"`
	// TTL bounds last and first: 0 means no bound.
	TTL time.Duration `json:"-"`
	N   int           `json:"-"` // for last_n
}

// Derived is a field computed from an expression over event fields.
type Derived struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
}

// View is a feature view: features of one entity computed from one stream.
type View struct {
	Name     string    `json:"name"`
	Version  int       `json:"version"`
	Entity   string    `json:"entity"`
	Source   string    `json:"source"`
	Filter   string    `json:"filter,omitempty"`
	Derive   []Derived `json:"derive,omitempty"`
	Features []Feature `json:"features"`
	// AllowedLateness is how late an event may arrive and still be applied
	// online to the windows that hold it; 0 means window.DefaultLateness.
	AllowedLateness time.Duration `json:"allowed_lateness,omitempty"`
}

// Feature returns the named feature, or nil.
func (v *View) Feature(name string) *Feature {
	for i := range v.Features {
		if v.Features[i].Name == name {
			return &v.Features[i]
		}
	}
	return nil
}

// Service is a named set of features, "view:feature" or "view:*".
type Service struct {
	Name     string   `json:"name"`
	Features []string `json:"features"`
}

// Repo is a complete, validated set of definitions.
type Repo struct {
	Entities map[string]*Entity  `json:"entities"`
	Streams  map[string]*Stream  `json:"streams"`
	Views    map[string]*View    `json:"views"`
	Services map[string]*Service `json:"services"`
	// Previous holds, for a view that an apply gave a new version, the
	// version it had before: reads are served from it, and the stream
	// engine keeps it current, until the new version has caught up with
	// its stream (see Previous in package stream).
	Previous map[string]*View `json:"previous"`
}

// NewRepo returns an empty repo.
func NewRepo() *Repo {
	return &Repo{
		Entities: map[string]*Entity{},
		Streams:  map[string]*Stream{},
		Views:    map[string]*View{},
		Services: map[string]*Service{},
		Previous: map[string]*View{},
	}
}

// StreamByTopic returns the stream whose topic is topic, or nil.
func (r *Repo) StreamByTopic(topic string) *Stream {
	for _, s := range r.Streams {
		if s.Topic == topic {
			return s
		}
	}
	return nil
}

// Repartitioned reports whether a view is keyed by an entity other than its
// stream's, so its events must be re-keyed before they are applied.
func (r *Repo) Repartitioned(v *View) bool {
	s := r.Streams[v.Source]
	return s != nil && v.Entity != s.Entity
}

// ViewsOf returns the views whose source is the named stream, sorted by name.
func (r *Repo) ViewsOf(stream string) []*View {
	var out []*View
	for _, v := range r.Views {
		if v.Source == stream {
			out = append(out, v)
		}
	}
	sortViews(out)
	return out
}

// featureJSON is Feature's JSON form: durations as text ("24h", "7d").
type featureJSON struct {
	Name   string `json:"name"`
	Field  string `json:"field,omitempty"`
	Agg    Agg    `json:"agg"`
	Window string `json:"window,omitempty"`
	Hop    string `json:"hop,omitempty"`
	TTL    string `json:"ttl,omitempty"`
	N      int    `json:"n,omitempty"`
}

// MarshalJSON writes durations as text.
func (f Feature) MarshalJSON() ([]byte, error) {
	text := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return FormatDuration(d)
	}
	return json.Marshal(featureJSON{f.Name, f.Field, f.Agg, text(f.Window), text(f.Hop), text(f.TTL), f.N})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Feature) UnmarshalJSON(b []byte) error {
	var j featureJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	f.Name, f.Field, f.Agg, f.N = j.Name, j.Field, j.Agg, j.N
	for _, d := range []struct {
		text string
		to   *time.Duration
	}{{j.Window, &f.Window}, {j.Hop, &f.Hop}, {j.TTL, &f.TTL}} {
		*d.to = 0
		if d.text == "" {
			continue
		}
		v, err := ParseDuration(d.text)
		if err != nil {
			return fmt.Errorf("feature %q: %w", j.Name, err)
		}
		*d.to = v
	}
	return nil
}

// viewJSON is View's JSON form, with allowed_lateness as text.
type viewJSON View

// MarshalJSON writes allowed_lateness as text ("1h").
func (v View) MarshalJSON() ([]byte, error) {
	lateness := ""
	if v.AllowedLateness != 0 {
		lateness = FormatDuration(v.AllowedLateness)
	}
	return json.Marshal(struct {
		viewJSON
		AllowedLateness string `json:"allowed_lateness,omitempty"`
	}{viewJSON(v), lateness})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (v *View) UnmarshalJSON(b []byte) error {
	var j struct {
		viewJSON
		AllowedLateness string `json:"allowed_lateness,omitempty"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*v = View(j.viewJSON)
	v.AllowedLateness = 0
	if j.AllowedLateness != "" {
		d, err := ParseDuration(j.AllowedLateness)
		if err != nil {
			return fmt.Errorf("feature view %q: allowed_lateness: %w", v.Name, err)
		}
		v.AllowedLateness = d
	}
	return nil
}
