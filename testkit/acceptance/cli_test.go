package acceptance

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/testkit"
)

// sluice runs a client command of the binary and returns its output.
func sluice(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testkit.BuildSluice(t), args...).CombinedOutput()
	return string(out), err
}

// copyRepo copies the test repository and replaces old with new in it.
func copyRepo(t *testing.T, old, new string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/repo/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.Contains(text, old) {
		t.Fatalf("test repo lacks %q", old)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "features.yaml"), []byte(strings.Replace(text, old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestApplyShowsDiffAndRefusesIncompatibleChanges(t *testing.T) {
	node := testkit.NewNode(t)
	node.Start()
	server := "--server=" + node.URL()

	out, err := sluice(t, "apply", "testdata/repo", server, "--dry-run")
	if err != nil || !strings.Contains(out, "+ feature_view user_txn") || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if out, _ := sluice(t, "get", server, "--entity", "user_id=u1", "--service", "fraud_v1"); !strings.Contains(out, "unknown") {
		t.Fatalf("a dry run must not apply; get said:\n%s", out)
	}
	if out, err = sluice(t, "apply", "testdata/repo", server); err != nil || !strings.Contains(out, "+ stream transactions") ||
		!strings.Contains(out, "ready: every view has caught up") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if out, err = sluice(t, "apply", "testdata/repo", server); err != nil || !strings.Contains(out, "no changes") {
		t.Fatalf("re-apply: %v\n%s", err, out)
	}

	// A new feature makes a new version of the view.
	changed := copyRepo(t, "  - {name: lifetime_count, agg: count}", "  - {name: lifetime_count, agg: count}\n  - {name: amount_min_1h, field: amount, agg: min, window: 1h}")
	if out, err = sluice(t, "apply", changed, server); err != nil || !strings.Contains(out, "user_txn") || !strings.Contains(out, "v2") {
		t.Fatalf("new feature: %v\n%s", err, out)
	}

	// bool -> string of a field no view reads is refused by the schema
	// compatibility rules, naming stream and field.
	bad := copyRepo(t, "{name: is_fraud, type: bool, nullable: true}", "{name: is_fraud, type: string, nullable: true}")
	out, err = sluice(t, "apply", bad, server)
	if err == nil || !strings.Contains(out, "is_fraud") || !strings.Contains(out, "transactions") {
		t.Fatalf("incompatible change: want a refusal naming stream and field, got %v\n%q", err, out)
	}
	// A validation error names file and field.
	invalid := copyRepo(t, "agg: mean", "agg: avg")
	out, err = sluice(t, "apply", invalid, server)
	if err == nil || !strings.Contains(out, "features.yaml") || !strings.Contains(out, `"avg"`) {
		t.Fatalf("invalid repo: want an error naming file and value, got %v\n%s", err, out)
	}
	node.Stop()
}

// startBroker runs `sluice broker` on a free port until the test ends.
func startBroker(t *testing.T) (string, *exec.Cmd, *strings.Builder) {
	t.Helper()
	addr := testkit.FreeAddr(t)
	broker := exec.Command(testkit.BuildSluice(t), "broker", "--addr", addr, "--data-dir", t.TempDir())
	log := &strings.Builder{}
	broker.Stdout, broker.Stderr = log, log
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Process.Kill(); broker.Wait() })
	return addr, broker, log
}

// TestSplitRoles runs ingest and stream as separate processes on one
// broker: definitions applied by one node reach the other through the
// registry topic.
func TestSplitRoles(t *testing.T) {
	addr, _, _ := startBroker(t)
	streamer := testkit.NewNode(t, "--role", "stream", "--kafka.brokers", addr)
	streamer.Start()
	ingester := testkit.NewNode(t, "--role", "ingest", "--kafka.brokers", addr, "--repo", "testdata/repo")
	ingester.Start()
	now := time.Now().UTC()
	events := makeTxns(5, 80, 3, now.Add(-2*time.Hour), now.Add(-time.Minute))
	var lines [][]byte
	for _, e := range events {
		lines = append(lines, e.json())
	}
	if code, res, err := post(ingester.URL(), lines); err != nil || code != http.StatusOK || res.Accepted != len(events) {
		t.Fatalf("post: %d %+v %v", code, res, err)
	}
	view := testView(t)
	us := []string{"u000", "u001", "u002"}
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		resp, err := features(t.Context(), streamer.URL(), us, now)
		if err != nil {
			return err
		}
		return compareToOracle(t, resp, view, us, events, now)
	})
	if err != nil {
		t.Fatalf("stream node: %v\n%s", err, streamer.Log())
	}
	// The ingest-only node does not serve features.
	resp, err := http.Post(ingester.URL()+"/get-online-features", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("ingest node answers get-online-features with %d, want 404", resp.StatusCode)
	}
	ingester.Stop()
	streamer.Stop()
}

// TestBrokerAlone runs `sluice broker` and a node that uses it as its Kafka
// cluster; the broker keeps the data across a restart of the node.
func TestBrokerAlone(t *testing.T) {
	addr, broker, log := startBroker(t)

	node := testkit.NewNode(t, "--repo", "testdata/repo", "--kafka.brokers", addr)
	node.Start()
	now := time.Now().UTC()
	events := makeTxns(4, 50, 2, now.Add(-time.Hour), now.Add(-time.Minute))
	var lines [][]byte
	for _, e := range events {
		lines = append(lines, e.json())
	}
	if code, res, err := post(node.URL(), lines); err != nil || code != http.StatusOK || res.Accepted != len(events) {
		t.Fatalf("post: %d %+v %v", code, res, err)
	}
	node.Stop()
	// A fresh node (new data dir) rebuilds its state from the broker's log.
	fresh := testkit.NewNode(t, "--kafka.brokers", addr)
	fresh.Start()
	view := testView(t)
	us := []string{"u000", "u001"}
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		resp, err := features(t.Context(), fresh.URL(), us, now)
		if err != nil {
			return err
		}
		return compareToOracle(t, resp, view, us, events, now)
	})
	if err != nil {
		t.Fatalf("fresh node: %v\n%s", err, fresh.Log())
	}
	fresh.Stop()
	broker.Process.Signal(syscall.SIGTERM)
	if err := broker.Wait(); err != nil {
		t.Fatalf("broker exit: %v\n%s", err, log.String())
	}
}
