package featurestore

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"

	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// DefError is one problem with one definition of a feature repository. File,
// Doc and Line are set when the definition was read from YAML.
type DefError struct {
	File string
	Doc  int // 1-based document number within File
	Line int
	Kind string // entity, stream, feature_view, feature_service; "" when unknown
	Name string
	Path string // the field, such as "features[2].agg"; "" for the whole definition
	Msg  string
}

// Error renders the error as
//
//	features/fraud.yaml:14: document 3 (feature_view "user_txn"): features[2].agg: unknown aggregation "avg" (...)
//
// or, for definitions not read from a file, as
//
//	feature_view "user_txn": features[2].agg: unknown aggregation "avg" (...)
func (e *DefError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		fmt.Fprintf(&b, ": document %d", e.Doc)
		switch {
		case e.Kind != "" && e.Name != "":
			fmt.Fprintf(&b, " (%s %q)", e.Kind, e.Name)
		case e.Kind != "":
			fmt.Fprintf(&b, " (%s)", e.Kind)
		}
		b.WriteString(": ")
	} else if e.Kind != "" {
		fmt.Fprintf(&b, "%s %q: ", e.Kind, e.Name)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinDefErrors sorts errs by file, document and line (definitions not read
// from files by kind and name) and joins them; nil when there are none.
func joinDefErrors(errs []*DefError) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *DefError) int {
		return cmp.Or(
			strings.Compare(a.File, b.File),
			cmp.Compare(a.Doc, b.Doc),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(slices.Index(kinds, a.Kind), slices.Index(kinds, b.Kind)),
			strings.Compare(a.Name, b.Name),
		)
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// Validate checks the names, references and types of every definition of the
// repo, and returns all problems found, joined, or nil. ParseDir, Parse and
// FromRecords call it.
func (r *Repo) Validate() error { return joinDefErrors(r.check()) }

var namePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

const nameHint = "use lower-case letters, digits and _, starting with a letter or _"

// checker collects the problems of one repo.
type checker struct {
	r    *Repo
	errs []*DefError
}

func (r *Repo) check() []*DefError {
	c := &checker{r: r}
	for _, name := range slices.Sorted(maps.Keys(r.Entities)) {
		c.entity(name, r.Entities[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.Streams)) {
		c.stream(name, r.Streams[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.Views)) {
		c.view(name, r.Views[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.Services)) {
		c.service(name, r.Services[name])
	}
	return c.errs
}

// def returns a function recording problems of one definition.
func (c *checker) def(kind, name string) func(path, format string, args ...any) {
	return func(path, format string, args ...any) {
		c.errs = append(c.errs, &DefError{Kind: kind, Name: name, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
}

// checkName checks a definition's name and that it is filed under it.
func checkName(errf func(string, string, ...any), key, name string) {
	switch {
	case name != key:
		errf("name", "registered as %q but named %q (use one name)", key, name)
	case !namePattern.MatchString(name):
		errf("name", "invalid name %q (%s)", name, nameHint)
	}
}

func (c *checker) entity(key string, e *Entity) {
	errf := c.def(KindEntity, key)
	checkName(errf, key, e.Name)
	if len(e.Keys) == 0 {
		errf("keys", "missing key (add key: <field name>, or keys: [a, b] for a composite key)")
	}
	for i, k := range e.Keys {
		p := indexPath("keys", i)
		switch {
		case !namePattern.MatchString(k):
			errf(p, "invalid key field name %q (%s)", k, nameHint)
		case slices.Index(e.Keys, k) < i:
			errf(p, "duplicate key field %q (list each key once)", k)
		}
	}
	if len(e.Types) != len(e.Keys) {
		errf("types", "%s for %s (give one type per key)", plural(len(e.Types), "type"), plural(len(e.Keys), "key"))
	}
	for i, t := range e.Types {
		if t != schemas.String && t != schemas.Int64 {
			errf(indexPath("types", i), "key type %s is not supported (use string or int64)", t)
		}
	}
}

func (c *checker) stream(key string, s *Stream) {
	errf := c.def(KindStream, key)
	checkName(errf, key, s.Name)
	c.topic(errf, s)
	ent := c.r.Entities[s.Entity]
	switch {
	case s.Entity == "":
		errf("entity", "missing entity (add entity: <entity name>; events are keyed by its key)")
	case ent == nil:
		errf("entity", "unknown entity %q (%s)", s.Entity, suggest(s.Entity, slices.Sorted(maps.Keys(c.r.Entities)), "known entities", "define it with kind: entity"))
	}
	sc := s.Schema
	if sc == nil || len(sc.Fields) == 0 {
		errf("schema", "missing schema (add schema: a list of {name, type} fields)")
		return
	}
	if sc.Stream != s.Name {
		errf("schema", "schema of stream %q filed under stream %q (use one name)", sc.Stream, s.Name)
	}
	checkFields(errf, sc.Fields)
	checkTime(errf, sc)
	if _, err := sc.TimeUnit.Micros(); err != nil {
		errf("timestamp_unit", "%v", err)
	}
	switch sc.UnknownFields {
	case "", schemas.RejectUnknown, schemas.IgnoreUnknown: // "" is reject
	default:
		errf("unknown_fields", "unknown policy %q (use reject or ignore)", sc.UnknownFields)
	}
	if ent != nil {
		checkKeys(errf, "entity", sc, ent, "")
		if !slices.Equal(sc.KeyFields, ent.Keys) {
			errf("entity", "key fields %v differ from the keys %v of entity %q (use the entity's keys)", sc.KeyFields, ent.Keys, ent.Name)
		}
	}
}

var topicPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func (c *checker) topic(errf func(string, string, ...any), s *Stream) {
	switch {
	case s.Topic == "":
		errf("topic", "empty topic (set topic: <kafka topic>, or leave it out to use the stream name)")
	case !topicPattern.MatchString(s.Topic) || s.Topic == "." || s.Topic == "..":
		errf("topic", "invalid Kafka topic %q (use up to 249 letters, digits, '.', '_' and '-')", s.Topic)
	case strings.HasPrefix(s.Topic, "sluice."):
		errf("topic", "topic %q is reserved for Sluice's own topics (choose a topic not starting with sluice.)", s.Topic)
	}
	var others []string
	for _, name := range slices.Sorted(maps.Keys(c.r.Streams)) {
		if name != s.Name && c.r.Streams[name].Topic == s.Topic {
			others = append(others, strconv.Quote(name))
		}
	}
	if len(others) > 0 && s.Topic != "" {
		errf("topic", "topic %q is also the topic of stream %s (give each stream its own topic)", s.Topic, strings.Join(others, ", "))
	}
}

func checkFields(errf func(string, string, ...any), fields []schemas.Field) {
	for i, f := range fields {
		p := indexPath("schema", i)
		switch {
		case f.Name == "":
			errf(joinPath(p, "name"), "missing field name (add name: <field name>)")
		case strings.HasPrefix(f.Name, schemas.ReservedPrefix):
			errf(joinPath(p, "name"), "field name %q starts with %q, which Sluice reserves for its own columns (rename the field)", f.Name, schemas.ReservedPrefix)
		case !namePattern.MatchString(f.Name):
			errf(joinPath(p, "name"), "invalid field name %q (%s)", f.Name, nameHint)
		case slices.IndexFunc(fields, func(g schemas.Field) bool { return g.Name == f.Name }) < i:
			errf(joinPath(p, "name"), "duplicate field %q (list each field once)", f.Name)
		}
		if _, ok := goTypes[f.Type]; !ok {
			errf(joinPath(p, "type"), "unknown type %s (use one of string, int64, float64, bool, timestamp)", f.Type)
		} else if f.Default != nil && reflect.TypeOf(f.Default) != goTypes[f.Type] {
			errf(joinPath(p, "default"), "default %v does not have the field's type %s", f.Default, f.Type)
		}
	}
}

// goTypes maps field types to the Go type of their values.
var goTypes = map[schemas.Type]reflect.Type{
	schemas.String:    reflect.TypeFor[string](),
	schemas.Int64:     reflect.TypeFor[int64](),
	schemas.Float64:   reflect.TypeFor[float64](),
	schemas.Bool:      reflect.TypeFor[bool](),
	schemas.Timestamp: reflect.TypeFor[int64](),
}

func checkTime(errf func(string, string, ...any), sc *schemas.Schema) {
	if sc.TimeField == "" {
		errf("timestamp", "missing timestamp (name the event-time field, such as timestamp: ts)")
		return
	}
	i := sc.Index(sc.TimeField)
	if i < 0 {
		errf("timestamp", "no field %q in schema (add {name: %s, type: timestamp} to schema)", sc.TimeField, sc.TimeField)
		return
	}
	f := sc.Fields[i]
	if f.Type != schemas.Timestamp && f.Type != schemas.Int64 {
		errf("timestamp", "field %q has type %s (use type timestamp or int64)", f.Name, f.Type)
	}
	if f.Nullable {
		errf("timestamp", "field %q is nullable, but every event needs an event time (remove nullable)", f.Name)
	}
}

// checkKeys checks the schema holds the entity's keys as non-nullable fields
// of the key types. extra ends the message about a missing key field.
func checkKeys(errf func(string, string, ...any), path string, sc *schemas.Schema, ent *Entity, extra string) {
	for i, k := range ent.Keys {
		j := sc.Index(k)
		if j < 0 {
			t := schemas.String
			if i < len(ent.Types) {
				t = ent.Types[i]
			}
			errf(path, "stream %q has no field %q, the key of entity %q (add {name: %s, type: %s} to its schema%s)", sc.Stream, k, ent.Name, k, t, extra)
			continue
		}
		f := sc.Fields[j]
		if i < len(ent.Types) && f.Type != 0 && ent.Types[i] != 0 && f.Type != ent.Types[i] {
			errf(path, "field %q of stream %q has type %s, but the key of entity %q has type %s (use one type)", k, sc.Stream, f.Type, ent.Name, ent.Types[i])
		}
		if f.Nullable {
			errf(path, "field %q of stream %q is nullable, but it is the key of entity %q (remove nullable)", k, sc.Stream, ent.Name)
		}
	}
}

func (c *checker) service(key string, s *Service) {
	errf := c.def(KindService, key)
	checkName(errf, key, s.Name)
	if len(s.Features) == 0 {
		errf("features", "missing features (list them as view:feature or view:*)")
	}
	seen := map[string]string{} // view:feature -> the entry that included it
	for i, ref := range s.Features {
		p := indexPath("features", i)
		vname, fname, ok := strings.Cut(ref, ":")
		if !ok || vname == "" || fname == "" || strings.Contains(fname, ":") {
			errf(p, "%q is not view:feature (use view:feature or view:*)", ref)
			continue
		}
		v := c.r.Views[vname]
		if v == nil {
			errf(p, "unknown feature_view %q (%s)", vname, suggest(vname, slices.Sorted(maps.Keys(c.r.Views)), "known views", "define it with kind: feature_view"))
			continue
		}
		var names []string
		for _, f := range v.Features {
			names = append(names, f.Name)
		}
		if fname != "*" {
			if v.Feature(fname) == nil {
				errf(p, "feature_view %q has no feature %q (%s)", vname, fname, suggest(fname, names, "its features", "it has none"))
				continue
			}
			names = []string{fname}
		}
		for _, n := range names {
			full := vname + ":" + n
			prev, dup := seen[full]
			switch {
			case dup && prev == ref:
				errf(p, "%q is listed twice (list each feature once)", ref)
			case dup:
				errf(p, "%q includes %q, which %q already lists (list each feature once)", ref, full, prev)
			}
			if dup {
				break
			}
			seen[full] = ref
		}
	}
}

func (c *checker) view(key string, v *View) {
	errf := c.def(KindView, key)
	checkName(errf, key, v.Name)
	ent := c.r.Entities[v.Entity]
	switch {
	case v.Entity == "":
		errf("entity", "missing entity (add entity: <entity name>)")
	case ent == nil:
		errf("entity", "unknown entity %q (%s)", v.Entity, suggest(v.Entity, slices.Sorted(maps.Keys(c.r.Entities)), "known entities", "define it with kind: entity"))
	}
	src := c.r.Streams[v.Source]
	switch {
	case v.Source == "":
		errf("source", "missing source (add source: <stream name>)")
	case src == nil:
		errf("source", "unknown stream %q (%s)", v.Source, suggest(v.Source, slices.Sorted(maps.Keys(c.r.Streams)), "known streams", "define it with kind: stream"))
	}
	var types map[string]schemas.Type // the view's inputs; nil when its stream is unknown
	if src != nil && src.Schema != nil {
		if ent != nil && src.Entity != v.Entity {
			checkKeys(errf, "entity", src.Schema, ent, ", or key the view by another entity")
		}
		types = c.inputs(errf, v, src)
	}
	if len(v.Features) == 0 {
		errf("features", "missing features (add at least one feature)")
	}
	for i := range v.Features {
		checkFeature(errf, indexPath("features", i), v, i, types)
	}
}

// inputs type-checks the view's filter and derived fields and returns the
// types of every field its features may read.
func (c *checker) inputs(errf func(string, string, ...any), v *View, src *Stream) map[string]schemas.Type {
	sc := src.Schema
	env := map[string]any{}
	types := map[string]schemas.Type{}
	for _, f := range sc.Fields {
		env[f.Name] = envValue(f.Type)
		types[f.Name] = f.Type
	}
	if v.Filter != "" {
		prog, err := expr.Compile(v.Filter, expr.Env(env))
		if err != nil {
			errf("filter", "%s", exprError(err))
		} else if t := prog.Node().Type(); t != nil && t.Kind() != reflect.Bool && t.Kind() != reflect.Interface {
			errf("filter", "%q gives %s, not true or false (use a condition such as amount > 0)", v.Filter, t)
		}
	}
	for i, d := range v.Derive {
		p := indexPath("derive", i)
		switch {
		case d.Name == "":
			errf(joinPath(p, "name"), "missing name (add name: <derived field name>)")
		case !namePattern.MatchString(d.Name) || strings.HasPrefix(d.Name, schemas.ReservedPrefix):
			errf(joinPath(p, "name"), "invalid derived field name %q (%s; a leading _ is reserved)", d.Name, nameHint)
		case sc.Index(d.Name) >= 0:
			errf(joinPath(p, "name"), "%q is already a field of stream %q (choose another name)", d.Name, src.Name)
		case slices.IndexFunc(v.Derive, func(o Derived) bool { return o.Name == d.Name }) < i:
			errf(joinPath(p, "name"), "duplicate derived field %q (derive each name once)", d.Name)
		}
		var t schemas.Type
		if d.Expr == "" {
			errf(joinPath(p, "expr"), "missing expression (add expr: <expression>, such as amount > 1000)")
		} else if prog, err := expr.Compile(d.Expr, expr.Env(env)); err != nil {
			errf(joinPath(p, "expr"), "%s", exprError(err))
		} else if t = exprType(prog.Node().Type()); t == 0 {
			errf(joinPath(p, "expr"), "cannot tell the type of %q, which gives %v (convert it with string(), int(), float() or a comparison)", d.Expr, prog.Node().Type())
		}
		if _, taken := types[d.Name]; !taken && d.Name != "" {
			env[d.Name] = envValue(t)
			types[d.Name] = t
		}
	}
	return types
}

// aggTypes lists the input types each aggregation accepts; nil means any.
var aggTypes = map[Agg][]schemas.Type{
	window.CountTrue:      {schemas.Bool},
	window.Sum:            {schemas.Int64, schemas.Float64},
	window.Mean:           {schemas.Int64, schemas.Float64},
	window.Stddev:         {schemas.Int64, schemas.Float64},
	window.Min:            {schemas.Int64, schemas.Float64, schemas.Timestamp, schemas.String},
	window.Max:            {schemas.Int64, schemas.Float64, schemas.Timestamp, schemas.String},
	window.ApproxDistinct: {schemas.String, schemas.Int64, schemas.Bool},
}

func typeList(ts []schemas.Type) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.String()
	}
	article := "a"
	if names[0] == "int64" {
		article = "an"
	}
	if len(names) == 1 {
		return article + " " + names[0]
	}
	return article + " " + strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// checkFeature checks feature i of v; types holds the view's inputs, or is
// nil when they are unknown.
func checkFeature(errf func(string, string, ...any), p string, v *View, i int, types map[string]schemas.Type) {
	f := &v.Features[i]
	switch {
	case f.Name == "":
		errf(joinPath(p, "name"), "missing name (add name: <feature name>)")
	case strings.Contains(f.Name, ":"):
		errf(joinPath(p, "name"), "feature name %q contains ':', which separates view and feature in view:feature (rename it)", f.Name)
	case !namePattern.MatchString(f.Name):
		errf(joinPath(p, "name"), "invalid feature name %q (%s)", f.Name, nameHint)
	case slices.IndexFunc(v.Features, func(o Feature) bool { return o.Name == f.Name }) < i:
		errf(joinPath(p, "name"), "duplicate feature %q (give each feature its own name)", f.Name)
	}
	known := slices.Contains(window.Aggs, f.Agg)
	switch {
	case f.Agg == "":
		errf(joinPath(p, "agg"), "missing aggregation (add agg: one of %s)", aggNames())
	case !known:
		errf(joinPath(p, "agg"), "unknown aggregation %q (use one of %s)", f.Agg, aggNames())
	}
	var ft schemas.Type
	switch {
	case f.Field == "" && known && f.Agg != window.Count:
		errf(joinPath(p, "field"), "%s needs a field (add field: <field name>)", f.Agg)
	case f.Field != "" && types != nil:
		t, ok := types[f.Field]
		if !ok {
			errf(joinPath(p, "field"), "unknown field %q (%s)", f.Field, suggest(f.Field, slices.Sorted(maps.Keys(types)), "fields and derived fields of "+v.Name, ""))
		}
		ft = t
	}
	if allowed := aggTypes[f.Agg]; ft != 0 && allowed != nil && !slices.Contains(allowed, ft) {
		errf(joinPath(p, "field"), "%s needs %s field, and %q is %s", f.Agg, typeList(allowed), f.Field, ft)
	}
	checkDurations(errf, p, f)
	switch {
	case f.Agg == window.LastN && (f.N < 1 || f.N > window.MaxLastN):
		errf(joinPath(p, "n"), "last_n needs n between 1 and %d, got %d", window.MaxLastN, f.N)
	case f.Agg != window.LastN && f.N != 0:
		errf(joinPath(p, "n"), "n applies only to last_n (remove it)")
	}
}

func checkDurations(errf func(string, string, ...any), p string, f *Feature) {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"window", f.Window}, {"hop", f.Hop}, {"ttl", f.TTL}} {
		if d.v < 0 {
			errf(joinPath(p, d.key), "%s must be positive, got %s", d.key, d.v)
		}
	}
	lastFirst := f.Agg == window.Last || f.Agg == window.First
	if lastFirst && f.Window != 0 {
		errf(joinPath(p, "window"), "%s takes no window (use ttl to bound how old its value may be)", f.Agg)
	}
	if !lastFirst && f.TTL != 0 {
		errf(joinPath(p, "ttl"), "ttl applies only to last and first (use window to bound %s)", f.Agg)
	}
	switch {
	case f.Hop <= 0: // unset, or negative and reported above
	case lastFirst:
		errf(joinPath(p, "hop"), "%s takes no hop (use ttl to bound how old its value may be)", f.Agg)
	case f.Window == 0:
		errf(joinPath(p, "hop"), "hop needs a window (add window, or remove hop)")
	case f.Hop < window.MinHop:
		errf(joinPath(p, "hop"), "hop %s is below the minimum of %s", FormatDuration(f.Hop), FormatDuration(window.MinHop))
	case f.Hop > f.Window:
		errf(joinPath(p, "hop"), "hop %s is longer than window %s (use a hop of at most the window)", FormatDuration(f.Hop), FormatDuration(f.Window))
	}
}

// exprError renders an expression's compile error in one line.
func exprError(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fmt.Sprintf("%s (at column %d)", fe.Message, fe.Column+1)
	}
	return err.Error()
}

// envValue is the value standing for a field of type t when expressions are
// type-checked; timestamps are int64 microseconds.
func envValue(t schemas.Type) any {
	switch t {
	case schemas.String:
		return ""
	case schemas.Int64, schemas.Timestamp:
		return int64(0)
	case schemas.Float64:
		return float64(0)
	case schemas.Bool:
		return false
	}
	return nil
}

// exprType maps an expression's inferred Go type to a field type, or 0.
func exprType(t reflect.Type) schemas.Type {
	if t == nil {
		return 0
	}
	switch t.Kind() {
	case reflect.Bool:
		return schemas.Bool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return schemas.Int64
	case reflect.Float32, reflect.Float64:
		return schemas.Float64
	case reflect.String:
		return schemas.String
	}
	return 0
}

func aggNames() string {
	names := make([]string, len(window.Aggs))
	for i, a := range window.Aggs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
