package featurestore

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"

	"github.com/sluicehq/sluice/schemas"
)

// Action says what applying a plan does to one definition.
type Action uint8

// The actions of a plan.
const (
	Add Action = iota + 1
	Update
	Remove
	Unchanged
)

func (a Action) String() string {
	switch a {
	case Add:
		return "add"
	case Update:
		return "update"
	case Remove:
		return "remove"
	case Unchanged:
		return "unchanged"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

func (a Action) symbol() string {
	switch a {
	case Add:
		return "+"
	case Update:
		return "~"
	case Remove:
		return "-"
	}
	return "="
}

// Change is what a plan does to one definition.
type Change struct {
	Kind   string // entity, stream, feature_view, feature_service
	Name   string
	Action Action
	// Version is the definition's version after the change (for a removal,
	// the version removed); 0 for kinds without versions (entities and
	// services).
	Version int
	// Details says what changed, one item per difference, for updates.
	Details []string
}

// Plan is the difference between the registry and a new repo.
type Plan struct {
	Changes []Change // by kind (entities, streams, views, services), then name
	Next    *Repo    // the repo to store, with versions assigned
}

// Changed reports whether applying the plan changes anything.
func (p *Plan) Changed() bool {
	return slices.ContainsFunc(p.Changes, func(c Change) bool { return c.Action != Unchanged })
}

// String renders the plan as a diff, one line per definition:
//
//   - stream transactions (v1)
//     ~ feature_view user_txn v1 -> v2: feature amount_sum_24h: window 24h -> 48h
//   - feature_service fraud_model_v0
//     = entity user
func (p *Plan) String() string {
	var b strings.Builder
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "%s %s %s", c.Action.symbol(), c.Kind, c.Name)
		switch {
		case c.Version > 0 && c.Action == Update:
			fmt.Fprintf(&b, " v%d -> v%d", c.Version-1, c.Version)
		case c.Version > 0:
			fmt.Fprintf(&b, " (v%d)", c.Version)
		}
		if len(c.Details) > 0 {
			b.WriteString(": ")
			b.WriteString(strings.Join(c.Details, "; "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Plan diffs next against r, the current registry (which may be empty or
// nil), and returns the repo to store: new definitions get version 1,
// unchanged ones keep theirs and changed streams and views get their version
// plus one. It refuses, with every reason, changes that would break stored
// data or running readers: changing an entity's keys; changing a stream's
// topic, entity or timestamp field; an incompatible schema change (see
// schemas.CheckCompatible); dropping a field a view still reads. next must be
// valid, as Parse and FromRecords return it; it is not modified.
func (r *Repo) Plan(next *Repo) (*Plan, error) { return r.plan(next, nil) }

// Building reports whether the current version of a view of repo is still
// catching up (is not served yet).
type Building func(repo *Repo, view string) bool

// plan is Plan. A view updated again while building says its current
// version is still catching up keeps its previous version, the one served,
// rather than taking the half-built current one as its previous.
func (r *Repo) plan(next *Repo, building Building) (*Plan, error) {
	cur := r
	if cur == nil {
		cur = NewRepo()
	}
	out := next.clone()
	p := &Plan{Next: out}
	var errs []error
	for _, name := range unionKeys(cur.Entities, out.Entities) {
		c, err := planEntity(cur.Entities[name], out.Entities[name])
		p.add(KindEntity, name, c, err, &errs)
	}
	for _, name := range unionKeys(cur.Streams, out.Streams) {
		c, err := planStream(cur.Streams[name], out.Streams[name], out)
		p.add(KindStream, name, c, err, &errs)
	}
	for _, name := range unionKeys(cur.Views, out.Views) {
		old, v := cur.Views[name], out.Views[name]
		var retyped []string
		if old != nil && v != nil && old.Source == v.Source {
			retyped = retypedInputs(out, v, cur.Streams[v.Source], out.Streams[v.Source])
		}
		c := planView(old, v, retyped)
		p.add(KindView, name, c, nil, &errs)
		delete(out.Previous, name)
		switch {
		case c.Action == Update && cur.Previous[name] != nil && building != nil && building(cur, name):
			out.Previous[name] = cur.Previous[name].clone()
		case c.Action == Update:
			out.Previous[name] = old.clone()
		case c.Action == Unchanged && cur.Previous[name] != nil:
			out.Previous[name] = cur.Previous[name].clone()
		}
	}
	for _, name := range unionKeys(cur.Services, out.Services) {
		p.add(KindService, name, planService(cur.Services[name], out.Services[name]), nil, &errs)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func (p *Plan) add(kind, name string, c Change, err error, errs *[]error) {
	if err != nil {
		*errs = append(*errs, err)
		return
	}
	c.Kind, c.Name = kind, name
	p.Changes = append(p.Changes, c)
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func planEntity(old, next *Entity) (Change, error) {
	switch {
	case old == nil:
		return Change{Action: Add}, nil
	case next == nil:
		return Change{Action: Remove}, nil
	case slices.Equal(old.Keys, next.Keys) && slices.Equal(old.Types, next.Types):
		return Change{Action: Unchanged}, nil
	}
	return Change{}, fmt.Errorf("entity %q: changing its keys from %s to %s is not allowed: streams and stored features are keyed by them (create a new entity instead)",
		old.Name, keyList(old), keyList(next))
}

func keyList(e *Entity) string {
	parts := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		t := "?"
		if i < len(e.Types) {
			t = e.Types[i].String()
		}
		parts[i] = k + " " + t
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// planStream compares a stream; repo is the next repo, whose views must not
// read a dropped field. It sets next's schema version.
func planStream(old, next *Stream, repo *Repo) (Change, error) {
	switch {
	case old == nil && next.Schema == nil:
		return Change{}, fmt.Errorf("stream %q: missing schema (add schema: a list of {name, type} fields)", next.Name)
	case old == nil:
		next.Schema.Version = 1
		return Change{Action: Add, Version: 1}, nil
	case next == nil:
		return Change{Action: Remove, Version: old.Schema.Version}, nil
	case old.Schema == nil || next.Schema == nil:
		return Change{}, fmt.Errorf("stream %q: missing schema (add schema: a list of {name, type} fields)", old.Name)
	}
	var errs []error
	refuse := func(what, from, to string) {
		errs = append(errs, fmt.Errorf("stream %q: changing its %s from %q to %q is not allowed (create a new stream instead)", old.Name, what, from, to))
	}
	if old.Topic != next.Topic {
		refuse("topic", old.Topic, next.Topic)
	}
	if old.Entity != next.Entity {
		refuse("entity", old.Entity, next.Entity)
	}
	if old.Schema.TimeField != next.Schema.TimeField {
		refuse("timestamp field", old.Schema.TimeField, next.Schema.TimeField)
	}
	if len(errs) > 0 {
		return Change{}, errors.Join(errs...)
	}
	if sameSchema(old.Schema, next.Schema) {
		next.Schema.Version = old.Schema.Version
		return Change{Action: Unchanged, Version: old.Schema.Version}, nil
	}
	if err := schemas.CheckCompatible(old.Schema, next.Schema); err != nil {
		errs = append(errs, err)
	}
	for _, f := range old.Schema.Fields {
		if next.Schema.Index(f.Name) >= 0 {
			continue
		}
		for _, v := range repo.ViewsOf(next.Name) {
			if viewReads(repo, v, f.Name) {
				errs = append(errs, fmt.Errorf("stream %q: field %q is dropped but feature_view %q still reads it (change the view first, or keep the field)", next.Name, f.Name, v.Name))
			}
		}
	}
	if len(errs) > 0 {
		return Change{}, errors.Join(errs...)
	}
	next.Schema.Version = old.Schema.Version + 1
	return Change{Action: Update, Version: next.Schema.Version, Details: schemaDetails(old.Schema, next.Schema)}, nil
}

func sameSchema(a, b *schemas.Schema) bool {
	x, y := *a, *b
	x.Version, y.Version = 0, 0
	return reflect.DeepEqual(x, y)
}

// viewReads reports whether v reads field: as a key of its entity, as a
// feature's field, or in its filter or a derived field's expression.
func viewReads(r *Repo, v *View, field string) bool {
	if e := r.Entities[v.Entity]; e != nil && slices.Contains(e.Keys, field) {
		return true
	}
	for _, f := range v.Features {
		if f.Field == field {
			return true
		}
	}
	srcs := []string{v.Filter}
	for _, d := range v.Derive {
		srcs = append(srcs, d.Expr)
	}
	for _, src := range srcs {
		if src == "" {
			continue
		}
		tree, err := exprparser.Parse(src)
		if err != nil {
			continue
		}
		found := ast.Find(tree.Node, func(n ast.Node) bool {
			id, ok := n.(*ast.IdentifierNode)
			return ok && id.Value == field
		})
		if found != nil {
			return true
		}
	}
	return false
}

func schemaDetails(old, next *schemas.Schema) []string {
	var out []string
	for _, nf := range next.Fields {
		i := old.Index(nf.Name)
		if i < 0 {
			out = append(out, fmt.Sprintf("field %s added (%s)", nf.Name, fieldDesc(nf)))
			continue
		}
		of := old.Fields[i]
		if of.Type != nf.Type {
			out = append(out, fmt.Sprintf("field %s: type %s -> %s", nf.Name, of.Type, nf.Type))
		}
		if of.Nullable != nf.Nullable {
			out = append(out, fmt.Sprintf("field %s: nullable %t -> %t", nf.Name, of.Nullable, nf.Nullable))
		}
		if !reflect.DeepEqual(of.Default, nf.Default) {
			out = append(out, fmt.Sprintf("field %s: default %s -> %s", nf.Name, valueOrNone(of.Default), valueOrNone(nf.Default)))
		}
	}
	var oldOrder, nextOrder []string
	for _, of := range old.Fields {
		if next.Index(of.Name) < 0 {
			out = append(out, fmt.Sprintf("field %s dropped", of.Name))
		} else {
			oldOrder = append(oldOrder, of.Name)
		}
	}
	for _, nf := range next.Fields {
		if old.Index(nf.Name) >= 0 {
			nextOrder = append(nextOrder, nf.Name)
		}
	}
	if !slices.Equal(oldOrder, nextOrder) {
		out = append(out, "fields reordered")
	}
	if old.UnknownFields != next.UnknownFields {
		out = append(out, fmt.Sprintf("unknown_fields %s -> %s", old.UnknownFields, next.UnknownFields))
	}
	if old.TimeUnit != next.TimeUnit {
		out = append(out, fmt.Sprintf("timestamp_unit %s -> %s", old.TimeUnit, next.TimeUnit))
	}
	return out
}

func fieldDesc(f schemas.Field) string {
	s := f.Type.String()
	if f.Nullable {
		s += ", nullable"
	}
	if f.Default != nil {
		s += ", default " + valueOrNone(f.Default)
	}
	return s
}

func valueOrNone(v any) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprint(v)
}

// retypedInputs describes the fields v reads whose type changed from old to
// next (int64 widened to float64): the view's values change type, so it
// needs a new version.
func retypedInputs(r *Repo, v *View, old, next *Stream) []string {
	if old == nil || next == nil || old.Schema == nil || next.Schema == nil {
		return nil
	}
	var out []string
	for _, f := range next.Schema.Fields {
		i := old.Schema.Index(f.Name)
		if i >= 0 && old.Schema.Fields[i].Type != f.Type && viewReads(r, v, f.Name) {
			out = append(out, fmt.Sprintf("input %s: type %s -> %s", f.Name, old.Schema.Fields[i].Type, f.Type))
		}
	}
	return out
}

// planView compares a view and sets next's version; retyped lists inputs
// whose type changed.
func planView(old, next *View, retyped []string) Change {
	switch {
	case old == nil:
		next.Version = 1
		return Change{Action: Add, Version: 1}
	case next == nil:
		return Change{Action: Remove, Version: old.Version}
	}
	details := append(viewDetails(old, next), retyped...)
	if len(details) == 0 {
		next.Version = old.Version
		return Change{Action: Unchanged, Version: old.Version}
	}
	next.Version = old.Version + 1
	return Change{Action: Update, Version: next.Version, Details: details}
}

func viewDetails(old, next *View) []string {
	var out []string
	diff := func(what, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s %s -> %s", what, orNone(a), orNone(b)))
		}
	}
	diff("entity", old.Entity, next.Entity)
	diff("source", old.Source, next.Source)
	diff("filter", quoteOrEmpty(old.Filter), quoteOrEmpty(next.Filter))
	for _, d := range next.Derive {
		i := slices.IndexFunc(old.Derive, func(o Derived) bool { return o.Name == d.Name })
		if i < 0 {
			out = append(out, fmt.Sprintf("derive %s added: %q", d.Name, d.Expr))
		} else if old.Derive[i].Expr != d.Expr {
			out = append(out, fmt.Sprintf("derive %s: %q -> %q", d.Name, old.Derive[i].Expr, d.Expr))
		}
	}
	for _, d := range old.Derive {
		if !slices.ContainsFunc(next.Derive, func(n Derived) bool { return n.Name == d.Name }) {
			out = append(out, fmt.Sprintf("derive %s removed", d.Name))
		}
	}
	if len(out) == 0 && !slices.Equal(old.Derive, next.Derive) {
		out = append(out, "derive reordered")
	}
	nFeat := len(out)
	for _, f := range next.Features {
		of := old.Feature(f.Name)
		if of == nil {
			out = append(out, fmt.Sprintf("feature %s added: %s", f.Name, strings.Join(featureAttrs(Feature{}, f), ", ")))
		} else if attrs := featureAttrs(*of, f); len(attrs) > 0 {
			out = append(out, fmt.Sprintf("feature %s: %s", f.Name, strings.Join(attrs, ", ")))
		}
	}
	for _, f := range old.Features {
		if next.Feature(f.Name) == nil {
			out = append(out, fmt.Sprintf("feature %s removed", f.Name))
		}
	}
	if len(out) == nFeat && !slices.Equal(old.Features, next.Features) {
		out = append(out, "features reordered")
	}
	return out
}

// featureAttrs lists the attributes of b that differ from a: "window 24h ->
// 48h", or, when a is the zero Feature, b's attributes: "agg sum, field amount".
func featureAttrs(a, b Feature) []string {
	added := a.Name == ""
	var out []string
	attr := func(name, x, y string) {
		switch {
		case added && y != "":
			out = append(out, name+" "+y)
		case !added && x != y:
			out = append(out, fmt.Sprintf("%s %s -> %s", name, orNone(x), orNone(y)))
		}
	}
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return FormatDuration(d)
	}
	num := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprint(n)
	}
	attr("agg", string(a.Agg), string(b.Agg))
	attr("field", a.Field, b.Field)
	attr("window", dur(a.Window), dur(b.Window))
	attr("hop", dur(a.Hop), dur(b.Hop))
	attr("ttl", dur(a.TTL), dur(b.TTL))
	attr("n", num(a.N), num(b.N))
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", s)
}

func planService(old, next *Service) Change {
	switch {
	case old == nil:
		return Change{Action: Add}
	case next == nil:
		return Change{Action: Remove}
	case slices.Equal(old.Features, next.Features):
		return Change{Action: Unchanged}
	}
	var details []string
	for _, f := range next.Features {
		if !slices.Contains(old.Features, f) {
			details = append(details, "added "+f)
		}
	}
	for _, f := range old.Features {
		if !slices.Contains(next.Features, f) {
			details = append(details, "removed "+f)
		}
	}
	if len(details) == 0 {
		details = append(details, "features reordered")
	}
	return Change{Action: Update, Details: details}
}

// clone returns a deep copy of r; a nil r gives an empty repo.
func (r *Repo) clone() *Repo {
	out := NewRepo()
	if r == nil {
		return out
	}
	for k, e := range r.Entities {
		c := *e
		c.Keys, c.Types = slices.Clone(e.Keys), slices.Clone(e.Types)
		out.Entities[k] = &c
	}
	for k, s := range r.Streams {
		c := *s
		if s.Schema != nil {
			sc := *s.Schema
			sc.Fields, sc.KeyFields = slices.Clone(sc.Fields), slices.Clone(sc.KeyFields)
			c.Schema = &sc
		}
		out.Streams[k] = &c
	}
	for k, v := range r.Views {
		out.Views[k] = v.clone()
	}
	for k, v := range r.Previous {
		out.Previous[k] = v.clone()
	}
	for k, s := range r.Services {
		c := *s
		c.Features = slices.Clone(s.Features)
		out.Services[k] = &c
	}
	return out
}

func (v *View) clone() *View {
	c := *v
	c.Derive, c.Features = slices.Clone(v.Derive), slices.Clone(v.Features)
	return &c
}
