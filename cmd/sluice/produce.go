package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/ingest"
)

func produceCmd(g *globals) *cobra.Command {
	var rate int
	var batch int
	cmd := &cobra.Command{
		Use:   "produce STREAM [FILE|-]",
		Short: "Send NDJSON events to a stream of a running node, showing progress",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := io.Reader(os.Stdin)
			if len(args) == 2 && args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			p := &producer{
				client: &ingest.Client{URL: g.server}, stream: args[0],
				rate: rate, batch: batch, progress: cmd.ErrOrStderr(),
			}
			return p.run(cmd.Context(), in)
		},
	}
	cmd.Flags().IntVar(&rate, "rate", 0, "events per second at most (0: as fast as the node takes them)")
	cmd.Flags().IntVar(&batch, "batch", 1000, "events per request at most")
	return cmd
}

// producer reads NDJSON and sends it in batches.
type producer struct {
	client   *ingest.Client
	stream   string
	rate     int
	batch    int
	progress io.Writer

	sent, accepted, rejected int
	start, lastReport        time.Time
}

func (p *producer) run(ctx context.Context, in io.Reader) error {
	lines := make(chan []byte, 4*p.batch)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				select {
				case lines <- bytes.Clone(line):
				case <-ctx.Done():
					return
				}
			}
		}
		readErr <- sc.Err()
	}()
	p.start, p.lastReport = time.Now(), time.Now()
	var pending [][]byte
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := p.send(ctx, pending)
		pending = pending[:0]
		return err
	}
	linger := time.NewTicker(100 * time.Millisecond)
	defer linger.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				if err := flush(); err != nil {
					return err
				}
				p.report(true)
				select {
				case err := <-readErr:
					if err != nil {
						return fmt.Errorf("read input: %w", err)
					}
				default:
				}
				if p.rejected > 0 {
					return fmt.Errorf("%d events rejected", p.rejected)
				}
				return nil
			}
			pending = append(pending, line)
			if len(pending) >= p.batchSize() {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-linger.C:
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			p.report(true)
			return nil
		}
	}
}

// batchSize keeps about ten requests a second under a rate limit.
func (p *producer) batchSize() int {
	if p.rate > 0 {
		return max(1, min(p.batch, p.rate/10))
	}
	return p.batch
}

func (p *producer) send(ctx context.Context, events [][]byte) error {
	resp, err := p.client.Send(ctx, p.stream, events)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for i, r := range resp.Rejected {
		if p.rejected+i < 10 {
			fmt.Fprintf(p.progress, "rejected event %d: %s\n", p.sent+r.Index, r.Error)
		}
	}
	p.sent += len(events)
	p.accepted += resp.Accepted
	p.rejected += len(resp.Rejected)
	p.report(false)
	if p.rate > 0 {
		// Pace: the events sent so far should have taken sent/rate seconds.
		due := p.start.Add(time.Duration(float64(p.sent) / float64(p.rate) * float64(time.Second)))
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(due)):
		}
	}
	return nil
}

func (p *producer) report(final bool) {
	if !final && time.Since(p.lastReport) < time.Second {
		return
	}
	p.lastReport = time.Now()
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.progress, "%s: sent %d, accepted %d, rejected %d (%.0f events/s)\n",
		p.stream, p.sent, p.accepted, p.rejected, float64(p.sent)/max(el, 0.001))
}
