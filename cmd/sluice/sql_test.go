package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/testkit"
)

// runSQL runs `sluice sql` against url and returns its output and error
// output.
func runSQL(t *testing.T, url string, args ...string) (string, string, error) {
	t.Helper()
	cmd := sqlCmd(&globals{server: url})
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestSQLCommand(t *testing.T) {
	ch := testkit.StartClickHouse(t)
	mux := http.NewServeMux()
	serve.NewSQL(ch.Client(t, "sluice"), "", serve.SQLOptions{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	const q = "SELECT number AS n, concat('v', toString(number)) AS s, if(number = 1, NULL, number * 1.5) AS x, [number] AS a FROM system.numbers LIMIT 3"
	for _, tc := range []struct {
		format, want string
	}{
		{"table", "" +
			"n  s   x     a\n" +
			"-  -   -     -\n" +
			"0  v0  0     [0]\n" +
			"1  v1  NULL  [1]\n" +
			"2  v2  3     [2]\n" +
			"(3 rows)\n"},
		{"csv", "" +
			"n,s,x,a\n" +
			"0,v0,0,[0]\n" +
			"1,v1,,[1]\n" +
			"2,v2,3,[2]\n"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			out, errOut, err := runSQL(t, srv.URL, "--format", tc.format, q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out); diff != "" || errOut != "" {
				t.Errorf("output (-want +got):\n%s\nerror output: %q", diff, errOut)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		out, _, err := runSQL(t, srv.URL, "--format", "json", q)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		dec := json.NewDecoder(strings.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		want := map[string]any{
			"columns": []any{
				map[string]any{"name": "n", "type": "UInt64"},
				map[string]any{"name": "s", "type": "String"},
				map[string]any{"name": "x", "type": "Nullable(Float64)"},
				map[string]any{"name": "a", "type": "Array(UInt64)"},
			},
			"rows": []any{
				[]any{json.Number("0"), "v0", json.Number("0"), []any{json.Number("0")}},
				[]any{json.Number("1"), "v1", nil, []any{json.Number("1")}},
				[]any{json.Number("2"), "v2", json.Number("3"), []any{json.Number("2")}},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("output (-want +got):\n%s", diff)
		}
	})

	t.Run("truncated", func(t *testing.T) {
		out, errOut, err := runSQL(t, srv.URL, "--max-rows", "2", "SELECT number FROM system.numbers")
		if err != nil {
			t.Fatal(err)
		}
		if want := "number\n------\n0\n1\n(2 rows)\n"; out != want {
			t.Errorf("output %q, want %q", out, want)
		}
		if !strings.Contains(errOut, "first 2 rows") {
			t.Errorf("error output %q does not say the answer was cut", errOut)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if _, _, err := runSQL(t, srv.URL, "SELEC 1"); err == nil || !strings.Contains(err.Error(), "Syntax error") {
			t.Errorf("bad query: %v, want ClickHouse's syntax error", err)
		}
		if _, _, err := runSQL(t, srv.URL, "--format", "xml", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "use table, csv or json") {
			t.Errorf("bad format: %v", err)
		}
	})
}
