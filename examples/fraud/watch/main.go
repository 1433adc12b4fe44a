// Command watch prints one entity's online features on one line, every few
// seconds, so that they can be seen changing while events flow in:
//
//	15:04:05 user_id=u00001 last_amount=23.5 txn_count_10m=41 txn_count_1h=236 ...
//
// It asks a running node's POST /get-online-features (the Feast wire format)
// for a feature service or a list of features.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "watch:", err)
		os.Exit(1)
	}
}

type options struct {
	server   string
	service  string
	features []string
	key      string
	value    string
	every    time.Duration
	n        int
	token    string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var entity, features string
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "URL of a running Sluice node")
	fs.StringVar(&o.service, "service", "fraud_model_v1", "feature service to read (ignored with -features)")
	fs.StringVar(&features, "features", "", "comma-separated features to read, view:feature or view:*")
	fs.StringVar(&entity, "entity", "user_id=u00001", "the entity, as key=value")
	fs.DurationVar(&o.every, "every", 5*time.Second, "time between reads")
	fs.IntVar(&o.n, "n", 0, "stop after this many reads (0: run until interrupted)")
	fs.StringVar(&o.token, "token", os.Getenv("SLUICE_TOKEN"), "bearer token, when the node requires one (default $SLUICE_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var ok bool
	o.key, o.value, ok = strings.Cut(entity, "=")
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q (all options are flags, see -h)", fs.Arg(0))
	case !ok || o.key == "" || o.value == "":
		return o, fmt.Errorf("-entity %q: want key=value, for example user_id=u00001", entity)
	case o.every <= 0:
		return o, fmt.Errorf("-every %v: must be positive", o.every)
	case o.n < 0:
		return o, fmt.Errorf("-n %d: must be 0 (no limit) or more", o.n)
	}
	if features != "" {
		o.features = strings.Split(features, ",")
	}
	o.server = strings.TrimSuffix(o.server, "/")
	return o, nil
}

// run reads and prints until ctx is done or -n reads are made. A failed read
// is printed and retried at the next tick; with -n 1 it is the error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	for i := 0; o.n == 0 || i < o.n; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		line, err := read(ctx, client, o)
		now := time.Now().Format(time.TimeOnly)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && o.n == 1:
			return err
		case err != nil:
			fmt.Fprintf(stderr, "%s %v\n", now, err)
		default:
			fmt.Fprintf(stdout, "%s %s\n", now, line)
		}
	}
	return nil
}

// response is the part of a Feast-format response that watch prints.
type response struct {
	Metadata struct {
		FeatureNames []string `json:"feature_names"`
	} `json:"metadata"`
	Results []struct {
		Values   []any    `json:"values"`
		Statuses []string `json:"statuses"`
	} `json:"results"`
}

// read makes one request and renders the answer as name=value pairs.
func read(ctx context.Context, client *http.Client, o options) (string, error) {
	body := map[string]any{"entities": map[string][]string{o.key: {o.value}}}
	if len(o.features) > 0 {
		body["features"] = o.features
	} else {
		body["feature_service"] = o.service
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	url := o.server + "/get-online-features"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("get features: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if o.token != "" {
		req.Header.Set("Authorization", "Bearer "+o.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("get features: %w (is sluice running at %s?)", err, o.server)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("get features: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get features: POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(raw))
	}
	var r response
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return "", fmt.Errorf("get features: decode response: %w", err)
	}
	return render(r)
}

// render prints one name=value pair per column; a missing value is "-".
func render(r response) (string, error) {
	names := r.Metadata.FeatureNames
	if len(names) != len(r.Results) {
		return "", fmt.Errorf("get features: response names %d columns but holds %d", len(names), len(r.Results))
	}
	parts := make([]string, len(names))
	for i, name := range names {
		v := "-"
		if res := r.Results[i]; len(res.Values) > 0 && res.Values[0] != nil {
			v = formatValue(res.Values[0])
		}
		parts[i] = name + "=" + v
	}
	return strings.Join(parts, " "), nil
}

// formatValue renders a value compactly: numbers with at most two decimals.
func formatValue(v any) string {
	switch x := v.(type) {
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return x.String()
		}
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return fmt.Sprint(math.Round(f*100) / 100)
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = "-"
			if e != nil {
				parts[i] = formatValue(e)
			}
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}
