package window_test

// Script tests: each testdata/*.txt file is a list of cases that read like
// the time rule of DESIGN.md section 4. A case is a block of lines, then a
// line "----", then the expected output, then a blank line:
//
//	# comments start with '#'
//	day 2026-01-01
//	spec agg=count window=1h
//	event t=10:00
//	event t=10:58 v=3 seq=7 arrival=11:02
//	at 11:00
//	at 11:00 mode=as_served
//	----
//	11:00 -> 2 PRESENT 10:58
//	11:00 mode=as_served -> 1 PRESENT 10:00
//
// Directives:
//
//	day DATE      clock times (10:58, 10:59:59.999999) below fall on this UTC
//	              day; it holds until the next day line, across cases. A time
//	              with a 'T' is full RFC 3339 (1969-12-31T23:00:00Z).
//	spec k=v...   a feature: agg (required), window, hop, ttl (90s, 1h, 30d,
//	              11d23h; none means lifetime and default hop), n (last_n),
//	              field (default v; count defaults to none, which counts
//	              events), type (int64 by default, bool for count_true;
//	              string, float64, timestamp), name (needed when a case has
//	              several specs, which Eval computes in one call).
//	event k=v...  an event: t (event time, required), seq (default: its
//	              position in the case), arrival (default: t), and one value
//	              per field read by a spec: "null" or a missing field is null.
//	              Strings may be quoted. Events may be listed in any order:
//	              the harness sorts them by (time, seq) as Eval requires.
//	at TIME [mode=as_served]
//	              a query; each prints one line per spec.
//
// Output: "<at args> -> [name: ]<value> <status> <time>" where value is null,
// an int64 (6), a float64 (always with a point or exponent: 6.0, 2.5,
// 10 significant digits), a quoted string, a time (timestamp inputs), or a
// list [a b] (last_n); time is Value.Time, or "-" when HasTime is false (the
// value includes no event).
//
// The semantics the scripts pin down (DESIGN.md section 4 plus the team's
// decisions where it is silent):
//
//   - The value at t aggregates the events with floor(t-w, h) <= time < t
//     (windowed) or time < t (lifetime). The head is exact; the tail moves
//     in steps of the hop, counted from the Unix epoch (also before 1970).
//     Default hop: 5m for windows under 12h, 1h under 12d, else 1d.
//   - Nulls are skipped by every aggregation; count without a field counts
//     events, count with a field counts non-null values.
//   - count, count_true and sum over an empty window are 0: PRESENT when the
//     entity has any visible event before t, else NOT_FOUND.
//   - mean, min, max, stddev, last_n and approx_distinct over an empty window
//     are null: NULL_VALUE, or NOT_FOUND when the entity has no visible event
//     before t. stddev is the sample stddev (n-1), null under 2 values.
//   - sum of int64 inputs is an int64, of float64 inputs a float64.
//   - last/first take the latest (earliest) non-null value with
//     t-ttl <= time < t (no ttl: any time < t); ties on time go to the
//     higher seq, for first as for last. Nothing there gives null with
//     OUTSIDE_MAX_AGE when an older non-null value exists, else NOT_FOUND.
//   - last_n gives the last n non-null values, oldest first.
//   - as_served also requires arrival < t.
//   - Value.Time is the event time of the latest event the value includes
//     (for last/first, of the chosen event).
//
// Run with -update to rewrite the outputs from what Eval returns; check
// every changed line against DESIGN.md section 4 by hand before keeping it.

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of testdata/*.txt with what Eval returns")

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) { runScript(t, path) })
	}
}

// scriptCase is one case of a script: its input lines as written (comments
// and blank lines before it included) and its expected output.
type scriptCase struct {
	line  int // 1-based line of the case's first input line
	input []string
	want  []string
}

// parseScript splits a script into cases; tail holds what follows the last.
func parseScript(text string) (cases []scriptCase, tail []string, err error) {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	cur := scriptCase{line: 1}
	for i := 0; i < len(lines); i++ {
		if lines[i] != "----" {
			cur.input = append(cur.input, lines[i])
			continue
		}
		for i+1 < len(lines) && lines[i+1] != "" {
			i++
			cur.want = append(cur.want, lines[i])
		}
		cases = append(cases, cur)
		cur = scriptCase{line: i + 2}
	}
	for _, l := range cur.input {
		if l != "" && !strings.HasPrefix(l, "#") {
			return nil, nil, fmt.Errorf("line %d: input %q has no ---- and output after it", cur.line, l)
		}
	}
	return cases, cur.input, nil
}

func runScript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cases, tail, err := parseScript(string(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := &scriptRunner{}
	var out strings.Builder
	for _, c := range cases {
		got, err := r.run(c.input)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, c.line, err)
		}
		if *update {
			c.want = got
		} else if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s:%d: output differs (-want +got):\n%s", path, c.line, diff)
		}
		for _, l := range c.input {
			out.WriteString(l + "\n")
		}
		out.WriteString("----\n")
		for _, l := range c.want {
			out.WriteString(l + "\n")
		}
	}
	for _, l := range tail {
		out.WriteString(l + "\n")
	}
	if *update {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scriptRunner runs cases; day carries over from one case to the next.
type scriptRunner struct {
	day time.Time
}

// scriptSpec is one spec line.
type scriptSpec struct {
	name  string
	field string // "" when the spec reads no field
	spec  window.Spec
}

// scriptCaseState is what one case has declared so far.
type scriptCaseState struct {
	specs  []scriptSpec
	fields []string // fields read by the specs, in Event.Values order
	types  []schemas.Type
	raw    []map[string]string // the event lines' arguments
	ats    [][]string          // the at lines' arguments
}

// run runs one case and returns its output lines.
func (r *scriptRunner) run(input []string) ([]string, error) {
	st := &scriptCaseState{}
	for _, line := range input {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		words, err := splitWords(line)
		if err != nil {
			return nil, err
		}
		switch words[0] {
		case "day":
			if len(words) != 2 {
				return nil, fmt.Errorf("%q: want day YYYY-MM-DD", line)
			}
			if r.day, err = time.Parse(time.DateOnly, words[1]); err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
		case "spec":
			err = st.addSpec(words[1:])
		case "event":
			var kv map[string]string
			kv, err = keyValues(words[1:])
			st.raw = append(st.raw, kv)
		case "at":
			if len(words) < 2 {
				return nil, fmt.Errorf("%q: want at TIME [mode=as_served]", line)
			}
			st.ats = append(st.ats, words[1:])
		default:
			err = fmt.Errorf("unknown directive %q (use day, spec, event or at)", words[0])
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
	}
	events, err := r.events(st)
	if err != nil {
		return nil, err
	}
	return r.query(st, events)
}

// query evaluates every at line.
func (r *scriptRunner) query(st *scriptCaseState, events []window.Event) ([]string, error) {
	if len(st.specs) == 0 {
		return nil, fmt.Errorf("case has no spec line")
	}
	specs := make([]window.Spec, len(st.specs))
	for i, s := range st.specs {
		specs[i] = s.spec
	}
	var lines []string
	for _, args := range st.ats {
		at, err := r.parseTime(args[0])
		if err != nil {
			return nil, err
		}
		kv, err := keyValues(args[1:])
		if err != nil {
			return nil, err
		}
		mode, err := window.ParseMode(kv["mode"])
		if err != nil {
			return nil, err
		}
		delete(kv, "mode")
		if len(kv) > 0 {
			return nil, fmt.Errorf("at %s: unknown arguments %v (only mode=)", args[0], kv)
		}
		out := make([]window.Value, len(specs))
		window.Eval(at, mode, specs, events, out)
		for i, v := range out {
			label := ""
			if len(specs) > 1 {
				label = st.specs[i].name + ": "
			}
			if !v.HasTime && v.Time != 0 {
				return nil, fmt.Errorf("at %s: %s: Time %d without HasTime", args[0], st.specs[i].name, v.Time)
			}
			lines = append(lines, fmt.Sprintf("%s -> %s%s %s %s", strings.Join(args, " "), label,
				r.formatValue(v.V, st.specs[i].spec), v.Status, r.formatTime(v)))
		}
	}
	return lines, nil
}

func (st *scriptCaseState) addSpec(words []string) error {
	kv, err := keyValues(words)
	if err != nil {
		return err
	}
	agg := window.Agg(kv["agg"])
	if !slices.Contains(window.Aggs, agg) {
		return fmt.Errorf("unknown agg %q", agg)
	}
	s := scriptSpec{name: kv["name"], field: "v"}
	if s.name == "" {
		s.name = string(agg)
	}
	if agg == window.Count {
		s.field = ""
	}
	if f, ok := kv["field"]; ok {
		s.field = f
		if f == "none" {
			s.field = ""
		}
	}
	typ := schemas.Int64
	if agg == window.CountTrue {
		typ = schemas.Bool
	}
	if name, ok := kv["type"]; ok {
		if typ, err = schemas.ParseType(name); err != nil {
			return err
		}
	}
	var d [3]time.Duration
	for i, k := range []string{"window", "hop", "ttl"} {
		if d[i], err = parseDuration(kv[k]); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	n := 0
	if kv["n"] != "" {
		if n, err = strconv.Atoi(kv["n"]); err != nil {
			return fmt.Errorf("n: %w", err)
		}
	}
	for k := range kv {
		if !slices.Contains([]string{"agg", "window", "hop", "ttl", "n", "field", "type", "name"}, k) {
			return fmt.Errorf("unknown spec key %q", k)
		}
	}
	if slices.ContainsFunc(st.specs, func(o scriptSpec) bool { return o.name == s.name }) {
		return fmt.Errorf("two specs named %q (set name=)", s.name)
	}
	input := -1
	if s.field != "" {
		input = slices.Index(st.fields, s.field)
		switch {
		case input < 0:
			input = len(st.fields)
			st.fields = append(st.fields, s.field)
			st.types = append(st.types, typ)
		case st.types[input] != typ:
			return fmt.Errorf("field %q read as %s and as %s", s.field, st.types[input], typ)
		}
	}
	s.spec = window.NewSpec(agg, input, typ, d[0], d[1], d[2], n)
	st.specs = append(st.specs, s)
	return nil
}

// events builds the case's events, sorted by (time, seq).
func (r *scriptRunner) events(st *scriptCaseState) ([]window.Event, error) {
	var events []window.Event
	for i, kv := range st.raw {
		e := window.Event{Seq: int64(i + 1), Values: make([]any, len(st.fields))}
		var err error
		if e.Time, err = r.parseTime(kv["t"]); err != nil {
			return nil, fmt.Errorf("event %d: t: %w", i+1, err)
		}
		e.Arrival = e.Time
		for k, v := range kv {
			switch k {
			case "t":
			case "seq":
				e.Seq, err = strconv.ParseInt(v, 10, 64)
			case "arrival":
				e.Arrival, err = r.parseTime(v)
			default:
				j := slices.Index(st.fields, k)
				if j < 0 {
					return nil, fmt.Errorf("event %d: field %q is read by no spec", i+1, k)
				}
				e.Values[j], err = r.parseValue(v, st.types[j])
			}
			if err != nil {
				return nil, fmt.Errorf("event %d: %s: %w", i+1, k, err)
			}
		}
		events = append(events, e)
	}
	slices.SortStableFunc(events, func(a, b window.Event) int {
		if a.Before(&b) {
			return -1
		}
		if b.Before(&a) {
			return 1
		}
		return 0
	})
	return events, nil
}

func (r *scriptRunner) parseValue(s string, typ schemas.Type) (any, error) {
	if s == "null" {
		return nil, nil
	}
	switch typ {
	case schemas.Int64:
		return strconv.ParseInt(s, 10, 64)
	case schemas.Float64:
		return strconv.ParseFloat(s, 64)
	case schemas.Bool:
		return strconv.ParseBool(s)
	case schemas.Timestamp:
		return r.parseTime(s)
	}
	if strings.HasPrefix(s, `"`) {
		return strconv.Unquote(s)
	}
	return s, nil
}

// parseTime parses a clock time on r.day or a full RFC 3339 time, to µs.
func (r *scriptRunner) parseTime(s string) (int64, error) {
	if strings.Contains(s, "T") {
		tm, err := time.Parse(time.RFC3339Nano, s)
		return tm.UnixMicro(), err
	}
	if r.day.IsZero() {
		return 0, fmt.Errorf("clock time %q before any day line", s)
	}
	layout := "15:04:05.999999999"
	if strings.Count(s, ":") == 1 {
		layout = "15:04"
	}
	clock, err := time.Parse(layout, s)
	if err != nil {
		return 0, err
	}
	since := clock.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))
	return r.day.Add(since).UnixMicro(), nil
}

// formatTime prints Value.Time: "-" when the value includes no event, a
// clock time on r.day, else RFC 3339.
func (r *scriptRunner) formatTime(v window.Value) string {
	if !v.HasTime {
		return "-"
	}
	return r.formatInstant(v.Time)
}

func (r *scriptRunner) formatInstant(us int64) string {
	tm := time.UnixMicro(us).UTC()
	if !tm.Truncate(24 * time.Hour).Equal(r.day) {
		return tm.Format(time.RFC3339Nano)
	}
	if tm.Second() == 0 && tm.Nanosecond() == 0 {
		return tm.Format("15:04")
	}
	return tm.Format("15:04:05.999999")
}

// formatValue prints a value; int64s are times for the aggregations that
// return their timestamp input as it is.
func (r *scriptRunner) formatValue(v any, s window.Spec) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case int64:
		keeps := slices.Contains([]window.Agg{window.Min, window.Max, window.Last, window.First, window.LastN}, s.Agg)
		if s.Type == schemas.Timestamp && keeps {
			return r.formatInstant(x)
		}
		return strconv.FormatInt(x, 10)
	case float64:
		f := strconv.FormatFloat(x, 'g', 10, 64)
		if !strings.ContainsAny(f, ".eEnN") {
			f += ".0"
		}
		return f
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = r.formatValue(e, s)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

// parseDuration parses Go durations with an extra leading day count:
// "30d", "11d23h", "1h"; "" is 0.
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	return days + d, err
}

// keyValues parses k=v words.
func keyValues(words []string) (map[string]string, error) {
	kv := map[string]string{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q: want key=value", w)
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("key %q given twice", k)
		}
		kv[k] = v
	}
	return kv, nil
}

// splitWords splits a line on spaces, keeping double-quoted strings (with
// Go escapes) whole.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(line):
			cur.WriteByte(c)
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote = !inQuote
			cur.WriteByte(c)
		case c == ' ' && !inQuote:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words, nil
}
