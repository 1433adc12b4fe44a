package featurestore

import (
	"slices"
	"strings"
)

func sortViews(vs []*View) {
	slices.SortFunc(vs, func(a, b *View) int { return strings.Compare(a.Name, b.Name) })
}
