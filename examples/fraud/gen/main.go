// Command gen prints card transactions for the fraud example as NDJSON on
// standard output, one event per line with ts set to the current time, at a
// steady rate until stopped (or until -n events). Pipe it into
// `sluice produce transactions -`:
//
//	go run ./examples/fraud/gen -rate 200 | bin/sluice produce transactions -
//
// The events come from testkit.FraudGen, so a seed gives the same users,
// merchants, amounts and labels on every run; only the times differ, and the
// ids, which carry a prefix unique to the run (see -id-prefix) so that
// Sluice does not drop a rerun's events as duplicates of an earlier run's.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/testkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	seed      int64
	users     int
	merchants int
	n         int64
	rate      float64
	idPrefix  string
	prefixSet bool // -id-prefix was given, perhaps as ""
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gen [-rate N] [-n N] [-seed N] [-users N] [-merchants N] [-id-prefix S]")
		fmt.Fprintln(stderr, "Prints fraud-example transactions as NDJSON on standard output.")
		fs.PrintDefaults()
	}
	fs.Int64Var(&o.seed, "seed", 1, "random seed; the same seed gives the same events")
	fs.IntVar(&o.users, "users", 1000, "number of users (u00001, u00002, ...)")
	fs.IntVar(&o.merchants, "merchants", 200, "number of merchants (m00001, ...)")
	fs.Int64Var(&o.n, "n", 0, "stop after this many events (0: run until interrupted)")
	fs.Float64Var(&o.rate, "rate", 200, "events per second (0: as fast as possible)")
	fs.StringVar(&o.idPrefix, "id-prefix", "",
		"prefix of txn_id and _event_id, so that a rerun's events are not taken for\n"+
			"duplicates of an earlier run's (default: the start time in base 36 and '-';\n"+
			"-id-prefix '' gives t1, t2, ... exactly as testkit.FraudGen makes them)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) { o.prefixSet = o.prefixSet || f.Name == "id-prefix" })
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q (all options are flags, see -h)", fs.Arg(0))
	case o.users < 1:
		return o, fmt.Errorf("-users %d: need at least 1 user", o.users)
	case o.merchants < 1:
		return o, fmt.Errorf("-merchants %d: need at least 1 merchant", o.merchants)
	case o.n < 0:
		return o, fmt.Errorf("-n %d: must be 0 (no limit) or more", o.n)
	case o.rate < 0:
		return o, fmt.Errorf("-rate %g: must be 0 (no limit) or more", o.rate)
	}
	return o, nil
}

// run writes events to out until ctx is done or -n events are written.
// An interrupt is a clean stop: what was made so far is flushed.
func run(ctx context.Context, args []string, out, stderr io.Writer, now func() time.Time) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if !o.prefixSet {
		o.idPrefix = strconv.FormatInt(now().UnixMilli(), 36) + "-"
	}
	g := testkit.NewFraudGen(o.seed, o.users, o.merchants)
	w := bufio.NewWriterSize(out, 64<<10)
	p := newPacer(o.rate, now())
	var line []byte
	for made := int64(0); (o.n == 0 || made < o.n) && ctx.Err() == nil; made++ {
		for !p.take(now()) {
			// Out of budget: hand what is buffered downstream, then wait.
			if err := w.Flush(); err != nil {
				return fmt.Errorf("write events: %w", err)
			}
			if !p.sleep(ctx) {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		ev := g.Next(now())
		if o.idPrefix != "" {
			ev["txn_id"] = o.idPrefix + ev["txn_id"].(string)
		}
		line = testkit.AppendFraudJSON(line[:0], ev, true)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("write events: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	return nil
}

// pacer spaces events at a steady rate: a token bucket that refills at rate
// tokens a second and holds at most one second's worth, so a stalled reader
// is not answered with a flood once it resumes.
type pacer struct {
	rate   float64 // tokens per second; 0: unlimited
	tokens float64
	last   time.Time
}

func newPacer(rate float64, now time.Time) *pacer {
	return &pacer{rate: rate, tokens: 1, last: now}
}

// take spends one token if there is one at time now.
func (p *pacer) take(now time.Time) bool {
	if p.rate == 0 {
		return true
	}
	p.tokens = min(p.tokens+p.rate*now.Sub(p.last).Seconds(), max(p.rate, 1))
	p.last = now
	if p.tokens < 1 {
		return false
	}
	p.tokens--
	return true
}

// sleep waits until the next token is due, at most 100ms. It reports false
// when ctx ended first.
func (p *pacer) sleep(ctx context.Context) bool {
	d := time.Duration((1 - p.tokens) / p.rate * float64(time.Second))
	d = min(max(d, time.Millisecond), 100*time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
