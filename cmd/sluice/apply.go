package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/serve"
)

func applyCmd(g *globals) *cobra.Command {
	var dryRun bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "apply DIR",
		Short: "Apply a feature repository to a running node and print the diff",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := readRepoFiles(args[0])
			if err != nil {
				return err
			}
			c := &serve.Client{URL: g.server}
			resp, err := c.Apply(cmd.Context(), files, dryRun)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprint(out, resp.Plan)
			switch {
			case !resp.Changed:
				fmt.Fprintln(out, "no changes")
			case dryRun:
				fmt.Fprintln(out, "dry run: nothing applied")
			default:
				fmt.Fprintln(out, "applied")
				if wait > 0 {
					return waitReady(cmd.Context(), c, wait, out)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the diff without applying it")
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "after a change, show the node's progress until it has caught up (new views are built from the log); 0 returns at once")
	return cmd
}

// waitReady prints the node's progress until /readyz says it has caught up.
func waitReady(ctx context.Context, c *serve.Client, wait time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := ""
	for {
		ready, checks, err := c.Ready(ctx)
		if err == nil && ready {
			fmt.Fprintln(out, "ready: every view has caught up")
			return nil
		}
		if err == nil {
			if msg := fmt.Sprintf("catching up: %s", checks["stream"]); msg != last {
				fmt.Fprintln(out, msg)
				last = msg
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node not caught up after %s (%v); it goes on in the background", wait, checks["stream"])
		case <-time.After(time.Second):
		}
	}
}

// readRepoFiles reads the YAML files of a feature repository directory.
func readRepoFiles(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("feature repository: %w", err)
	}
	files := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !slices.Contains([]string{".yaml", ".yml"}, strings.ToLower(filepath.Ext(name))) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files[filepath.Join(dir, name)] = string(b)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("feature repository %s: no .yaml files", dir)
	}
	return files, nil
}
