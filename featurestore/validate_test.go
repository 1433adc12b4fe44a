package featurestore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

// viewYAML is a feature_view over the base stream with the given features.
func viewYAML(extra, features string) string {
	return "kind: feature_view\nname: v\nentity: user\nsource: transactions\n" + extra + "features:\n" + features
}

func TestParseValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string // case.yaml, parsed with base.yaml
		want []string
	}{
		{
			name: "unknown aggregation",
			yaml: viewYAML("", "  - {name: a, agg: count}\n  - {name: b, agg: count}\n  - {name: c, field: amount, agg: avg, window: 1h}\n"),
			want: []string{
				`case.yaml:8: document 1 (feature_view "v"): features[2].agg: unknown aggregation "avg" (use one of count, count_true, sum, mean, min, max, stddev, last, first, last_n, approx_distinct)`,
			},
		},
		{
			name: "missing aggregation",
			yaml: viewYAML("", "  - {name: a, field: amount}\n"),
			want: []string{
				`case.yaml:6: document 1 (feature_view "v"): features[0].agg: missing aggregation (add agg: one of count, count_true, sum, mean, min, max, stddev, last, first, last_n, approx_distinct)`,
			},
		},
		{
			name: "unknown kind",
			yaml: "kind: table\nname: t\n",
			want: []string{
				`case.yaml:1: document 1: kind: unknown kind "table" (use one of entity, stream, feature_view, feature_service)`,
			},
		},
		{
			name: "missing kind",
			yaml: "name: t\n",
			want: []string{
				"case.yaml:1: document 1: kind: missing kind (add kind: entity, stream, feature_view or feature_service)",
			},
		},
		{
			name: "not a mapping",
			yaml: "- a\n- b\n",
			want: []string{
				"case.yaml:1: document 1: expected a mapping with a kind (use one of entity, stream, feature_view, feature_service), got a list",
			},
		},
		{
			name: "yaml syntax",
			yaml: "kind: entity\nname: [a\n",
			want: []string{
				"case.yaml:1: document 1: invalid YAML: did not find expected ',' or ']'",
			},
		},
		{
			name: "unknown keys",
			yaml: "kind: entity\nname: e\nkey: id\nkeyz: [a]\ncolor: red\n",
			want: []string{
				`case.yaml:4: document 1 (entity "e"): keyz: unknown key "keyz" (did you mean "key"?)`,
				`case.yaml:5: document 1 (entity "e"): color: unknown key "color" (known keys: kind, name, key, keys, type, types)`,
			},
		},
		{
			name: "unknown feature key",
			yaml: viewYAML("", "  - {name: a, agg: count, windw: 1h}\n"),
			want: []string{
				`case.yaml:6: document 1 (feature_view "v"): features[0].windw: unknown key "windw" (did you mean "window"?)`,
			},
		},
		{
			name: "duplicate key",
			yaml: "kind: entity\nname: e\nkey: id\nkey: id2\n",
			want: []string{
				`case.yaml:4: document 1 (entity "e"): key: duplicate key "key" (give each key once)`,
			},
		},
		{
			name: "duplicate name",
			yaml: "kind: entity\nname: user\nkey: uid\n",
			want: []string{
				`case.yaml:1: document 1 (entity "user"): name: duplicate entity "user": already defined in base.yaml document 1 (rename or remove one)`,
			},
		},
		{
			name: "missing name",
			yaml: "kind: entity\nkey: id\n",
			want: []string{
				"case.yaml:1: document 1 (entity): name: missing name (add name: <lower_case_name>)",
			},
		},
		{
			name: "invalid names",
			yaml: "kind: entity\nname: User-1\nkey: Id\n",
			want: []string{
				`case.yaml:2: document 1 (entity "User-1"): name: invalid name "User-1" (use lower-case letters, digits and _, starting with a letter or _)`,
				`case.yaml:3: document 1 (entity "User-1"): key: invalid key field name "Id" (use lower-case letters, digits and _, starting with a letter or _)`,
			},
		},
		{
			name: "entity key and keys",
			yaml: "kind: entity\nname: e\nkey: a\nkeys: [a, b]\n",
			want: []string{
				`case.yaml:4: document 1 (entity "e"): keys: set key or keys, not both (keys: [a, b] is for composite keys)`,
			},
		},
		{
			name: "entity types count",
			yaml: "kind: entity\nname: e\nkeys: [a, b]\ntypes: [string]\n",
			want: []string{
				`case.yaml:4: document 1 (entity "e"): types: 1 type for 2 keys (give one type per key)`,
			},
		},
		{
			name: "entity key type",
			yaml: "kind: entity\nname: e\nkey: a\ntype: float64\n",
			want: []string{
				`case.yaml:4: document 1 (entity "e"): type: key type float64 is not supported (use string or int64)`,
			},
		},
		{
			name: "entity unknown type",
			yaml: "kind: entity\nname: e\nkey: a\ntype: text\n",
			want: []string{
				`case.yaml:4: document 1 (entity "e"): type: unknown type "text" (use one of string, int64, float64, bool, timestamp)`,
			},
		},
		{
			name: "entity missing key",
			yaml: "kind: entity\nname: e\n",
			want: []string{
				`case.yaml:1: document 1 (entity "e"): key: missing key (add key: <field name>, or keys: [a, b] for a composite key)`,
			},
		},
		{
			name: "stream references and timestamp",
			yaml: "kind: stream\nname: s\nentity: usr\ntimestamp: when\ntimestamp_unit: ns\nunknown_fields: drop\nschema:\n  - {name: user_id, type: string}\n",
			want: []string{
				`case.yaml:3: document 1 (stream "s"): entity: unknown entity "usr" (did you mean "user"?)`,
				`case.yaml:4: document 1 (stream "s"): timestamp: no field "when" in schema (add {name: when, type: timestamp} to schema)`,
				`case.yaml:5: document 1 (stream "s"): timestamp_unit: unknown timestamp_unit "ns" (use s, ms or us)`,
				`case.yaml:6: document 1 (stream "s"): unknown_fields: unknown policy "drop" (use reject or ignore)`,
			},
		},
		{
			name: "stream timestamp type and nullable",
			yaml: "kind: stream\nname: s\nentity: user\ntimestamp: t\nschema:\n  - {name: user_id, type: string}\n  - {name: t, type: string, nullable: true}\n",
			want: []string{
				`case.yaml:4: document 1 (stream "s"): timestamp: field "t" has type string (use type timestamp or int64)`,
				`case.yaml:4: document 1 (stream "s"): timestamp: field "t" is nullable, but every event needs an event time (remove nullable)`,
			},
		},
		{
			name: "stream key fields",
			yaml: "kind: entity\nname: acct\nkeys: [org, id]\ntypes: [string, int64]\n---\nkind: stream\nname: s\nentity: acct\ntimestamp: t\nschema:\n  - {name: org, type: string, nullable: true}\n  - {name: t, type: timestamp}\n  - {name: id, type: string}\n",
			want: []string{
				`case.yaml:8: document 2 (stream "s"): entity: field "org" of stream "s" is nullable, but it is the key of entity "acct" (remove nullable)`,
				`case.yaml:8: document 2 (stream "s"): entity: field "id" of stream "s" has type string, but the key of entity "acct" has type int64 (use one type)`,
			},
		},
		{
			name: "stream fields",
			yaml: "kind: stream\nname: s\nentity: user\ntimestamp: t\nschema:\n  - {name: user_id, type: string}\n  - {name: t, type: timestamp}\n  - {name: x, type: decimal}\n  - {name: y}\n  - {name: z, type: int64, default: 1.5}\n  - {name: s, type: string, default: 1}\n  - {name: u, type: timestamp, default: yesterday}\n  - {name: b, type: bool, nullable: yes please}\n  - {name: l, type: [string]}\n",
			want: []string{
				`case.yaml:8: document 1 (stream "s"): schema[2].type: unknown type "decimal" (use one of string, int64, float64, bool, timestamp)`,
				`case.yaml:9: document 1 (stream "s"): schema[3].type: missing type (add type: string, int64, float64, bool or timestamp)`,
				`case.yaml:10: document 1 (stream "s"): schema[4].default: default "1.5" is not an int64`,
				`case.yaml:11: document 1 (stream "s"): schema[5].default: default 1 is not a string (quote it: "1")`,
				`case.yaml:12: document 1 (stream "s"): schema[6].default: default "yesterday" is not an RFC 3339 time such as 2024-01-02T15:04:05Z`,
				`case.yaml:13: document 1 (stream "s"): schema[7].nullable: expected true or false, got "yes please"`,
				`case.yaml:14: document 1 (stream "s"): schema[8].type: expected a type name, got a list`,
			},
		},
		{
			name: "stream field names",
			yaml: "kind: stream\nname: s\nentity: user\ntimestamp: t\nschema:\n  - {name: user_id, type: string}\n  - {name: t, type: timestamp}\n  - {name: _id, type: string}\n  - {name: t, type: int64}\n  - {name: Amount, type: float64}\n  - {type: float64}\n",
			want: []string{
				`case.yaml:8: document 1 (stream "s"): schema[2].name: field name "_id" starts with "_", which Sluice reserves for its own columns (rename the field)`,
				`case.yaml:9: document 1 (stream "s"): schema[3].name: duplicate field "t" (list each field once)`,
				`case.yaml:10: document 1 (stream "s"): schema[4].name: invalid field name "Amount" (use lower-case letters, digits and _, starting with a letter or _)`,
				`case.yaml:11: document 1 (stream "s"): schema[5].name: missing field name (add name: <field name>)`,
			},
		},
		{
			name: "stream missing schema",
			yaml: "kind: stream\nname: s\nentity: user\ntimestamp: t\n",
			want: []string{
				`case.yaml:1: document 1 (stream "s"): schema: missing schema (add schema: a list of {name, type} fields)`,
			},
		},
		{
			name: "stream topics",
			yaml: "kind: stream\nname: s\ntopic: transactions\nentity: user\ntimestamp: t\nschema: [{name: user_id, type: string}, {name: t, type: timestamp}]\n---\nkind: stream\nname: s2\ntopic: sluice.registry\nentity: user\ntimestamp: t\nschema: [{name: user_id, type: string}, {name: t, type: timestamp}]\n---\nkind: stream\nname: s3\ntopic: \"a b\"\nentity: user\ntimestamp: t\nschema: [{name: user_id, type: string}, {name: t, type: timestamp}]\n",
			want: []string{
				`base.yaml:9: document 3 (stream "transactions"): topic: topic "transactions" is also the topic of stream "s" (give each stream its own topic)`,
				`case.yaml:3: document 1 (stream "s"): topic: topic "transactions" is also the topic of stream "transactions" (give each stream its own topic)`,
				`case.yaml:10: document 2 (stream "s2"): topic: topic "sluice.registry" is reserved for Sluice's own topics (choose a topic not starting with sluice.)`,
				`case.yaml:17: document 3 (stream "s3"): topic: invalid Kafka topic "a b" (use up to 249 letters, digits, '.', '_' and '-')`,
			},
		},
		{
			name: "view references",
			yaml: "kind: feature_view\nname: v\nentity: merchent\nsource: txns\nfeatures: [{name: c, agg: count}]\n",
			want: []string{
				`case.yaml:3: document 1 (feature_view "v"): entity: unknown entity "merchent" (did you mean "merchant"?)`,
				`case.yaml:4: document 1 (feature_view "v"): source: unknown stream "txns" (known streams: transactions)`,
			},
		},
		{
			name: "view missing parts",
			yaml: "kind: feature_view\nname: v\n",
			want: []string{
				`case.yaml:1: document 1 (feature_view "v"): entity: missing entity (add entity: <entity name>)`,
				`case.yaml:1: document 1 (feature_view "v"): source: missing source (add source: <stream name>)`,
				`case.yaml:1: document 1 (feature_view "v"): features: missing features (add at least one feature)`,
			},
		},
		{
			name: "view entity not in stream",
			yaml: "kind: entity\nname: device\nkey: device_id\n---\nkind: feature_view\nname: v\nentity: device\nsource: transactions\nfeatures: [{name: c, agg: count}]\n",
			want: []string{
				`case.yaml:7: document 2 (feature_view "v"): entity: stream "transactions" has no field "device_id", the key of entity "device" (add {name: device_id, type: string} to its schema, or key the view by another entity)`,
			},
		},
		{
			name: "agg field types",
			yaml: viewYAML("", "  - {name: a, field: amount, agg: count_true}\n  - {name: b, field: country, agg: sum}\n  - {name: c, field: is_fraud, agg: max}\n  - {name: d, field: amount, agg: approx_distinct}\n  - {name: e, agg: mean}\n  - {name: f, field: amont, agg: sum}\n  - {name: g, field: country, agg: count}\n  - {name: h, field: ts, agg: min}\n"),
			want: []string{
				`case.yaml:6: document 1 (feature_view "v"): features[0].field: count_true needs a bool field, and "amount" is float64`,
				`case.yaml:7: document 1 (feature_view "v"): features[1].field: sum needs an int64 or float64 field, and "country" is string`,
				`case.yaml:8: document 1 (feature_view "v"): features[2].field: max needs an int64, float64, timestamp or string field, and "is_fraud" is bool`,
				`case.yaml:9: document 1 (feature_view "v"): features[3].field: approx_distinct needs a string, int64 or bool field, and "amount" is float64`,
				`case.yaml:10: document 1 (feature_view "v"): features[4].field: mean needs a field (add field: <field name>)`,
				`case.yaml:11: document 1 (feature_view "v"): features[5].field: unknown field "amont" (did you mean "amount"?)`,
			},
		},
		{
			name: "last_n",
			yaml: viewYAML("", "  - {name: a, field: amount, agg: last_n}\n  - {name: b, field: amount, agg: last_n, n: 101}\n  - {name: c, field: amount, agg: last, n: 3}\n"),
			want: []string{
				`case.yaml:6: document 1 (feature_view "v"): features[0].n: last_n needs n between 1 and 100, got 0`,
				`case.yaml:7: document 1 (feature_view "v"): features[1].n: last_n needs n between 1 and 100, got 101`,
				`case.yaml:8: document 1 (feature_view "v"): features[2].n: n applies only to last_n (remove it)`,
			},
		},
		{
			name: "bad numbers",
			yaml: viewYAML("", "  - {name: d, field: amount, agg: last_n, n: three}\n  - {name: a, agg: count, window: 1y}\n  - {name: b, agg: count, window: 0s}\n  - {name: h, field: amount, agg: first, ttl: 500ms}\n  - {name: i, agg: count, window: [1h]}\n  - {name: j, agg: count, window: -1h}\n"),
			want: []string{
				`case.yaml:6: document 1 (feature_view "v"): features[0].n: expected a whole number, got "three"`,
				`case.yaml:7: document 1 (feature_view "v"): features[1].window: invalid duration "1y": unknown unit "y" (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`,
				`case.yaml:8: document 1 (feature_view "v"): features[2].window: window must be positive (leave window out for a lifetime aggregate)`,
				`case.yaml:9: document 1 (feature_view "v"): features[3].ttl: invalid duration "500ms": unknown unit "ms" (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`,
				`case.yaml:10: document 1 (feature_view "v"): features[4].window: expected a duration such as 1h or 30d, got a list`,
				`case.yaml:11: document 1 (feature_view "v"): features[5].window: negative duration "-1h" (durations are positive: use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`,
			},
		},
		{
			name: "durations",
			yaml: viewYAML("", "  - {name: c, agg: count, window: 1h, hop: 0.5s}\n  - {name: d, agg: count, window: 1h, hop: 2h}\n  - {name: e, agg: count, hop: 1h}\n  - {name: f, agg: count, window: 1h, ttl: 1d}\n  - {name: g, field: amount, agg: last, window: 7d}\n  - {name: h, field: amount, agg: first, hop: 1h, ttl: 1d}\n  - {name: k, agg: count, window: 1h, hop: 1h}\n"),
			want: []string{
				`case.yaml:6: document 1 (feature_view "v"): features[0].hop: hop 500ms is below the minimum of 1s`,
				`case.yaml:7: document 1 (feature_view "v"): features[1].hop: hop 2h is longer than window 1h (use a hop of at most the window)`,
				`case.yaml:8: document 1 (feature_view "v"): features[2].hop: hop needs a window (add window, or remove hop)`,
				`case.yaml:9: document 1 (feature_view "v"): features[3].ttl: ttl applies only to last and first (use window to bound count)`,
				`case.yaml:10: document 1 (feature_view "v"): features[4].window: last takes no window (use ttl to bound how old its value may be)`,
				`case.yaml:11: document 1 (feature_view "v"): features[5].hop: first takes no hop (use ttl to bound how old its value may be)`,
			},
		},
		{
			name: "feature names",
			yaml: viewYAML("", "  - {name: \"a:b\", agg: count}\n  - {name: c, agg: count}\n  - {name: c, agg: count}\n  - {name: D, agg: count}\n  - {agg: count}\n"),
			want: []string{
				`case.yaml:6: document 1 (feature_view "v"): features[0].name: feature name "a:b" contains ':', which separates view and feature in view:feature (rename it)`,
				`case.yaml:8: document 1 (feature_view "v"): features[2].name: duplicate feature "c" (give each feature its own name)`,
				`case.yaml:9: document 1 (feature_view "v"): features[3].name: invalid feature name "D" (use lower-case letters, digits and _, starting with a letter or _)`,
				`case.yaml:10: document 1 (feature_view "v"): features[4].name: missing name (add name: <feature name>)`,
			},
		},
		{
			name: "no features",
			yaml: viewYAML("", "  []\n"),
			want: []string{
				`case.yaml:5: document 1 (feature_view "v"): features: missing features (add at least one feature)`,
			},
		},
		{
			name: "filter not bool",
			yaml: viewYAML("filter: amount + 1\n", "  - {name: c, agg: count}\n"),
			want: []string{
				`case.yaml:5: document 1 (feature_view "v"): filter: "amount + 1" gives float64, not true or false (use a condition such as amount > 0)`,
			},
		},
		{
			name: "filter errors",
			yaml: viewYAML("filter: amount > \"x\" and nope\n", "  - {name: c, agg: count}\n"),
			want: []string{
				`case.yaml:5: document 1 (feature_view "v"): filter: invalid operation: > (mismatched types float64 and string) (at column 8)`,
			},
		},
		{
			name: "derive errors",
			yaml: viewYAML("derive:\n  - {name: amount, expr: amount * 2}\n  - {name: half, expr: \"qty / \"}\n  - {name: c2, expr: 'qty ?? 0'}\n  - {name: d2}\n  - {name: big, expr: amount > 1000}\n  - {name: big, expr: \"1\"}\n", "  - {name: a, field: big, agg: sum}\n"),
			want: []string{
				`case.yaml:6: document 1 (feature_view "v"): derive[0].name: "amount" is already a field of stream "transactions" (choose another name)`,
				`case.yaml:7: document 1 (feature_view "v"): derive[1].expr: unexpected token EOF (at column 6)`,
				`case.yaml:8: document 1 (feature_view "v"): derive[2].expr: cannot tell the type of "qty ?? 0", which gives interface {} (convert it with string(), int(), float() or a comparison)`,
				`case.yaml:9: document 1 (feature_view "v"): derive[3].expr: missing expression (add expr: <expression>, such as amount > 1000)`,
				`case.yaml:11: document 1 (feature_view "v"): derive[5].name: duplicate derived field "big" (derive each name once)`,
				`case.yaml:13: document 1 (feature_view "v"): features[0].field: sum needs an int64 or float64 field, and "big" is bool`,
			},
		},
		{
			name: "derived fields in later derives and features",
			yaml: viewYAML("derive:\n  - {name: dbl, expr: amount * 2}\n  - {name: big, expr: dbl > 10}\n  - {name: n2, expr: qty + 1}\n  - {name: label, expr: upper(merchant_id)}\n", "  - {name: a, field: big, agg: count_true}\n  - {name: b, field: dbl, agg: count_true}\n  - {name: c, field: n2, agg: sum}\n  - {name: d, field: label, agg: sum}\n"),
			want: []string{
				`case.yaml:12: document 1 (feature_view "v"): features[1].field: count_true needs a bool field, and "dbl" is float64`,
				`case.yaml:14: document 1 (feature_view "v"): features[3].field: sum needs an int64 or float64 field, and "label" is string`,
			},
		},
		{
			name: "service errors",
			yaml: "kind: feature_view\nname: v\nentity: user\nsource: transactions\nfeatures: [{name: a, agg: count}, {name: b, agg: count}]\n---\nkind: feature_service\nname: s\nfeatures: [v, \"w:a\", \"v:c\", \"v:a\", \"v:*\", \"v:a:b\"]\n---\nkind: feature_service\nname: s2\n",
			want: []string{
				`case.yaml:9: document 2 (feature_service "s"): features[0]: "v" is not view:feature (use view:feature or view:*)`,
				`case.yaml:9: document 2 (feature_service "s"): features[1]: unknown feature_view "w" (known views: v)`,
				`case.yaml:9: document 2 (feature_service "s"): features[2]: feature_view "v" has no feature "c" (its features: a, b)`,
				`case.yaml:9: document 2 (feature_service "s"): features[4]: "v:*" includes "v:a", which "v:a" already lists (list each feature once)`,
				`case.yaml:9: document 2 (feature_service "s"): features[5]: "v:a:b" is not view:feature (use view:feature or view:*)`,
				`case.yaml:11: document 3 (feature_service "s2"): features: missing features (list them as view:feature or view:*)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(map[string][]byte{"base.yaml": []byte(baseYAML), "case.yaml": []byte(tt.yaml)})
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrorsSortedAcrossFiles(t *testing.T) {
	files := map[string][]byte{
		"b.yaml": []byte("kind: entity\nname: b1\nkey: id\n---\nkind: entity\nname: b2\nkey: id\ntype: bool\n"),
		"a.yaml": []byte("kind: feature_view\nname: v\nentity: user\nsource: nope\nfeatures: [{name: c, agg: count}]\n---\n" +
			"kind: entity\nname: ok\nkey: id\n---\nkind: entity\nname: a3\nkey: id\ncolour: blue\n"),
	}
	_, err := Parse(files)
	want := []string{
		`a.yaml:3: document 1 (feature_view "v"): entity: unknown entity "user" (known entities: a3, b1, b2, ok)`,
		`a.yaml:4: document 1 (feature_view "v"): source: unknown stream "nope" (define it with kind: stream)`,
		`a.yaml:14: document 3 (entity "a3"): colour: unknown key "colour" (known keys: kind, name, key, keys, type, types)`,
		`b.yaml:8: document 2 (entity "b2"): type: key type bool is not supported (use string or int64)`,
	}
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
	var de *DefError
	if !errors.As(err, &de) {
		t.Fatalf("errors.As(%v, *DefError) = false", err)
	}
	wantFirst := &DefError{File: "a.yaml", Doc: 1, Line: 3, Kind: KindView, Name: "v", Path: "entity", Msg: `unknown entity "user" (known entities: a3, b1, b2, ok)`}
	if diff := cmp.Diff(wantFirst, de); diff != "" {
		t.Errorf("first DefError mismatch (-want +got):\n%s", diff)
	}
}

func TestValidateWithoutFiles(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Repo)
		want   []string
	}{
		{
			name:   "valid",
			mutate: func(*Repo) {},
		},
		{
			name: "definitions filed under another name",
			mutate: func(r *Repo) {
				r.Services["other"] = r.Services["fraud_model_v1"]
				r.Streams["transactions"].Schema.Stream = "txns"
			},
			want: []string{
				`stream "transactions": schema: schema of stream "txns" filed under stream "transactions" (use one name)`,
				`feature_service "other": name: registered as "other" but named "fraud_model_v1" (use one name)`,
			},
		},
		{
			name: "stream key fields and defaults",
			mutate: func(r *Repo) {
				sc := r.Streams["transactions"].Schema
				sc.KeyFields = []string{"txn_id"}
				sc.Fields[4].Default = int64(3)
				sc.Fields = append(sc.Fields, schemas.Field{Name: "extra", Type: 9})
			},
			want: []string{
				`stream "transactions": schema[4].default: default 3 does not have the field's type string`,
				`stream "transactions": schema[7].type: unknown type type(9) (use one of string, int64, float64, bool, timestamp)`,
				`stream "transactions": entity: key fields [txn_id] differ from the keys [user_id] of entity "user" (use the entity's keys)`,
			},
		},
		{
			name: "negative durations",
			mutate: func(r *Repo) {
				f := &r.Views["user_txn"].Features[1]
				f.Window, f.Hop = -hour, -time.Second
			},
			want: []string{
				`feature_view "user_txn": features[1].window: window must be positive, got -1h0m0s`,
				`feature_view "user_txn": features[1].hop: hop must be positive, got -1s`,
			},
		},
		{
			name:   "removed stream still read by views",
			mutate: func(r *Repo) { delete(r.Streams, "transactions") },
			want: []string{
				`feature_view "merchant_txn": source: unknown stream "transactions" (define it with kind: stream)`,
				`feature_view "user_txn": source: unknown stream "transactions" (define it with kind: stream)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fraudRepo()
			tt.mutate(r)
			var got []string
			if err := r.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
