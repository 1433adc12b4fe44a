package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/serve"
)

func sqlCmd(g *globals) *cobra.Command {
	var (
		format  string
		maxRows int
	)
	cmd := &cobra.Command{
		Use:   `sql "QUERY" [--format table|csv|json]`,
		Short: "Run a SQL query on the offline store's ClickHouse, through a running node",
		Long: "Run a read-only SQL query on the ClickHouse tables of the offline store (database sluice, one\n" +
			"table per stream) through a running node. The query is the argument, or standard input with \"-\".",
		Example: `  sluice sql "SELECT user_id, count() FROM sluice.transactions GROUP BY user_id ORDER BY 2 DESC LIMIT 5"
  sluice sql --format csv "SELECT * FROM sluice.transactions" > transactions.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			query := args[0]
			if query == "-" {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("read query from standard input: %w", err)
				}
				query = string(b)
			}
			var write func(io.Writer, *serve.SQLResponse) error
			switch format {
			case "table":
				write = printTable
			case "csv":
				write = printCSV
			case "json":
				write = printJSON
			default:
				return fmt.Errorf("--format %q: use table, csv or json", format)
			}
			resp, err := (&serve.Client{URL: g.server}).SQL(cmd.Context(), query, maxRows)
			if err != nil {
				return err
			}
			if err := write(cmd.OutOrStdout(), resp); err != nil {
				return err
			}
			if resp.Truncated && format != "json" {
				fmt.Fprintf(cmd.ErrOrStderr(), "sluice: showing the first %d rows; pass --max-rows for more, or add a LIMIT\n", len(resp.Rows))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "table", "output format: table, csv or json")
	fl.IntVar(&maxRows, "max-rows", 0, "most rows to fetch (default: the node's, 10000; at most 1000000)")
	return cmd
}

// cell renders one value for table and CSV output: strings as they are,
// null as NULL (table) or empty (CSV), anything else as JSON.
func cell(v any, null string) string {
	switch x := v.(type) {
	case nil:
		return null
	case string:
		return x
	case json.Number:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// printTable prints aligned columns under their names, then the row count.
func printTable(w io.Writer, resp *serve.SQLResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	names := make([]string, len(resp.Columns))
	rules := make([]string, len(resp.Columns))
	for i, c := range resp.Columns {
		names[i] = c.Name
		rules[i] = strings.Repeat("-", len(c.Name))
	}
	fmt.Fprintln(tw, strings.Join(names, "\t"))
	fmt.Fprintln(tw, strings.Join(rules, "\t"))
	cells := make([]string, len(resp.Columns))
	for _, row := range resp.Rows {
		for i, v := range row {
			// A tab or newline inside a value would break the alignment.
			cells[i] = strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(cell(v, "NULL"))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	noun := "rows"
	if len(resp.Rows) == 1 {
		noun = "row"
	}
	_, err := fmt.Fprintf(w, "(%d %s)\n", len(resp.Rows), noun)
	return err
}

// printCSV prints a header of column names, then the rows.
func printCSV(w io.Writer, resp *serve.SQLResponse) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(resp.Columns))
	for i, c := range resp.Columns {
		rec[i] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, row := range resp.Rows {
		for i, v := range row {
			rec[i] = cell(v, "")
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// printJSON prints the node's answer as indented JSON.
func printJSON(w io.Writer, resp *serve.SQLResponse) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(resp)
}
