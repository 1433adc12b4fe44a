package perf

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
)

// memoryRepo gives every event a new entity.
const memoryRepo = `
kind: entity
name: user
key: user_id
---
kind: stream
name: clicks
entity: user
timestamp: ts
timestamp_unit: ms
schema:
  - {name: user_id, type: string}
  - {name: amount, type: float64}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: user_clicks
entity: user
source: clicks
features:
  - {name: n_1h, agg: count, window: 1h}
  - {name: spent_24h, field: amount, agg: sum, window: 24h}
  - {name: last_amount, field: amount, agg: last, ttl: 1d}
`

// Memory runs a stream worker (`sluice up --role stream`, its own process)
// against a `sluice broker` holding one event for each of N distinct
// entities (default 10 million), and reports the worker's resident memory
// once every entity has state: the state cache is bounded, so it must not
// grow with the entities.
func Memory(ctx context.Context, o Options) ([]Figure, error) {
	n := o.Events
	if n == 0 {
		n = 10_000_000
	}
	dir, cleanup, err := o.scratch()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	bin := o.Bin
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	brokerAddr, httpAddr := freeAddr(), freeAddr()
	broker := exec.CommandContext(ctx, bin, "broker", "--addr", brokerAddr, "--data-dir", filepath.Join(dir, "broker"))
	if err := broker.Start(); err != nil {
		return nil, err
	}
	defer func() { broker.Process.Kill(); broker.Wait() }()
	kc := kafka.Cluster{Brokers: []string{brokerAddr}}
	prod, err := kc.Producer(kgo.ProducerBatchMaxBytes(1 << 20))
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	if err := waitBroker(ctx, prod); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "repo.yaml"), []byte(memoryRepo), 0o644); err != nil {
		return nil, err
	}
	if err := kafka.EnsureTopics(ctx, prod, kafka.Topic{Name: "clicks"}); err != nil {
		return nil, err
	}
	o.progress("memory: producing %d events of as many entities", n)
	if err := produceDistinct(ctx, prod, n); err != nil {
		return nil, err
	}
	o.progress("memory: applying them with a stream worker")
	repoDir := filepath.Join(dir, "repo")
	if err := os.MkdirAll(repoDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(dir, "repo.yaml"), filepath.Join(repoDir, "repo.yaml")); err != nil {
		return nil, err
	}
	worker := exec.CommandContext(ctx, bin, "up", "--role", "stream", "--data-dir", filepath.Join(dir, "worker"),
		"--kafka.brokers", brokerAddr, "--http.addr", httpAddr, "--repo", repoDir)
	if err := worker.Start(); err != nil {
		return nil, err
	}
	defer func() { worker.Process.Kill(); worker.Wait() }()
	start := time.Now()
	if err := waitApplied(ctx, "http://"+httpAddr, n, o); err != nil {
		return nil, err
	}
	rate := float64(n) / time.Since(start).Seconds()
	mem, err := procMemory(worker.Process.Pid)
	if err != nil {
		return nil, err
	}
	heap, err := metricSum(ctx, "http://"+httpAddr, "go_memstats_heap_inuse_bytes", "")
	if err != nil {
		return nil, err
	}
	// Resident memory counts the pages of Badger's memory-mapped tables
	// that happen to be in the page cache (RssFile), which the kernel
	// reclaims at will; the process's own memory is RssAnon.
	return []Figure{
		{Name: "memory_rss", Value: float64(mem["VmRSS"]) / (1 << 20), Unit: "MiB"},
		{Name: "memory_rss_anon", Value: float64(mem["RssAnon"]) / (1 << 20), Unit: "MiB"},
		{Name: "memory_rss_file", Value: float64(mem["RssFile"]) / (1 << 20), Unit: "MiB"},
		{Name: "memory_peak_rss", Value: float64(mem["VmHWM"]) / (1 << 20), Unit: "MiB"},
		{Name: "memory_go_heap", Value: heap / (1 << 20), Unit: "MiB"},
		{Name: "memory_entities", Value: float64(n), Unit: "entities"},
		{Name: "memory_apply", Value: rate, Unit: "events/s"},
	}, nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

func waitBroker(ctx context.Context, cl *kgo.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := kafka.Ping(ctx, cl); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("broker not up: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func produceDistinct(ctx context.Context, cl *kgo.Client, n int) error {
	now := time.Now().UnixMilli()
	var failed error
	for i := range n {
		user := fmt.Sprintf("m%09d", i)
		v := fmt.Sprintf(`{"user_id":%q,"amount":%d.5,"ts":%d}`, user, i%1000, now-int64(i%3_600_000))
		cl.Produce(ctx, &kgo.Record{Topic: "clicks", Key: []byte(user), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return failed
}

// waitApplied polls the worker's metrics until it has applied n events.
func waitApplied(ctx context.Context, url string, n int, o Options) error {
	last := time.Now()
	for {
		applied, err := appliedEvents(ctx, url)
		if err == nil && applied >= float64(n) {
			return nil
		}
		if time.Since(last) > 10*time.Second {
			o.progress("memory: %.0f of %d applied", applied, n)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func appliedEvents(ctx context.Context, url string) (float64, error) {
	return metricSum(ctx, url, "sluice_stream_events_total", `outcome="applied"`)
}

// metricSum sums the series of a Prometheus metric on url's /metrics
// whose line contains match.
func metricSum(ctx context.Context, url, name, match string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if (strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ")) && strings.Contains(line, match) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum, nil
}

// procMemory reads a process's memory figures (bytes) from
// /proc/PID/status: VmRSS, VmHWM, RssAnon, RssFile.
func procMemory(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "VmRSS", "VmHWM", "RssAnon", "RssFile":
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			out[k] = kb * 1024
		}
	}
	return out, sc.Err()
}
