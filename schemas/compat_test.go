package schemas

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func compatBase() *Schema {
	return &Schema{
		Stream:  "transactions",
		Version: 1,
		Fields: []Field{
			{Name: "user_id", Type: String},
			{Name: "amount", Type: Float64},
			{Name: "qty", Type: Int64},
			{Name: "country", Type: String, Nullable: true},
			{Name: "channel", Type: String, Default: "web"},
			{Name: "ts", Type: Timestamp},
		},
		TimeField:     "ts",
		TimeUnit:      Milliseconds,
		UnknownFields: RejectUnknown,
		KeyFields:     []string{"user_id"},
	}
}

func TestCheckCompatible(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *Schema)
		want   []string // nil: compatible
	}{
		{name: "unchanged", change: func(*Schema) {}},
		{name: "add nullable field", change: func(s *Schema) {
			s.Fields = append(s.Fields, Field{Name: "device", Type: String, Nullable: true})
		}},
		{name: "add field with default", change: func(s *Schema) {
			s.Fields = append(s.Fields, Field{Name: "tries", Type: Int64, Default: int64(1)})
		}},
		{name: "make field nullable", change: func(s *Schema) { s.Fields[1].Nullable = true }},
		{name: "widen int64 to float64", change: func(s *Schema) { s.Fields[2].Type = Float64 }},
		{name: "drop field", change: func(s *Schema) { s.Fields = append(s.Fields[:3], s.Fields[4:]...) }},
		{name: "add a default", change: func(s *Schema) { s.Fields[1].Default = 0.0 }},
		{name: "change a default", change: func(s *Schema) { s.Fields[4].Default = "app" }},
		{name: "drop default of field made nullable", change: func(s *Schema) {
			s.Fields[4].Default, s.Fields[4].Nullable = nil, true
		}},
		{name: "reorder fields", change: func(s *Schema) { s.Fields[0], s.Fields[1] = s.Fields[1], s.Fields[0] }},
		{name: "relax unknown fields", change: func(s *Schema) { s.UnknownFields = IgnoreUnknown }},
		{name: "spell out default unit", change: func(s *Schema) { s.TimeUnit = "" }},
		{
			name:   "float64 to string",
			change: func(s *Schema) { s.Fields[1].Type = String },
			want:   []string{`stream "transactions": field "amount": changing the type from float64 to string is incompatible (add a new field instead, or create a new stream)`},
		},
		{
			name:   "narrow float64 to int64",
			change: func(s *Schema) { s.Fields[1].Type = Int64 },
			want:   []string{`stream "transactions": field "amount": changing the type from float64 to int64 is incompatible (add a new field instead, or create a new stream)`},
		},
		{
			name: "add required field",
			change: func(s *Schema) {
				s.Fields = append(s.Fields, Field{Name: "device", Type: String})
			},
			want: []string{`stream "transactions": field "device": a new field must be nullable or have a default, as old events lack it (add nullable: true or a default)`},
		},
		{
			name:   "make field required",
			change: func(s *Schema) { s.Fields[3].Nullable = false },
			want:   []string{`stream "transactions": field "country": making a nullable field required would reject old events holding null (keep nullable: true)`},
		},
		{
			name:   "remove default",
			change: func(s *Schema) { s.Fields[4].Default = nil },
			want:   []string{`stream "transactions": field "channel": removing the default would reject old events that omit the field (keep the default, or make the field nullable)`},
		},
		{
			name: "time, unit, keys and unknown fields",
			change: func(s *Schema) {
				s.TimeField, s.TimeUnit, s.KeyFields = "amount", Seconds, []string{"country"}
			},
			want: []string{
				`stream "transactions": changing the timestamp field from "ts" to "amount" is incompatible (create a new stream)`,
				`stream "transactions": changing timestamp_unit from ms to s would misread the times of old events (create a new stream)`,
				`stream "transactions": changing the key fields from [user_id] to [country] is incompatible: events are partitioned by them (create a new stream)`,
			},
		},
		{
			name:   "unknown fields left to its default",
			change: func(s *Schema) { s.UnknownFields = "" },
			want:   nil, // "" is reject, as before
		},
		{
			name:   "other stream",
			change: func(s *Schema) { s.Stream = "clicks" },
			want:   []string{`stream "transactions": cannot be replaced by the schema of stream "clicks"`},
		},
		{
			name: "several fields",
			change: func(s *Schema) {
				s.Fields[1].Type = String
				s.Fields[3].Type, s.Fields[3].Nullable = Int64, false
			},
			want: []string{
				`stream "transactions": field "amount": changing the type from float64 to string is incompatible (add a new field instead, or create a new stream)`,
				`stream "transactions": field "country": changing the type from string to int64 is incompatible (add a new field instead, or create a new stream)`,
				`stream "transactions": field "country": making a nullable field required would reject old events holding null (keep nullable: true)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := compatBase()
			next.Version = 2
			tt.change(next)
			err := CheckCompatible(compatBase(), next)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CheckCompatible mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckCompatibleIgnoreToReject(t *testing.T) {
	old := compatBase()
	old.UnknownFields = IgnoreUnknown
	err := CheckCompatible(old, compatBase())
	want := `stream "transactions": changing unknown_fields from ignore to reject would reject old events with extra fields (keep ignore)`
	if err == nil || err.Error() != want {
		t.Fatalf("CheckCompatible error = %v, want %q", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Stream != "transactions" || fe.Field != "" {
		t.Errorf("errors.As FieldError = %+v", fe)
	}
}
