package train

import (
	"slices"

	"github.com/sluicehq/sluice/featurestore/pit"
	"github.com/sluicehq/sluice/featurestore/window"
)

// FeatureColumn returns the dataset column of a feature: named
// <view>__<feature>, typed by its aggregation (counts are int64 and never
// null; sum keeps its input's type; mean and stddev are float64; last_n is
// a list of its input's type).
func FeatureColumn(view, feature string, s window.Spec) Column {
	t, list := s.ResultType()
	c := Column{Name: view + "__" + feature, Type: t, List: list, Nullable: true, Feature: true}
	switch s.Agg {
	case window.Count, window.CountTrue, window.Sum:
		c.Nullable = false
	}
	return c
}

// blockRows is how many rows write hands the Writer at once.
const blockRows = 64 << 10

// write writes the spine's rows with the feature values, in spine order.
func write(o BuildOptions, sp *spine, q pit.Query, res pit.Result, offsets map[string]map[int32]int64) (Manifest, error) {
	cols := append([]Column(nil), sp.cols...)
	var refs []FeatureRef
	for _, v := range q.Views {
		for _, k := range v.Which {
			f := v.CV.View.Features[k]
			c := FeatureColumn(v.CV.View.Name, f.Name, v.CV.Specs[k])
			cols = append(cols, c)
			refs = append(refs, FeatureRef{View: v.CV.View.Name, Feature: f.Name, Version: v.CV.View.Version, Column: c.Name})
		}
	}
	all := sp.vectors()
	for vi := range q.Views {
		for _, c := range res[vi] {
			all = append(all, resultVector(c))
		}
	}
	w, err := NewWriter(o.Out, cols, o.Writer)
	if err != nil {
		return Manifest{}, err
	}
	b := Block{Rows: len(sp.times), Cols: all}
	for lo := 0; lo < b.Rows; lo += blockRows {
		if err := w.WriteBlock(b.slice(lo, min(lo+blockRows, b.Rows))); err != nil {
			_ = w.Abort()
			return Manifest{}, err
		}
	}
	m := Manifest{Mode: q.Mode.String(), Spine: sp.desc, Label: o.Label, Features: refs, SourceOffsets: offsets}
	return w.Close(m)
}

// vectors returns the spine's columns as vectors, without the null marks
// of those that hold no null.
func (sp *spine) vectors() []Vector {
	out := make([]Vector, len(sp.vecs))
	for i, v := range sp.vecs {
		if !slices.Contains(v.Null, true) {
			v.Null = nil
		}
		out[i] = v
	}
	return out
}

// resultVector returns a feature's result column as a vector, sharing its
// memory.
func resultVector(c *pit.Column) Vector {
	return Vector{Null: c.Null, Int: c.Int, Float: c.Float, Bool: c.Bool, Str: c.Str, Lists: c.Lists}
}
