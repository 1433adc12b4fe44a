package clickhouse

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in               string
		want             Version
		dateTime64, bool bool
	}{
		{"18.16.1", Version{18, 16, 1}, false, false},
		{"20.4.9.110", Version{20, 4, 9}, false, false},
		{"20.5.2.7", Version{20, 5, 2}, true, false},
		{"21.12.1", Version{21, 12, 1}, true, true},
		{"24.8.4.13", Version{24, 8, 4}, true, true},
		{"23.3.1.2823-lts", Version{23, 3, 1}, true, true},
		{"25.3", Version{25, 3, 0}, true, true},
	} {
		v, err := ParseVersion(tc.in)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tc.in, err)
			continue
		}
		if v != tc.want || v.DateTime64() != tc.dateTime64 || v.Bool() != tc.bool {
			t.Errorf("ParseVersion(%q) = %v (DateTime64 %v, Bool %v), want %v (%v, %v)",
				tc.in, v, v.DateTime64(), v.Bool(), tc.want, tc.dateTime64, tc.bool)
		}
	}
	for _, in := range []string{"", "18", "x.1", "18.-1"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q): no error", in)
		}
	}
}

func TestParseFile(t *testing.T) {
	f, err := parseFile("/d/streams/s/date=1969-12-31/part-p7-40-52.parquet")
	if err != nil {
		t.Fatal(err)
	}
	want := file{path: "/d/streams/s/date=1969-12-31/part-p7-40-52.parquet", mark: mark{partition: 7, day: -1}, first: 40, last: 52}
	if diff := cmp.Diff(want, f, cmp.AllowUnexported(file{}, mark{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"/d/part-p7-40-52.parquet", "/d/date=2026-01-01/part-p7-40.parquet", "/d/date=2026-01-01/part-px-1-2.parquet"} {
		if _, err := parseFile(bad); err == nil {
			t.Errorf("parseFile(%q): no error", bad)
		}
	}
}

// TestStable checks that files are taken from two listings in a row that
// agree, as a directory changes under them.
func TestStable(t *testing.T) {
	day := mark{partition: 0, day: 20000}
	f := func(first, last int64) file {
		return file{path: fmt.Sprintf("part-p0-%d-%d.parquet", first, last), mark: day, first: first, last: last}
	}
	for _, tc := range []struct {
		name     string
		listings [][]file
		want     []file
		err      bool
	}{
		{"quiet", [][]file{{f(0, 9), f(10, 19)}, {f(0, 9), f(10, 19)}}, []file{f(0, 9), f(10, 19)}, false},
		{
			// The first listing missed the file at 10, renamed while it ran,
			// but saw the one at 20, renamed after it.
			"renames", [][]file{{f(0, 9), f(20, 29)}, {f(0, 9), f(10, 19), f(20, 29)}, {f(0, 9), f(10, 19), f(20, 29)}},
			[]file{f(0, 9), f(10, 19), f(20, 29)}, false,
		},
		{
			// A compaction swapped 0-9 and 10-19 for 0-19: a listing during
			// the swap saw neither the merged file nor the first it replaced.
			"compaction", [][]file{{f(10, 19)}, {f(0, 19)}, {f(0, 19)}},
			[]file{f(0, 19)}, false,
		},
		{"never still", [][]file{{f(0, 9)}, {f(10, 19)}, {f(0, 9)}, {f(10, 19)}, {f(0, 9)}, {f(10, 19)}, {f(0, 9)}, {f(10, 19)}, {f(0, 9)}, {f(10, 19)}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			got, err := stable(func() ([]file, error) {
				calls++
				return tc.listings[calls-1], nil
			})
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error: %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(file{}, mark{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	boom := errors.New("boom")
	if _, err := stable(func() ([]file, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("listing error: %v", err)
	}
}
