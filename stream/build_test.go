package stream

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBuildsPauseWhatTheyBuild follows the partitions of a backfill in
// progress through assignments and revocations: each is paused in the
// consumer while it is to be built, and let go when it is revoked, so a
// partition that comes back already built elsewhere is fetched again.
func TestBuildsPauseWhatTheyBuild(t *testing.T) {
	e, reg, _ := newTestEngine(t, clicksRepo)
	cl := joinGroup(t, e, "clicks")
	_, _, topo := layout(t, reg, "user_clicks")
	job := topo.byTopic["clicks"]
	cv := job.views[0]
	building := func() map[string][]int32 {
		out := map[string][]int32{}
		for _, b := range e.builds {
			for p := range b.parts {
				out[b.topic] = append(out[b.topic], p)
			}
			slices.Sort(out[b.topic])
		}
		return out
	}
	paused := func() map[string][]int32 {
		out := cl.PauseFetchPartitions(nil)
		for _, ps := range out {
			slices.Sort(ps)
		}
		return out
	}
	steps := []struct {
		name string
		do   func()
		want map[string][]int32
	}{
		{"assigned", func() { e.addBuild("clicks", job, cv, []int32{0, 1}) }, map[string][]int32{"clicks": {0, 1}}},
		{"assigned more", func() { e.addBuild("clicks", job, cv, []int32{2}) }, map[string][]int32{"clicks": {0, 1, 2}}},
		{"one revoked", func() { e.dropBuilds(map[string][]int32{"clicks": {1}}) }, map[string][]int32{"clicks": {0, 2}}},
		{"the rest revoked", func() { e.dropBuilds(map[string][]int32{"clicks": {0, 2}}) }, map[string][]int32{}},
		{"assigned again", func() { e.addBuild("clicks", job, cv, []int32{3}) }, map[string][]int32{"clicks": {3}}},
	}
	for _, s := range steps {
		s.do()
		if diff := cmp.Diff(s.want, building()); diff != "" {
			t.Errorf("%s: partitions being built (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(s.want, paused()); diff != "" {
			t.Errorf("%s: partitions paused (-want +got):\n%s", s.name, diff)
		}
	}
	if len(e.builds) != 1 {
		t.Errorf("%d backfills of the view, want 1", len(e.builds))
	}
	e.dropBuilds(nil) // the consumer stops
	if len(e.builds) != 0 {
		t.Errorf("%d backfills left after the consumer stopped, want none", len(e.builds))
	}
}
