package pitpeers

import (
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed pit_pandas.py
var pandasScript []byte

// pandasTable holds the pandas peer's result, read back from its CSV.
const pandasTable = "peer_pandas"

// PandasInstall is what to run where pandas is missing.
const PandasInstall = "apt-get install -y python3-pandas"

// ErrNoPandas means no interpreter at hand imports pandas; the pandas
// peer is skipped.
var ErrNoPandas = errors.New("python3 cannot import pandas")

// PandasRun is what the pandas peer measured.
type PandasRun struct {
	Export  time.Duration // DuckDB writing the events and the spine to CSV (untimed in the ratio)
	Load    time.Duration // pandas reading the CSV files (untimed in the ratio)
	Join    time.Duration // pandas sorting both sides and merge_asof: the figure
	PeakRSS int64         // bytes, the Python process
}

// FindPandas returns the interpreter that runs the pandas peer: python
// when set, else the first of python3 on the PATH and Debian's
// /usr/bin/python3 (where python3-pandas installs) that imports pandas.
// It returns ErrNoPandas when none does.
func FindPandas(ctx context.Context, python string) (string, error) {
	candidates := []string{python}
	if python == "" {
		candidates = []string{"python3", "/usr/bin/python3"}
	}
	var tried []string
	for _, py := range candidates {
		out, err := exec.CommandContext(ctx, py, "-c", "import pandas").CombinedOutput()
		if err == nil {
			return py, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		tried = append(tried, fmt.Sprintf("%s: %v", py, err))
	}
	return "", fmt.Errorf("%w (%s)", ErrNoPandas, strings.Join(tried, "; "))
}

// runPandas exports the rows the last-value features need to CSV under
// work, runs pit_pandas.py on them and loads its result into pandasTable.
func runPandas(ctx context.Context, db *sql.DB, s *Spec, last []Feature, python, work string) (PandasRun, error) {
	var r PandasRun
	events, spine := filepath.Join(work, "events.csv"), filepath.Join(work, "spine.csv")
	out, script := filepath.Join(work, "result.csv"), filepath.Join(work, "pit_pandas.py")
	cols := append([]string{"user_id", "epoch_us(_event_time) AS ts", "_offset"}, fields(last)...)
	exports := []string{
		fmt.Sprintf("COPY (SELECT %s FROM read_parquet(%s)) TO %s (HEADER)", strings.Join(cols, ", "), literal(s.Events), literal(events)),
		fmt.Sprintf(`COPY (SELECT "row", user_id, epoch_us("timestamp") AS "timestamp" FROM read_parquet(%s)) TO %s (HEADER)`,
			literal(s.Spine), literal(spine)),
	}
	start := time.Now()
	for _, q := range exports {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return r, fmt.Errorf("export CSV for pandas: %w", err)
		}
	}
	r.Export = time.Since(start)
	if err := os.WriteFile(script, pandasScript, 0o644); err != nil {
		return r, err
	}
	args := []string{script, "--events", events, "--spine", spine, "--out", out}
	for _, f := range last {
		args = append(args, "--feature", f.Column+"="+f.Field)
	}
	cmd := exec.CommandContext(ctx, python, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("pandas peer: %w\n%s", err, stderr.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSS = ru.Maxrss * 1024 // kilobytes on Linux
	}
	var got struct {
		LoadSeconds float64 `json:"load_seconds"`
		JoinSeconds float64 `json:"join_seconds"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		return r, fmt.Errorf("pandas peer: read its timings %q: %w", stdout.String(), err)
	}
	r.Load, r.Join = seconds(got.LoadSeconds), seconds(got.JoinSeconds)
	types := []string{`'row': 'BIGINT'`}
	for _, f := range last {
		types = append(types, fmt.Sprintf("%s: 'DOUBLE'", literal(f.Column)))
	}
	q := fmt.Sprintf("CREATE OR REPLACE TABLE %s AS SELECT * FROM read_csv(%s, header = true, columns = {%s})",
		pandasTable, literal(out), strings.Join(types, ", "))
	if _, err := db.ExecContext(ctx, q); err != nil {
		return r, fmt.Errorf("read the pandas peer's result: %w", err)
	}
	return r, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
