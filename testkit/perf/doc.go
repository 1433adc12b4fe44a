// Package perf holds the benchmarks `sluice bench NAME` runs (DESIGN.md
// section 10). Each runs Sluice's real parts in one process against the
// embedded broker, measures its peer in the same run on the same data, and
// reports figures as one machine-readable line each:
//
//	NAME: <value> <unit> | peer <peer>: <value> <unit> | ratio <sluice/peer>
package perf
