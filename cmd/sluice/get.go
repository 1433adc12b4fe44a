package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/serve"
)

func getCmd(g *globals) *cobra.Command {
	var (
		entities []string
		features string
		service  string
		at       string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "get --entity KEY=VALUE [--features view:feature,...|--service NAME] [--at TIME]",
		Short: "Look features up on a running node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &serve.Request{FeatureService: service, At: at, Entities: map[string][]serve.EntityValue{}}
			if features != "" {
				req.Features = strings.Split(features, ",")
			}
			if (features == "") == (service == "") {
				return fmt.Errorf("give --features or --service")
			}
			for _, e := range entities {
				k, v, ok := strings.Cut(e, "=")
				if !ok {
					return fmt.Errorf("--entity %q: want KEY=VALUE, for example user_id=u00001", e)
				}
				req.Entities[k] = append(req.Entities[k], entityValue(v))
			}
			if len(entities) == 0 {
				return fmt.Errorf("give --entity KEY=VALUE, for example --entity user_id=u00001")
			}
			c := &serve.Client{URL: g.server}
			resp, err := c.GetOnlineFeatures(cmd.Context(), req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(resp)
			}
			return printFeatures(out, resp)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&entities, "entity", nil, "entity key KEY=VALUE; repeat for more rows or composite keys")
	fl.StringVar(&features, "features", "", "comma-separated view:feature names (view:* for all of a view)")
	fl.StringVar(&service, "service", "", "feature service name")
	fl.StringVar(&at, "at", "", "read as of this RFC 3339 time instead of now")
	fl.BoolVar(&asJSON, "json", false, "print the raw JSON response")
	return cmd
}

// entityValue reads an integer as an integer key and anything else as a string.
func entityValue(s string) serve.EntityValue {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(i, 10) == s {
		return serve.IntKey(i)
	}
	return serve.StringKey(s)
}

// printFeatures prints one line per feature and row.
func printFeatures(w interface{ Write([]byte) (int, error) }, resp *serve.Response) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tFEATURE\tVALUE\tSTATUS\tEVENT TIME")
	for i, name := range resp.Metadata.FeatureNames {
		col := resp.Results[i]
		for row, v := range col.Values {
			b, _ := json.Marshal(v)
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", row, name, b, col.Statuses[row], col.EventTimestamps[row])
		}
	}
	return tw.Flush()
}
