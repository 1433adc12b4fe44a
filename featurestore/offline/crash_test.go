package offline

import (
	"errors"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// TestCrashDuringCommit stops a commit at each of its points as a crash
// would, reopens the store and checks that files, ids and offsets agree.
func TestCrashDuringCommit(t *testing.T) {
	first := []Row{txnRow("u1", at(0), 0, 0), txnRow("u2", at(0), 0, 1)}
	// Two dates, so the crashed commit writes two files.
	second := []Row{txnRow("u1", at(time.Hour), 0, 2), txnRow("u3", at(30*time.Hour), 0, 3)}
	all := append(slices.Clone(first), second...)
	tests := []struct {
		point string
		// what the crashed commit leaves on disk before Open repairs it
		wantTemps, wantFinals int
		committed             bool
	}{
		{crashBeforeCommit, 2, 0, false},
		{crashAfterCommit, 2, 0, true},
		{crashMidRename, 1, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.point, func(t *testing.T) {
			dir := t.TempDir()
			s := openSink(t, dir, Options{})
			addAll(t, s, txnSchema(), first...)
			flush(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openSink(t, dir, Options{crash: func(p string) bool { return p == tt.point }})
			addAll(t, s, txnSchema(), second...)
			if err := s.Flush(t.Context()); !errors.Is(err, errCrash) {
				t.Fatalf("Flush = %v, want the simulated crash", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			temps, finals := 0, 0
			for _, f := range storeFiles(t, dir) {
				if isTemp(f) {
					temps++
				} else {
					finals++
				}
			}
			if temps != tt.wantTemps || finals != 1+tt.wantFinals {
				t.Fatalf("after the crash: %d temporary and %d final files, want %d and %d",
					temps, finals, tt.wantTemps, 1+tt.wantFinals)
			}

			s = openSink(t, dir, Options{})
			want, wantResume := sortedIDs(first), map[int32]int64{0: 2}
			if tt.committed {
				want, wantResume = sortedIDs(all), map[int32]int64{0: 4}
			}
			got := eventIDs(readStream(t, dir, "txns"))
			slices.Sort(got)
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("stored ids after reopen (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(wantResume, s.Resume("txns")); diff != "" {
				t.Errorf("Resume after reopen (-want +got):\n%s", diff)
			}
			if files := storeFiles(t, dir); slices.ContainsFunc(files, isTemp) {
				t.Errorf("temporary files left after reopen: %v", files)
			}

			// Consuming the whole topic again keeps exactly the rows from
			// Resume on and drops the committed ones as duplicates.
			for _, r := range all {
				if kept, want := s.Add(txnSchema(), r), r.Offset >= wantResume[0]; kept != want {
					t.Errorf("replay of %s: Add = %v, want %v", r.EventID, kept, want)
				}
			}
			flush(t, s)
			got = eventIDs(readStream(t, dir, "txns"))
			slices.Sort(got)
			if diff := gocmp.Diff(sortedIDs(all), got); diff != "" {
				t.Errorf("stored ids after consuming again (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(map[int32]int64{0: 4}, s.Resume("txns")); diff != "" {
				t.Errorf("Resume after consuming again (-want +got):\n%s", diff)
			}
		})
	}
}

func sortedIDs(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.EventID)
	}
	slices.Sort(out)
	return out
}
