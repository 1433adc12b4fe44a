package featurestore

import (
	"fmt"
	"slices"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// CompiledView is a view ready to run: its filter and derived fields
// compiled, the inputs its features read, and their time-rule specs.
type CompiledView struct {
	View   *View
	Stream *Stream
	Entity *Entity
	// Inputs names the values kept per event, in window.Event.Values order.
	Inputs     []string
	InputTypes []schemas.Type
	// Specs holds one spec per feature, in View.Features order.
	Specs []window.Spec
	// Layout places the specs on tile grids.
	Layout *window.Layout
	// Retention is how long after its event time an event can still change
	// a windowed value at a time after its arrival (Layout.Retention).
	// Lifetime aggregates take events of any age.
	Retention time.Duration

	filter  *vm.Program
	derive  []*vm.Program
	needEnv bool
	keyIdx  []int // schema positions of the view entity's key fields
	// inputSrc[i] >= 0 is a schema position; < 0 is derived value -(n+1).
	inputSrc []int
}

// Compile prepares the named view of r for running.
func Compile(r *Repo, name string) (*CompiledView, error) {
	v := r.Views[name]
	if v == nil {
		return nil, fmt.Errorf("unknown feature view %q", name)
	}
	return compile(r, v)
}

// CompilePrevious compiles the previous version of a view (Repo.Previous)
// against r's streams and entities: nil when r keeps none, or when it was
// keyed by another entity than the current version, so that the entity
// keys a read gives do not name its state.
func CompilePrevious(r *Repo, name string) (*CompiledView, error) {
	v, cur := r.Previous[name], r.Views[name]
	if v == nil || cur == nil || v.Entity != cur.Entity {
		return nil, nil
	}
	return compile(r, v)
}

func compile(r *Repo, v *View) (*CompiledView, error) {
	name := v.Name
	st := r.Streams[v.Source]
	ent := r.Entities[v.Entity]
	if st == nil || ent == nil {
		return nil, fmt.Errorf("feature view %q: missing stream %q or entity %q", name, v.Source, v.Entity)
	}
	s := st.Schema
	cv := &CompiledView{View: v, Stream: st, Entity: ent}
	env := map[string]any{}
	types := map[string]schemas.Type{}
	for _, f := range s.Fields {
		env[f.Name] = envValue(f.Type)
		types[f.Name] = f.Type
	}
	if v.Filter != "" {
		p, err := expr.Compile(v.Filter, expr.Env(env), expr.AsBool())
		if err != nil {
			return nil, fmt.Errorf("feature view %q: filter: %w", name, err)
		}
		cv.filter = p
	}
	derived := map[string]int{}
	for i, d := range v.Derive {
		p, err := expr.Compile(d.Expr, expr.Env(env))
		if err != nil {
			return nil, fmt.Errorf("feature view %q: derive %q: %w", name, d.Name, err)
		}
		t := exprType(p.Node().Type())
		if t == 0 {
			return nil, fmt.Errorf("feature view %q: derive %q: cannot infer its type (convert it, for example float(x))", name, d.Name)
		}
		env[d.Name] = envValue(t)
		types[d.Name] = t
		derived[d.Name] = i
		cv.derive = append(cv.derive, p)
	}
	cv.needEnv = cv.filter != nil || len(cv.derive) > 0
	for _, k := range ent.Keys {
		i := s.Index(k)
		if i < 0 {
			return nil, fmt.Errorf("feature view %q: stream %q lacks key field %q of entity %q", name, st.Name, k, ent.Name)
		}
		cv.keyIdx = append(cv.keyIdx, i)
	}
	slot := map[string]int{}
	for _, f := range v.Features {
		input := -1
		var typ schemas.Type
		if f.Field != "" {
			n, ok := slot[f.Field]
			if !ok {
				n = len(cv.Inputs)
				slot[f.Field] = n
				cv.Inputs = append(cv.Inputs, f.Field)
				cv.InputTypes = append(cv.InputTypes, types[f.Field])
				if i := s.Index(f.Field); i >= 0 {
					cv.inputSrc = append(cv.inputSrc, i)
				} else if d, ok := derived[f.Field]; ok {
					cv.inputSrc = append(cv.inputSrc, -(d + 1))
				} else {
					return nil, fmt.Errorf("feature view %q: feature %q: unknown field %q", name, f.Name, f.Field)
				}
			}
			input, typ = n, types[f.Field]
		}
		cv.Specs = append(cv.Specs, window.NewSpec(f.Agg, input, typ, f.Window, f.Hop, f.TTL, f.N))
	}
	lateness := v.AllowedLateness
	if lateness == 0 {
		lateness = window.DefaultLateness
	}
	cv.Layout = window.NewLayout(cv.Specs, lateness)
	cv.Retention = time.Duration(cv.Layout.Retention) * time.Microsecond
	return cv, nil
}

// Apply runs the view over one decoded event: it returns the entity key and
// the input values, or pass=false when the filter rejects the event. A
// filter that fails at run time (for example on a null field) rejects; a
// derived field that fails is null.
func (cv *CompiledView) Apply(ev *schemas.Event) (key string, values []any, pass bool) {
	var env map[string]any
	var derivedVals []any
	if cv.needEnv {
		env = make(map[string]any, len(ev.Values)+len(cv.derive))
		for i, f := range cv.Stream.Schema.Fields {
			env[f.Name] = ev.Values[i]
		}
		if cv.filter != nil {
			out, err := expr.Run(cv.filter, env)
			if ok, _ := out.(bool); err != nil || !ok {
				return "", nil, false
			}
		}
		derivedVals = make([]any, len(cv.derive))
		for i, p := range cv.derive {
			out, err := expr.Run(p, env)
			if err != nil {
				out = nil
			}
			out = normalize(out)
			derivedVals[i] = out
			env[cv.View.Derive[i].Name] = out
		}
	}
	values = make([]any, len(cv.inputSrc))
	for i, src := range cv.inputSrc {
		if src >= 0 {
			values[i] = ev.Values[src]
		} else {
			values[i] = derivedVals[-src-1]
		}
	}
	return cv.Key(ev), values, true
}

// Direct reports whether the view keeps its inputs straight from the
// stream's fields, with no filter and no derived field; if so it returns
// the schema positions of its inputs and of its entity's key fields, and
// a reader of columns may skip Apply.
func (cv *CompiledView) Direct() (inputs, keys []int, ok bool) {
	if cv.needEnv || slices.ContainsFunc(cv.inputSrc, func(src int) bool { return src < 0 }) {
		return nil, nil, false
	}
	return cv.inputSrc, cv.keyIdx, true
}

// Key returns the canonical key of the view's entity in an event.
func (cv *CompiledView) Key(ev *schemas.Event) string {
	if len(cv.keyIdx) == 1 {
		return schemas.KeyPart(ev.Values[cv.keyIdx[0]])
	}
	parts := make([]string, len(cv.keyIdx))
	for i, k := range cv.keyIdx {
		parts[i] = schemas.KeyPart(ev.Values[k])
	}
	return schemas.JoinKey(parts)
}

// normalize converts an expression result to the Go types of Event.Values.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}
