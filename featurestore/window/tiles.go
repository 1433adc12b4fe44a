package window

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Layout places a view's specs on tile grids. Each windowed spec lives on
// the grid of its hop; lifetime aggregates, last and first share the long
// grid, which is the widest windowed grid when the view has one. A value at t merges about w/h tiles of its grid plus the head
// tile, which holds the events of [floor(t, h), t); only when the head tile
// also holds events at or after t does a read look at that one tile's
// events.
type Layout struct {
	Specs []Spec
	Grids []Grid
	// Long is the index of the long grid in Grids, or -1 when every spec
	// is windowed.
	Long int
	// Retention is how long an event stays able to change a windowed value
	// at some time after its arrival: the largest window plus its hop, or
	// TTL, plus the allowed lateness; at least the long grid's width plus
	// the lateness.
	Retention int64
	slot      []slot
	lateness  int64
}

// Grid is one tile width and the specs whose partials its tiles hold.
type Grid struct {
	Width int64 // µs
	Specs []int // indexes into Layout.Specs
}

type slot struct{ grid, index int }

// DefaultLongTile is the long grid's width when a view has no windowed
// spec to borrow it from.
const DefaultLongTile = int64(time.Hour / time.Microsecond)

// NewLayout lays out specs; lateness is the view's allowed lateness.
func NewLayout(specs []Spec, lateness time.Duration) *Layout {
	return newLayout(specs, lateness.Microseconds(), DefaultLongTile)
}

// newLayout lays out specs with a long grid of width longTile when no
// windowed spec lends it one.
func newLayout(specs []Spec, lateness, longTile int64) *Layout {
	l := &Layout{Specs: specs, Long: -1, slot: make([]slot, len(specs)), lateness: lateness}
	widths := map[int64]int{}
	var longest int64
	for i := range specs {
		if h := specs[i].hop(); h > 0 {
			longest = max(longest, h)
			if _, ok := widths[h]; !ok {
				widths[h] = len(l.Grids)
				l.Grids = append(l.Grids, Grid{Width: h})
			}
		}
	}
	for i := range specs {
		g := -1
		if h := specs[i].hop(); h > 0 {
			g = widths[h]
		} else {
			if l.Long < 0 {
				// The long grid shares the widest windowed grid when there
				// is one: an event then updates one tile fewer.
				if longest > 0 {
					l.Long = widths[longest]
				} else {
					l.Long = len(l.Grids)
					l.Grids = append(l.Grids, Grid{Width: longTile})
				}
			}
			g = l.Long
		}
		l.slot[i] = slot{g, len(l.Grids[g].Specs)}
		l.Grids[g].Specs = append(l.Grids[g].Specs, i)
	}
	var r int64
	for i := range specs {
		s := &specs[i]
		switch {
		case s.hop() > 0:
			r = max(r, s.Window+s.hop())
		case (s.Agg == Last || s.Agg == First) && s.TTL > 0:
			r = max(r, s.TTL)
		}
	}
	if l.Long >= 0 {
		r = max(r, l.Grids[l.Long].Width)
	}
	l.Retention = r + lateness
	return l
}

// Sub lays out some of l's specs (indexes into Specs) with l's lateness:
// spec i of the result is Specs[which[i]], and its values are theirs.
// longTile, when positive, is the width of the long grid if none of them
// is windowed: a state that only ever holds events before the times it is
// read at, as the point-in-time engine's, can keep them all in one tile.
func (l *Layout) Sub(which []int, longTile int64) *Layout {
	specs := make([]Spec, len(which))
	for i, w := range which {
		specs[i] = l.Specs[w]
	}
	if longTile <= 0 {
		longTile = DefaultLongTile
	}
	return newLayout(specs, l.lateness, longTile)
}

// Late reports whether an event arrived after the layout's retention: it
// can no longer change a windowed value at any time after its arrival, so
// windowed specs leave it out; lifetime aggregates, last and first take it.
func (l *Layout) Late(e *Event) bool { return e.Time < e.Arrival-l.Retention }

// Windowed reports whether the spec's tiles are on a grid of its hop
// rather than the long grid.
func (s *Spec) Windowed() bool { return s.hop() > 0 }

// MinWidth is the narrowest tile width of l's grids.
func (l *Layout) MinWidth() int64 {
	w := int64(math.MaxInt64)
	for _, g := range l.Grids {
		w = min(w, g.Width)
	}
	return w
}

// hop is the spec's tile width on a windowed grid, or 0 when it belongs on
// the long grid.
func (s *Spec) hop() int64 {
	if s.Window <= 0 || s.Agg == Last || s.Agg == First {
		return 0
	}
	if s.Hop > 0 {
		return s.Hop
	}
	return DefaultHop(time.Duration(s.Window) * time.Microsecond).Microseconds()
}

// State is one entity's aggregates in a layout: tiles per grid and, for
// the long grid, a base that folds tiles that have aged out.
type State struct {
	// Seen is the event time of the entity's earliest event; HasSeen is
	// false while it has none.
	Seen    int64
	HasSeen bool
	// Horizon: long-grid events before it live in Base, not in tiles.
	Horizon int64
	Base    []Partial // one per spec of the long grid
	Tiles   [][]*Tile // per grid, sorted by Start
	// BaseDirty is set when Seen, Horizon or Base changed.
	BaseDirty bool
	// slab hands out the partials of new tiles, several tiles to one
	// allocation; it grows with the state, so a small state stays small.
	slab  []Partial
	slabN int
	// free holds, per grid, tiles that Trim dropped, for Add to reuse;
	// once Trim has run, Add keeps no windowed tile that ends at or before
	// floor, which Trim would drop.
	free    [][]*Tile
	floor   int64
	trimmed bool
}

// parts returns room for n zeroed partials.
func (st *State) parts(n int) []Partial {
	if len(st.slab) < n {
		st.slabN = min(max(2, st.slabN*2), 64)
		st.slab = make([]Partial, n*st.slabN)
	}
	p := st.slab[:n:n]
	st.slab = st.slab[n:]
	return p
}

// Tile is the aggregate of one grid's specs over the events of
// [Start, Start+width).
type Tile struct {
	Start    int64
	Min, Max int64 // earliest and latest event time it holds
	Parts    []Partial
	Dirty    bool // changed since the flag was last cleared
	Deleted  bool // folded into the base: its stored copy should go
}

// NewState returns an empty state for l.
func (l *Layout) NewState() *State {
	st := &State{Horizon: math.MinInt64, Tiles: make([][]*Tile, len(l.Grids))}
	if l.Long >= 0 {
		st.Base = make([]Partial, len(l.Grids[l.Long].Specs))
	}
	return st
}

// Add folds one event into st. With windowed false (the event is older
// than the retention) only the long grid takes it: lifetime aggregates
// take every event.
func (l *Layout) Add(st *State, e *Event, windowed bool) {
	if !st.HasSeen || e.Time < st.Seen {
		st.Seen, st.HasSeen, st.BaseDirty = e.Time, true, true
	}
	one := [1]Event{*e}
	for g := range l.Grids {
		if g != l.Long && !windowed {
			continue
		}
		l.addTile(st, g, Floor(e.Time, l.Grids[g].Width), one[:], windowed)
	}
}

// AddRun folds events sorted by Time, then Seq (Event.Before), into st as
// Add would one at a time, tile by tile and spec by spec: the point-in-time
// engine adds the events between two spine rows this way. Events out of
// order are added one at a time.
func (l *Layout) AddRun(st *State, evs []Event, windowed bool) {
	if len(evs) == 0 {
		return
	}
	for k := 1; k < len(evs); k++ {
		if evs[k].Before(&evs[k-1]) {
			for i := range evs {
				l.Add(st, &evs[i], windowed)
			}
			return
		}
	}
	if !st.HasSeen || evs[0].Time < st.Seen {
		st.Seen, st.HasSeen, st.BaseDirty = evs[0].Time, true, true
	}
	for g := range l.Grids {
		if g != l.Long && !windowed {
			continue
		}
		w := l.Grids[g].Width
		for run := evs; len(run) > 0; {
			start := Floor(run[0].Time, w)
			n := 1
			for n < len(run) && run[n].Time < start+w {
				n++
			}
			l.addTile(st, g, start, run[:n], windowed)
			run = run[n:]
		}
	}
}

// addTile adds events of grid g's tile at start, sorted, to st.
func (l *Layout) addTile(st *State, g int, start int64, evs []Event, windowed bool) {
	grid := &l.Grids[g]
	if st.trimmed && g != l.Long && start+grid.Width <= st.floor {
		return
	}
	var parts []Partial
	if g == l.Long && start < st.Horizon {
		parts, st.BaseDirty = st.Base, true
	} else {
		tile := st.tile(g, start, len(grid.Specs))
		tile.Min, tile.Max = min(tile.Min, evs[0].Time), max(tile.Max, evs[len(evs)-1].Time)
		tile.Dirty = true
		parts = tile.Parts
	}
	for j, si := range grid.Specs {
		s := &l.Specs[si]
		if !windowed && s.hop() > 0 {
			continue // a windowed spec sharing the long grid
		}
		parts[j].addRun(s, evs)
	}
}

// tile returns grid g's tile at start, creating it.
func (st *State) tile(g int, start int64, specs int) *Tile {
	tiles := st.Tiles[g]
	if n := len(tiles); n > 0 && tiles[n-1].Start == start {
		return tiles[n-1] // events in time order, as a sweep adds them
	}
	i, found := findTile(tiles, start)
	if found {
		return tiles[i]
	}
	var t *Tile
	if st.free != nil && len(st.free[g]) > 0 {
		free := st.free[g]
		t, st.free[g] = free[len(free)-1], free[:len(free)-1]
		clear(t.Parts)
		*t = Tile{Parts: t.Parts}
	} else {
		t = &Tile{Parts: st.parts(specs)}
	}
	t.Start, t.Min, t.Max = start, math.MaxInt64, math.MinInt64
	st.Tiles[g] = slices.Insert(tiles, i, t)
	return t
}

// Put installs a tile read back from storage.
func (st *State) Put(g int, t *Tile) {
	tiles := st.Tiles[g]
	i, found := findTile(tiles, t.Start)
	if found {
		tiles[i] = t
		return
	}
	st.Tiles[g] = slices.Insert(tiles, i, t)
}

// Age drops the tiles of windowed grids that end at or before horizon and
// folds those of the long grid into the base; folded tiles stay in Tiles
// marked Deleted until the caller removes them with Sweep. Values at any t
// with t - retention >= horizon are unchanged.
func (l *Layout) Age(st *State, horizon int64) {
	for g := range l.Grids {
		w := l.Grids[g].Width
		cut := Floor(horizon, w)
		if g != l.Long {
			st.Tiles[g] = slices.DeleteFunc(st.Tiles[g], func(t *Tile) bool { return t.Start < cut })
			continue
		}
		if cut <= st.Horizon {
			continue
		}
		for _, t := range st.Tiles[g] {
			if t.Start >= cut {
				break
			}
			for j, si := range l.Grids[g].Specs {
				if s := &l.Specs[si]; s.hop() == 0 {
					st.Base[j].merge(s, &t.Parts[j])
				}
			}
			t.Deleted = true
		}
		st.Horizon, st.BaseDirty = cut, true
	}
}

// Sweep removes tiles marked Deleted and clears every Dirty flag.
func (st *State) Sweep() {
	for g, tiles := range st.Tiles {
		st.Tiles[g] = slices.DeleteFunc(tiles, func(t *Tile) bool { return t.Deleted })
		for _, t := range st.Tiles[g] {
			t.Dirty = false
		}
	}
	st.BaseDirty = false
}

// Trim is Age followed by Sweep for a state that no store mirrors, such as
// the point-in-time engine's: the tiles it drops are reused by later Adds
// instead of being allocated anew, so a state swept forward through time
// stays the size of its retention. The caller must hold no pointer to a
// tile of st.
func (l *Layout) Trim(st *State, horizon int64) {
	st.floor, st.trimmed = horizon, true
	for g := range l.Grids {
		if g != l.Long {
			n, _ := findTile(st.Tiles[g], Floor(horizon, l.Grids[g].Width))
			l.recycle(st, g, n)
		}
	}
	l.Age(st, horizon)
	if l.Long >= 0 {
		tiles := st.Tiles[l.Long]
		n := 0
		for n < len(tiles) && tiles[n].Deleted {
			n++
		}
		l.recycle(st, l.Long, n)
	}
}

// recycle moves the first n tiles of grid g to the tiles Add reuses.
func (l *Layout) recycle(st *State, g, n int) {
	if st.free == nil {
		st.free = make([][]*Tile, len(l.Grids))
	}
	st.free[g] = append(st.free[g], st.Tiles[g][:n]...)
	st.Tiles[g] = slices.Delete(st.Tiles[g], 0, n)
}

// Reset empties st for another entity, keeping its tiles for reuse as
// Trim does.
func (l *Layout) Reset(st *State) {
	for g := range st.Tiles {
		l.recycle(st, g, len(st.Tiles[g]))
	}
	clear(st.Base)
	st.Seen, st.HasSeen, st.Horizon, st.BaseDirty = 0, false, math.MinInt64, false
	st.floor, st.trimmed = 0, false
}

// findTile returns where the tile starting at start is, or would be
// inserted, in tiles sorted by Start.
func findTile(tiles []*Tile, start int64) (int, bool) {
	return slices.BinarySearchFunc(tiles, start, func(t *Tile, s int64) int { return cmp.Compare(t.Start, s) })
}
