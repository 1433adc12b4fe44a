package featurestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/schemas"
)

// Record is one record of the compacted registry topic: key
// "<kind>/<name>", value the definition as JSON, or nil for a removal (a
// tombstone).
type Record struct {
	Key   string
	Value []byte
}

// RecordKey returns the registry record key of a definition.
func RecordKey(kind, name string) string { return kind + "/" + name }

// Records returns one record per definition of r, entities first, then
// streams, views and services, each sorted by name.
func (r *Repo) Records() ([]Record, error) {
	var recs []Record
	add := func(kind, name string, def any) error {
		b, err := json.Marshal(def)
		if err != nil {
			return fmt.Errorf("encode %s %q: %w", kind, name, err)
		}
		recs = append(recs, Record{Key: RecordKey(kind, name), Value: b})
		return nil
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(r.Entities)) {
		errs = append(errs, add(KindEntity, name, r.Entities[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Streams)) {
		errs = append(errs, add(KindStream, name, r.Streams[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Views)) {
		errs = append(errs, add(KindView, name, r.Views[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Services)) {
		errs = append(errs, add(KindService, name, r.Services[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Previous)) {
		errs = append(errs, add(KindPrevious, name, r.Previous[name]))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return recs, nil
}

// FromRecords replays registry records in order (a later record of a key
// replaces an earlier one; a nil or empty value removes the definition) and
// returns the validated repo.
func FromRecords(recs []Record) (*Repo, error) {
	r := NewRepo()
	var errs []error
	for _, rec := range recs {
		if err := r.apply(rec); err != nil {
			errs = append(errs, fmt.Errorf("registry record %q: %w", rec.Key, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// apply replays one record onto r.
func (r *Repo) apply(rec Record) error {
	kind, name, ok := strings.Cut(rec.Key, "/")
	if !ok || name == "" {
		return fmt.Errorf("key is not <kind>/<name>")
	}
	del := len(rec.Value) == 0
	var err error
	switch kind {
	case KindEntity:
		err = replay(r.Entities, name, rec.Value, del, func(e *Entity) string { return e.Name })
	case KindStream:
		err = replay(r.Streams, name, rec.Value, del, func(s *Stream) string { return s.Name })
		if s := r.Streams[name]; err == nil && !del && s.Schema != nil {
			err = normalizeDefaults(s.Schema)
		}
	case KindView:
		err = replay(r.Views, name, rec.Value, del, func(v *View) string { return v.Name })
	case KindService:
		err = replay(r.Services, name, rec.Value, del, func(s *Service) string { return s.Name })
	case KindPrevious:
		err = replay(r.Previous, name, rec.Value, del, func(v *View) string { return v.Name })
	default:
		return fmt.Errorf("unknown kind %q (%s)", kind, kindHint)
	}
	return err
}

// replay decodes value into m[name], or deletes it.
func replay[T any](m map[string]*T, name string, value []byte, del bool, nameOf func(*T) string) error {
	if del {
		delete(m, name)
		return nil
	}
	def := new(T)
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(def); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if got := nameOf(def); got != name {
		return fmt.Errorf("holds a definition named %q", got)
	}
	m[name] = def
	return nil
}

// normalizeDefaults turns JSON numbers in field defaults back into the Go
// form of their field's type.
func normalizeDefaults(sc *schemas.Schema) error {
	for i := range sc.Fields {
		f := &sc.Fields[i]
		n, ok := f.Default.(json.Number)
		if !ok {
			continue
		}
		var err error
		switch f.Type {
		case schemas.Int64, schemas.Timestamp:
			f.Default, err = n.Int64()
		default:
			f.Default, err = n.Float64()
		}
		if err != nil {
			return fmt.Errorf("field %q: default %s: %w", f.Name, n, err)
		}
	}
	return nil
}

// DecodeRepo reads a Repo from its JSON form (what GET /v1/registry
// serves), through the same path as the registry's records.
func DecodeRepo(b []byte) (*Repo, error) {
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decode registry: %w", err)
	}
	kinds := []struct{ field, kind string }{
		{"entities", KindEntity}, {"streams", KindStream}, {"views", KindView}, {"services", KindService},
	}
	var recs []Record
	for _, k := range kinds {
		for _, name := range slices.Sorted(maps.Keys(raw[k.field])) {
			recs = append(recs, Record{Key: RecordKey(k.kind, name), Value: raw[k.field][name]})
		}
	}
	if len(recs) == 0 {
		return NewRepo(), nil
	}
	return FromRecords(recs)
}
