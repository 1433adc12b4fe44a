package featurestore

import (
	"fmt"
	"slices"
	"strings"
)

// FeatureRef is one selected feature: a view and the index of one of its
// features.
type FeatureRef struct {
	View    string
	Feature int
}

// Select resolves a request for features, given either as "view:feature"
// names ("view:*" for all of a view's) or as a feature service, into
// references in the order asked.
func (r *Repo) Select(features []string, service string) ([]FeatureRef, error) {
	names := features
	if service != "" {
		if len(names) > 0 {
			return nil, fmt.Errorf("give either features or a feature service, not both")
		}
		svc := r.Services[service]
		if svc == nil {
			return nil, fmt.Errorf("feature service: unknown %q", service)
		}
		names = svc.Features
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("features: none requested (name them as view:feature, or give a feature service)")
	}
	var refs []FeatureRef
	for _, n := range names {
		view, feat, ok := strings.Cut(n, ":")
		if !ok {
			return nil, fmt.Errorf("features: %q is not of the form view:feature", n)
		}
		v := r.Views[view]
		if v == nil {
			return nil, fmt.Errorf("features: %q: unknown feature view %q", n, view)
		}
		if feat == "*" {
			for i := range v.Features {
				refs = append(refs, FeatureRef{view, i})
			}
			continue
		}
		i := slices.IndexFunc(v.Features, func(f Feature) bool { return f.Name == feat })
		if i < 0 {
			return nil, fmt.Errorf("features: %q: feature view %q has no feature %q", n, view, feat)
		}
		refs = append(refs, FeatureRef{view, i})
	}
	return refs, nil
}
