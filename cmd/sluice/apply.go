package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/serve"
)

func applyCmd(g *globals) *cobra.Command {
	var dryRun bool
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
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the diff without applying it")
	return cmd
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
