package featurestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/schemas"
)

// The kinds of definition in a feature repository. They also prefix the keys
// of registry records ("<kind>/<name>").
const (
	KindEntity = "entity"
	KindStream = "stream"
	KindView   = "feature_view"
	// KindPrevious keys, in the registry, the version a view had before
	// its current one; repository files never use it.
	KindPrevious = "previous_view"
	KindService  = "feature_service"
)

var kinds = []string{KindEntity, KindStream, KindView, KindService}

const kindHint = "use one of entity, stream, feature_view, feature_service"

// ParseDir reads every *.yaml and *.yml file of dir (sorted by name, not
// recursive, skipping hidden files), splits each into documents on ---, and
// returns the validated Repo. Errors name the file, the document, the
// definition and the field.
func ParseDir(dir string) (*Repo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read feature repository: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if e.IsDir() || strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read feature repository: %w", err)
		}
		files[path] = b
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("feature repository %s holds no .yaml or .yml files (add definitions, see kind: entity, stream, feature_view, feature_service)", dir)
	}
	return Parse(files)
}

// Parse reads named sources (file name -> YAML content) as ParseDir reads the
// files of a directory, and returns the validated Repo.
func Parse(files map[string][]byte) (*Repo, error) {
	p := &parser{repo: NewRepo(), srcs: map[defKey]*source{}}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p.file(name, files[name])
	}
	p.link()
	for _, e := range p.repo.check() {
		src := p.srcs[defKey{e.Kind, e.Name}]
		if src == nil || !src.broken {
			p.errs = append(p.errs, src.locate(e))
		}
	}
	if err := joinDefErrors(p.errs); err != nil {
		return nil, err
	}
	return p.repo, nil
}

type defKey struct{ kind, name string }

// source says where a definition was read from, to point errors at it.
type source struct {
	file  string
	doc   int
	line  int
	lines map[string]int    // field path -> line
	alias map[string]string // path the checker uses -> path the file uses
	// broken is set when the definition had parse errors; checks of it are
	// then left out, as they would repeat them.
	broken bool
}

// locate fills e's position from s; s may be nil.
func (s *source) locate(e *DefError) *DefError {
	if s == nil {
		return e
	}
	e.File, e.Doc, e.Line = s.file, s.doc, s.line
	if a, ok := s.alias[e.Path]; ok {
		e.Path = a
	}
	for p := e.Path; p != ""; p = parentPath(p) {
		if l, ok := s.lines[p]; ok {
			e.Line = l
			break
		}
	}
	return e
}

// parentPath strips the last element of a field path: "a[1].b" -> "a[1]" -> "a".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

type parser struct {
	repo *Repo
	srcs map[defKey]*source
	errs []*DefError
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) file(name string, data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			e := &DefError{File: name, Doc: doc, Msg: err.Error()}
			if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				e.Msg = "invalid YAML: " + m[2]
			}
			p.errs = append(p.errs, e)
			return // the decoder cannot go on past a syntax error
		}
		p.document(name, doc, &n)
	}
}

// document decodes one document into a definition of the repo.
func (p *parser) document(file string, doc int, n *yaml.Node) {
	if len(n.Content) == 0 {
		return
	}
	root := resolve(n.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return // an empty document, such as after a trailing ---
	}
	d := &docReader{p: p, src: &source{file: file, doc: doc, line: root.Line, lines: map[string]int{}, alias: map[string]string{}}}
	if root.Kind != yaml.MappingNode {
		d.errf(root, "", "expected a mapping with a kind (%s), got %s", kindHint, describe(root))
		return
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch resolve(root.Content[i]).Value {
		case "kind":
			d.kind = resolve(root.Content[i+1]).Value
		case "name":
			d.name = resolve(root.Content[i+1]).Value
		}
	}
	switch d.kind {
	case KindEntity:
		d.entity(root)
	case KindStream:
		d.stream(root)
	case KindView:
		d.view(root)
	case KindService:
		d.service(root)
	case "":
		d.errf(root, "kind", "missing kind (add kind: entity, stream, feature_view or feature_service)")
	default:
		kind := d.kind
		d.kind = "" // not a kind: leave it out of the error's context
		d.errf(root, "kind", "unknown kind %q (%s)", kind, kindHint)
	}
}

// docReader decodes one document, recording errors and field lines.
type docReader struct {
	p          *parser
	src        *source
	kind, name string
	failed     bool
	// merges counts the mappings merged so far (see maxMerges), mergeDepth
	// the merges under way.
	merges, mergeDepth int
	mergeReported      bool
}

// errf records an error at n, or, when n is nil (a missing key), at the
// closest enclosing path with a known line.
func (d *docReader) errf(n *yaml.Node, path, format string, args ...any) {
	d.failed = true
	e := &DefError{
		File: d.src.file, Doc: d.src.doc, Line: d.src.line,
		Kind: d.kind, Name: d.name, Path: path, Msg: fmt.Sprintf(format, args...),
	}
	if n != nil {
		e.Line = n.Line
	} else {
		for p := parentPath(path); p != ""; p = parentPath(p) {
			if l, ok := d.src.lines[p]; ok {
				e.Line = l
				break
			}
		}
	}
	d.p.errs = append(d.p.errs, e)
}

// register adds a decoded definition to the repo under its kind and name.
func (d *docReader) register(root *yaml.Node, add func()) {
	if d.name == "" {
		d.errf(root, "name", "missing name (add name: <lower_case_name>)")
		return
	}
	k := defKey{d.kind, d.name}
	if prev := d.p.srcs[k]; prev != nil {
		d.errf(root, "name", "duplicate %s %q: already defined in %s document %d (rename or remove one)", d.kind, d.name, prev.file, prev.doc)
		return
	}
	add()
	d.src.broken = d.failed
	d.p.srcs[k] = d.src
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

// mapping checks n is a mapping whose keys are all known and returns its
// values by key, recording their lines. Merge keys (<<) are expanded.
func (d *docReader) mapping(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errf(n, path, "expected a mapping of %s, got %s", strings.Join(known, ", "), describe(n))
		return nil
	}
	out := map[string]*yaml.Node{}
	merged := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Value == "<<" && k.Tag == "!!merge" {
			d.merge(v, path, merged, known)
			if d.merges > maxMerges && d.mergeDepth == 0 && !d.mergeReported {
				d.mergeReported = true
				d.errf(k, path, "too many merged mappings (<<) in one document (merge at most %d)", maxMerges)
			}
			continue
		}
		p := joinPath(path, k.Value)
		switch {
		case !slices.Contains(known, k.Value):
			d.errf(k, p, "unknown key %q (%s)", k.Value, suggest(k.Value, known, "known keys", ""))
		case out[k.Value] != nil:
			d.errf(k, p, "duplicate key %q (give each key once)", k.Value)
		default:
			out[k.Value] = v
			d.src.lines[p] = k.Line
		}
	}
	for k, v := range merged {
		if out[k] == nil {
			out[k] = v
			d.src.lines[joinPath(path, k)] = v.Line
		}
	}
	return out
}

// maxMerges bounds the mappings merged (<<) into one document, which
// aliases could otherwise make exponential.
const maxMerges = 1000

// merge collects the pairs of a merge key's mapping (or list of mappings).
func (d *docReader) merge(v *yaml.Node, path string, into map[string]*yaml.Node, known []string) {
	d.merges++
	if d.merges > maxMerges {
		return // reported by the outermost mapping
	}
	d.mergeDepth++
	defer func() { d.mergeDepth-- }()
	if v.Kind == yaml.SequenceNode {
		for _, item := range v.Content {
			d.merge(resolve(item), path, into, known)
		}
		return
	}
	for k, val := range d.mapping(v, path, known...) {
		if into[k] == nil {
			into[k] = val
		}
	}
}

// suggest names the closest known word, or lists the known words under the
// heading what, or, when there are none, says none.
func suggest(word string, known []string, what, none string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(word, k); dist < bestDist && dist < len(k) {
			best, bestDist = k, dist
		}
	}
	switch {
	case best != "":
		return fmt.Sprintf("did you mean %q?", best)
	case len(known) == 0:
		return none
	}
	return what + ": " + strings.Join(known, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// str reads a scalar as a string; a missing key gives "".
func (d *docReader) str(m map[string]*yaml.Node, key, path string) string {
	n := m[key]
	if n == nil || n.Tag == "!!null" {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.errf(n, joinPath(path, key), "expected a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

// strs reads a list of scalars.
func (d *docReader) strs(n *yaml.Node, path string) []string {
	if n.Kind != yaml.SequenceNode {
		d.errf(n, path, "expected a list such as [a, b], got %s", describe(n))
		return nil
	}
	var out []string
	for i, item := range n.Content {
		item = resolve(item)
		p := indexPath(path, i)
		d.src.lines[p] = item.Line
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			d.errf(item, p, "expected a string, got %s", describe(item))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

// boolean reads true or false; a missing key gives false.
func (d *docReader) boolean(m map[string]*yaml.Node, key, path string) bool {
	n := m[key]
	if n == nil || n.Tag == "!!null" {
		return false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.errf(n, joinPath(path, key), "expected true or false, got %s", describe(n))
	}
	return b
}

// integer reads a whole number; a missing key gives 0.
func (d *docReader) integer(m map[string]*yaml.Node, key, path string) int {
	n := m[key]
	if n == nil || n.Tag == "!!null" {
		return 0
	}
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		d.errf(n, joinPath(path, key), "expected a whole number, got %s", describe(n))
	}
	return i
}

// durationOmit says what leaving out each duration key means.
var durationOmit = map[string]string{
	"window":           "leave window out for a lifetime aggregate",
	"hop":              "leave hop out for the default",
	"ttl":              "leave ttl out for no bound",
	"allowed_lateness": "leave it out for the default of 1h",
}

// duration reads a positive duration; a missing key gives 0.
func (d *docReader) duration(m map[string]*yaml.Node, key, path string) time.Duration {
	n := m[key]
	if n == nil || n.Tag == "!!null" {
		return 0
	}
	if n.Kind != yaml.ScalarNode {
		d.errf(n, joinPath(path, key), "expected a duration such as 1h or 30d, got %s", describe(n))
		return 0
	}
	v, err := ParseDuration(n.Value)
	switch {
	case err != nil:
		d.errf(n, joinPath(path, key), "%v", err)
	case v <= 0:
		d.errf(n, joinPath(path, key), "%s must be positive (%s)", key, durationOmit[key])
	}
	return v
}

// typ reads a field type; a missing key is an error.
func (d *docReader) typ(m map[string]*yaml.Node, key, path string) schemas.Type {
	n := m[key]
	if n == nil || n.Tag == "!!null" {
		d.errf(n, joinPath(path, key), "missing type (add type: string, int64, float64, bool or timestamp)")
		return 0
	}
	if n.Kind != yaml.ScalarNode {
		d.errf(n, joinPath(path, key), "expected a type name, got %s", describe(n))
		return 0
	}
	t, err := schemas.ParseType(n.Value)
	if err != nil {
		d.errf(n, joinPath(path, key), "%v", err)
	}
	return t
}

// list checks n is a list and returns its items, recording their lines.
func (d *docReader) list(n *yaml.Node, path string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		d.errf(n, path, "expected a list, got %s", describe(n))
		return nil
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, item := range n.Content {
		items[i] = resolve(item)
		d.src.lines[indexPath(path, i)] = items[i].Line
	}
	return items
}

func (d *docReader) entity(root *yaml.Node) {
	m := d.mapping(root, "", "kind", "name", "key", "keys", "type", "types")
	e := &Entity{Name: d.name}
	switch {
	case m["key"] != nil && m["keys"] != nil:
		d.errf(m["keys"], "keys", "set key or keys, not both (keys: [a, b] is for composite keys)")
	case m["keys"] != nil:
		e.Keys = d.strs(m["keys"], "keys")
	default:
		if k := d.str(m, "key", ""); k != "" {
			e.Keys = []string{k}
		}
		d.src.alias["keys"] = "key"
		d.src.alias["keys[0]"] = "key"
	}
	switch {
	case m["type"] != nil && m["types"] != nil:
		d.errf(m["types"], "types", "set type or types, not both (type applies to every key)")
	case m["types"] != nil:
		for i, s := range d.strs(m["types"], "types") {
			t, err := schemas.ParseType(s)
			if err != nil {
				d.errf(m["types"].Content[i], indexPath("types", i), "%v", err)
			}
			e.Types = append(e.Types, t)
		}
	default:
		t := schemas.String
		if m["type"] != nil {
			t = d.typ(m, "type", "")
		}
		for i := range e.Keys {
			e.Types = append(e.Types, t)
			d.src.alias[indexPath("types", i)] = "type"
		}
		d.src.alias["types"] = "type"
	}
	d.register(root, func() { d.p.repo.Entities[d.name] = e })
}

func (d *docReader) stream(root *yaml.Node) {
	m := d.mapping(root, "", "kind", "name", "topic", "entity", "timestamp", "timestamp_unit", "unknown_fields", "schema")
	s := &Stream{Name: d.name, Topic: d.str(m, "topic", ""), Entity: d.str(m, "entity", "")}
	if m["topic"] == nil {
		s.Topic = d.name
	}
	sc := &schemas.Schema{
		Stream:        d.name,
		TimeField:     d.str(m, "timestamp", ""),
		TimeUnit:      schemas.TimeUnit(d.str(m, "timestamp_unit", "")),
		UnknownFields: schemas.UnknownFields(d.str(m, "unknown_fields", "")),
	}
	if sc.TimeUnit == "" {
		sc.TimeUnit = schemas.Milliseconds
	}
	if sc.UnknownFields == "" {
		sc.UnknownFields = schemas.RejectUnknown
	}
	if n := m["schema"]; n != nil {
		for i, item := range d.list(n, "schema") {
			sc.Fields = append(sc.Fields, d.field(item, indexPath("schema", i)))
		}
	}
	s.Schema = sc
	d.register(root, func() { d.p.repo.Streams[d.name] = s })
}

func (d *docReader) field(n *yaml.Node, path string) schemas.Field {
	m := d.mapping(n, path, "name", "type", "nullable", "default")
	f := schemas.Field{Name: d.str(m, "name", path), Type: d.typ(m, "type", path), Nullable: d.boolean(m, "nullable", path)}
	if dn := m["default"]; dn != nil && dn.Tag != "!!null" && f.Type != 0 {
		v, err := defaultValue(dn, f.Type)
		if err != nil {
			d.errf(dn, joinPath(path, "default"), "%v", err)
		}
		f.Default = v
	}
	return f
}

// defaultValue converts a YAML default to the Go form of a value of type t
// (see schemas.Event.Values).
func defaultValue(n *yaml.Node, t schemas.Type) (any, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("expected a %s value, got %s", t, describe(n))
	}
	switch t {
	case schemas.String:
		if n.Tag != "!!str" {
			return nil, fmt.Errorf("default %s is not a string (quote it: %q)", n.Value, n.Value)
		}
		return n.Value, nil
	case schemas.Int64:
		var v int64
		if n.Tag != "!!int" || n.Decode(&v) != nil {
			return nil, fmt.Errorf("default %s is not an int64", describe(n))
		}
		return v, nil
	case schemas.Float64:
		var v float64
		if (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("default %s is not a finite float64", describe(n))
		}
		return v, nil
	case schemas.Bool:
		var v bool
		if n.Tag != "!!bool" || n.Decode(&v) != nil {
			return nil, fmt.Errorf("default %s is not true or false", describe(n))
		}
		return v, nil
	case schemas.Timestamp:
		ts, err := time.Parse(time.RFC3339Nano, n.Value)
		if err != nil {
			return nil, fmt.Errorf("default %s is not an RFC 3339 time such as 2024-01-02T15:04:05Z", describe(n))
		}
		return ts.UnixMicro(), nil
	}
	return nil, fmt.Errorf("type %s takes no default", t)
}

func (d *docReader) view(root *yaml.Node) {
	m := d.mapping(root, "", "kind", "name", "entity", "source", "filter", "derive", "features", "allowed_lateness")
	v := &View{Name: d.name, Entity: d.str(m, "entity", ""), Source: d.str(m, "source", ""), Filter: d.str(m, "filter", ""),
		AllowedLateness: d.duration(m, "allowed_lateness", "")}
	if n := m["derive"]; n != nil {
		for i, item := range d.list(n, "derive") {
			p := indexPath("derive", i)
			dm := d.mapping(item, p, "name", "expr")
			v.Derive = append(v.Derive, Derived{Name: d.str(dm, "name", p), Expr: d.str(dm, "expr", p)})
		}
	}
	if n := m["features"]; n != nil {
		for i, item := range d.list(n, "features") {
			v.Features = append(v.Features, d.feature(item, indexPath("features", i)))
		}
	}
	d.register(root, func() { d.p.repo.Views[d.name] = v })
}

func (d *docReader) feature(n *yaml.Node, path string) Feature {
	m := d.mapping(n, path, "name", "field", "agg", "window", "hop", "ttl", "n")
	return Feature{
		Name:   d.str(m, "name", path),
		Field:  d.str(m, "field", path),
		Agg:    Agg(d.str(m, "agg", path)),
		Window: d.duration(m, "window", path),
		Hop:    d.duration(m, "hop", path),
		TTL:    d.duration(m, "ttl", path),
		N:      d.integer(m, "n", path),
	}
}

func (d *docReader) service(root *yaml.Node) {
	m := d.mapping(root, "", "kind", "name", "features")
	s := &Service{Name: d.name}
	if n := m["features"]; n != nil {
		s.Features = d.strs(n, "features")
	}
	d.register(root, func() { d.p.repo.Services[d.name] = s })
}

// link fills what one definition takes from another: a stream's key fields
// are its entity's keys, and a view without an entity takes its stream's.
func (p *parser) link() {
	for _, s := range p.repo.Streams {
		if e := p.repo.Entities[s.Entity]; e != nil {
			s.Schema.KeyFields = slices.Clone(e.Keys)
		}
	}
	for _, v := range p.repo.Views {
		if s := p.repo.Streams[v.Source]; v.Entity == "" && s != nil {
			v.Entity = s.Entity
		}
	}
}
