package train

import (
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
	w, err := NewWriter(o.Out, cols, o.Writer)
	if err != nil {
		return Manifest{}, err
	}
	row := make([]any, len(cols))
	for r := range sp.times {
		i := 0
		for _, col := range sp.values {
			row[i] = col[r]
			i++
		}
		for vi := range q.Views {
			for k := range res[vi] {
				row[i] = res[vi][k].Value(r)
				i++
			}
		}
		if err := w.Write(row); err != nil {
			_ = w.Abort()
			return Manifest{}, err
		}
	}
	m := Manifest{Mode: q.Mode.String(), Spine: sp.desc, Label: o.Label, Features: refs, SourceOffsets: offsets}
	return w.Close(m)
}
