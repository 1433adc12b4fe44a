package offline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// killChildEnv makes the test binary run killChild on the directory it names.
const killChildEnv = "SLUICE_OFFLINE_KILL_CHILD_DIR"

const (
	killPartitions = 3
	killOffsets    = 4000 // per partition
)

// killRecord says what the record at an offset of the kill test's topic
// is: an invalid one (noted), or an event whose id may repeat the one before.
func killRecord(partition int32, offset int64) (id string, invalid bool) {
	switch {
	case offset%17 == 5:
		return "", true
	case offset > 0 && offset%13 == 0 && (offset-1)%17 != 5:
		return eventID(partition, offset-1), false // a duplicate
	}
	return eventID(partition, offset), false
}

// TestKillNine kills a process in the middle of consuming a topic into the
// store, over and over, then lets one finish, and checks that the store
// holds every event exactly once.
func TestKillNine(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillNine$", "-test.count=1")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		return cmd
	}
	midFlush := 0 // kills that left temporary files
	for range 8 {
		cmd := child()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()
		if slices.ContainsFunc(storeFiles(t, dir), isTemp) {
			midFlush++
		}
	}
	if out, err := child().CombinedOutput(); err != nil {
		t.Fatalf("last run: %v\n%s", err, out)
	}
	t.Logf("%d of 8 kills hit a flush while it wrote files", midFlush)

	s := openSink(t, dir, Options{})
	want := map[int32]int64{}
	for p := range int32(killPartitions) {
		want[p] = killOffsets
	}
	if diff := gocmp.Diff(want, s.Resume("txns")); diff != "" {
		t.Errorf("Resume (-want +got):\n%s", diff)
	}
	if files := storeFiles(t, dir); slices.ContainsFunc(files, isTemp) {
		t.Errorf("temporary files left: %v", files)
	}
	rows := readStream(t, dir, "txns")
	seen := map[string]int64{}
	for _, r := range rows {
		id, off := r["_event_id"].(string), r["_offset"].(int64)
		if prev, dup := seen[id]; dup {
			t.Errorf("event %s stored twice, at offsets %d and %d", id, prev, off)
		}
		seen[id] = off
	}
	wantRows := 0
	for p := range int32(killPartitions) {
		for off := range int64(killOffsets) {
			id, invalid := killRecord(p, off)
			if invalid || id != eventID(p, off) {
				continue
			}
			wantRows++
			if got, ok := seen[id]; !ok || got != off {
				t.Errorf("event %s: stored at offset %d (present %v), want %d", id, got, ok, off)
			}
		}
	}
	if len(rows) != wantRows {
		t.Errorf("store holds %d rows, want %d", len(rows), wantRows)
	}
	checkFileRanges(t, dir)
}

// checkFileRanges checks that each file is named after its rows' offsets.
func checkFileRanges(t *testing.T, dir string) {
	t.Helper()
	files, err := Files(dir, "txns")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		p, first, last, _ := parseFileName(filepath.Base(path))
		lo, hi := int64(-1), int64(-1)
		for _, r := range mustRead(t, path) {
			off := r["_offset"].(int64)
			if r["_partition"].(int32) != p {
				t.Errorf("%s holds a row of partition %d", path, r["_partition"])
			}
			if lo < 0 || off < lo {
				lo = off
			}
			hi = max(hi, off)
		}
		if lo != first || hi != last {
			t.Errorf("%s holds offsets %d-%d", path, lo, hi)
		}
	}
}

// killChild consumes the kill test's topic from where the store says to
// resume, flushing often.
func killChild(t *testing.T, dir string) {
	s, err := Open(dir, Options{CommitRows: 300, RowGroupRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next := s.Resume("txns")
	schema := txnSchema()
	for step := 1; ; step++ {
		done := true
		for p := range int32(killPartitions) {
			off := next[p]
			if off >= killOffsets {
				continue
			}
			done = false
			next[p]++
			id, invalid := killRecord(p, off)
			if invalid {
				s.Note("txns", p, off)
				continue
			}
			r := txnRow(fmt.Sprintf("u%d", off*7%50), at(time.Duration(off)*10*time.Minute), p, off)
			r.EventID = id
			s.Add(schema, r)
		}
		if done || step%100 == 0 {
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if done {
			return
		}
	}
}
