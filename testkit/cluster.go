package testkit

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connectors/kafka"
)

// RequireAll reports whether a missing part must fail the test instead of
// skipping it (CI=true or SLUICE_REQUIRE_ALL=1).
func RequireAll() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SLUICE_REQUIRE_ALL") == "1"
}

// RequireTool returns the path of an external program, skipping the test
// when it is missing (failing it under RequireAll).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if RequireAll() {
			t.Fatalf("%s is required but not installed (make test installs it: apt-get install %s)", name, name)
		}
		t.Skipf("%s not installed; run make test to install it", name)
	}
	return p
}

// FreeAddr returns a loopback address with a port that was free just now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartBroker starts the embedded broker on a random loopback port with its
// data in a temporary directory; it stops when the test ends.
func StartBroker(t testing.TB) *kafka.Broker {
	t.Helper()
	b, err := kafka.StartBroker("127.0.0.1:0", t.TempDir(), nil)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

var build struct {
	once sync.Once
	path string
	err  error
}

// BuildSluice builds cmd/sluice once per test binary and returns its path.
func BuildSluice(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "sluice")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/sluice")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// moduleRoot finds the directory of go.mod above this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// Node is a `sluice up` process.
type Node struct {
	Bin        string
	DataDir    string
	HTTPAddr   string
	BrokerAddr string
	Args       []string

	t      testing.TB
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit error, once exited is closed
}

// NewNode prepares a node with fresh ports and data dir; Start runs it.
func NewNode(t testing.TB, args ...string) *Node {
	t.Helper()
	return &Node{
		Bin: BuildSluice(t), DataDir: t.TempDir(),
		HTTPAddr: FreeAddr(t), BrokerAddr: FreeAddr(t), Args: args, t: t,
	}
}

// URL is the node's HTTP base URL.
func (n *Node) URL() string { return "http://" + n.HTTPAddr }

// Start runs the node and waits until /readyz answers 200.
func (n *Node) Start() {
	n.t.Helper()
	args := append([]string{"up", "--data-dir", n.DataDir, "--http.addr", n.HTTPAddr,
		"--kafka.embedded.addr", n.BrokerAddr}, n.Args...)
	n.log = &syncBuffer{}
	n.cmd = exec.Command(n.Bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start sluice: %v", err)
	}
	exited := make(chan struct{})
	n.exited = exited
	go func(cmd *exec.Cmd) {
		n.err = cmd.Wait()
		close(exited)
	}(n.cmd)
	n.t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(n.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			n.t.Fatalf("sluice exited before it was ready (%v); log:\n%s", n.err, n.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
	n.t.Fatalf("sluice did not become ready; log:\n%s", n.Log())
}

// Kill stops the node with SIGKILL, as a crash would.
func (n *Node) Kill() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// Stop sends SIGTERM and fails the test unless the node exits cleanly.
func (n *Node) Stop() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		if n.err != nil {
			n.t.Fatalf("sluice exited with %v; log:\n%s", n.err, n.Log())
		}
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		n.t.Fatalf("sluice did not stop within 30s of SIGTERM; log:\n%s", n.Log())
	}
}

// Log returns what the node printed.
func (n *Node) Log() string { return n.log.String() }

// Eventually retries fn until it returns nil or the timeout passes.
func Eventually(ctx context.Context, timeout time.Duration, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for {
		if err = fn(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Clone(b.buf.String())
}
