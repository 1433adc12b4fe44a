// Package window is the one implementation of Sluice's time rule (DESIGN.md
// section 4). Given an entity's events and a time t, Eval computes every
// aggregation's value at t. The online read path and the offline
// point-in-time engine both call it, so they cannot diverge.
//
// For feature f with window w and hop h, the value at t aggregates the events
// e with
//
//	floor(t-w, h) <= e.Time < t    (windowed)
//	e.Time < t                     (lifetime)
//
// and, in AsServed mode, also e.Arrival < t. Nulls are skipped by every
// aggregation; count without a field counts events.
package window
