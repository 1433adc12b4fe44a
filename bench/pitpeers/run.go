package pitpeers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Options tune Run.
type Options struct {
	Python   string    // interpreter of the pandas peer; see FindPandas when empty
	NoPandas bool      // skip the pandas peer
	Work     string    // parent of the pandas peer's scratch directory; the system's temporary directory when empty
	Progress io.Writer // progress lines; nil discards them
}

// Result is what the peers measured and how their values compare with
// Sluice's training set.
type Result struct {
	Spec          *Spec
	ASOF          time.Duration // DuckDB ASOF JOIN, the last-value features
	Window        time.Duration // DuckDB range join, the windowed features
	DuckDBPeakRSS int64         // bytes, this process after both DuckDB queries
	Pandas        *PandasRun    // nil when skipped
	PandasSkipped string        // why the pandas peer did not run
	DatasetRows   int64
	Checks        []Check
}

// OK reports whether every peer agrees with Sluice on every value.
func (r *Result) OK() bool {
	for _, c := range r.Checks {
		if !c.OK() {
			return false
		}
	}
	return true
}

// Run runs the peers on the spec's files and compares their values with
// Sluice's training set. A mismatch is no error: it shows in the checks.
func Run(ctx context.Context, s *Spec, o Options) (*Result, error) {
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "pitpeers: "+format+"\n", args...)
		}
	}
	last, windowed := s.split()
	db, err := openDuckDB(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	r := &Result{Spec: s}
	if len(last) > 0 {
		progress("duckdb-asof: ASOF JOIN for %d last-value features", len(last))
		if r.ASOF, err = timedExec(ctx, db, asofSQL(s, last)); err != nil {
			return nil, fmt.Errorf("duckdb ASOF JOIN: %w", err)
		}
	}
	if len(windowed) > 0 {
		progress("duckdb-window: range join for %d windowed features", len(windowed))
		if r.Window, err = timedExec(ctx, db, windowSQL(s, windowed)); err != nil {
			return nil, fmt.Errorf("duckdb window query: %w", err)
		}
	}
	r.DuckDBPeakRSS = peakRSS()
	if len(last) > 0 && !o.NoPandas {
		if err := r.runPandas(ctx, db, last, o, progress); err != nil {
			return nil, err
		}
	} else if len(last) > 0 {
		r.PandasSkipped = "not asked for"
	}
	progress("comparing with Sluice's training set %s", s.Dataset)
	if r.DatasetRows, err = loadDataset(ctx, db, s); err != nil {
		return nil, err
	}
	peers := []struct {
		name, table string
		feats       []Feature
		ran         bool
	}{
		{"duckdb-asof", asofTable, last, len(last) > 0},
		{"duckdb-window", windowTable, windowed, len(windowed) > 0},
		{"pandas-merge-asof", pandasTable, last, r.Pandas != nil},
	}
	for _, p := range peers {
		if !p.ran {
			continue
		}
		c, err := compare(ctx, db, p.name, p.table, p.feats)
		if err != nil {
			return nil, err
		}
		r.Checks = append(r.Checks, c)
	}
	return r, nil
}

func (r *Result) runPandas(ctx context.Context, db *sql.DB, last []Feature, o Options, progress func(string, ...any)) error {
	python, err := FindPandas(ctx, o.Python)
	if errors.Is(err, ErrNoPandas) {
		r.PandasSkipped = fmt.Sprintf("%v; install it with: %s", err, PandasInstall)
		return nil
	}
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.Work, "pitpeers-")
	if err != nil {
		return fmt.Errorf("pandas peer: scratch directory: %w", err)
	}
	defer os.RemoveAll(work)
	progress("pandas-merge-asof: exporting CSV with DuckDB to %s, then merge_asof", work)
	p, err := runPandas(ctx, db, r.Spec, last, python, work)
	if err != nil {
		return err
	}
	r.Pandas = &p
	return nil
}

// peakRSS returns this process's peak resident set size in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}
