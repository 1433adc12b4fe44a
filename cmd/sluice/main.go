// Command sluice runs Sluice, the event-streaming feature platform, and talks
// to running nodes. See `sluice --help`.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

// globals are the flags every command accepts.
type globals struct {
	config  string
	dataDir string
	server  string
}

// load reads the config and applies the global flags over it.
func (g *globals) load() (Config, error) {
	c, err := loadConfig(g.config)
	if err != nil {
		return c, err
	}
	if g.dataDir != "" {
		c.DataDir = g.dataDir
	}
	return c, nil
}

func rootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "Sluice: streaming features from events, online and offline",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.config, "config", "", "config file (sluice.yaml)")
	pf.StringVar(&g.dataDir, "data-dir", "", "data directory (overrides data_dir)")
	pf.StringVar(&g.server, "server", "http://127.0.0.1:8080", "URL of a running Sluice node")
	root.AddCommand(upCmd(g), brokerCmd(g), applyCmd(g), produceCmd(g), getCmd(g), sqlCmd(g), datasetCmd(g), benchCmd(), versionCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "sluice %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

// newLogger builds the process logger from the config.
func newLogger(c LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
