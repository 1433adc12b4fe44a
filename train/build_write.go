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

// datasetColumns returns a training set's columns, the spine's then the
// features', and the features' references.
func datasetColumns(spineCols []Column, views []*view) ([]Column, []FeatureRef) {
	cols := slices.Clone(spineCols)
	var refs []FeatureRef
	for _, v := range views {
		for _, k := range v.which {
			f := v.cv.View.Features[k]
			c := FeatureColumn(v.cv.View.Name, f.Name, v.cv.Specs[k])
			cols = append(cols, c)
			refs = append(refs, FeatureRef{View: v.cv.View.Name, Feature: f.Name, Version: v.cv.View.Version, Column: c.Name})
		}
	}
	return cols, refs
}

// writeRun writes a run of spine rows with their feature values, in spine
// order.
func writeRun(w *Writer, sp *spine, res pit.Result) error {
	all := sp.vectors()
	for vi := range res {
		for _, c := range res[vi] {
			all = append(all, resultVector(c))
		}
	}
	b := Block{Rows: len(sp.times), Cols: all}
	for lo := 0; lo < b.Rows; lo += blockRows {
		if err := w.WriteBlock(b.slice(lo, min(lo+blockRows, b.Rows))); err != nil {
			return err
		}
	}
	return nil
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
