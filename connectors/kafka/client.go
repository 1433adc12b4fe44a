package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster says how to reach Kafka and makes clients for it.
type Cluster struct {
	Brokers []string
	// Extra options for every client: SASL, TLS.
	Opts []kgo.Opt
}

// Client returns a client of the cluster with opts added.
func (c Cluster) Client(opts ...kgo.Opt) (*kgo.Client, error) {
	all := append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, c.Opts...)
	all = append(all, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// Producer returns a client for producing with acks=all and idempotence,
// which franz-go enables by default. Records of changelog topics go to the
// partition they name (modulo the topic's partitions): the source
// partition whose state they hold. Other records are partitioned by key,
// as Kafka's default partitioner does.
func (c Cluster) Producer(opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.RecordPartitioner(changelogPartitioner{kgo.UniformBytesPartitioner(64<<10, true, true, nil)}),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.RecordDeliveryTimeout(30 * time.Second),
	}
	return c.Client(append(base, opts...)...)
}

// Topic is a topic Sluice needs.
type Topic struct {
	Name       string
	Partitions int32
	Compacted  bool
	// Like names a topic whose partition count this one takes, when that
	// topic exists and has more partitions than this one would.
	Like string
}

// EnsureTopics creates the topics that do not exist yet, those that take
// their partition count from another (Topic.Like) after the others.
// Existing topics are left as they are.
func EnsureTopics(ctx context.Context, cl *kgo.Client, topics ...Topic) error {
	adm := kadm.NewClient(cl)
	for _, alike := range []bool{false, true} {
		for _, t := range topics {
			if (t.Like != "") != alike {
				continue
			}
			if err := ensureTopic(ctx, adm, cl, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func ensureTopic(ctx context.Context, adm *kadm.Client, cl *kgo.Client, t Topic) error {
	parts := t.Partitions
	if parts == 0 {
		parts = DefaultPartitions
	}
	if t.Like != "" {
		n, err := Partitions(ctx, cl, t.Like)
		switch {
		case err == nil:
			parts = max(parts, n)
		case !errors.Is(err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("create topic %q: %w", t.Name, err)
		}
	}
	var cfg map[string]*string
	if t.Compacted {
		compact := "compact"
		cfg = map[string]*string{"cleanup.policy": &compact}
	}
	resp, err := adm.CreateTopic(ctx, parts, -1, cfg, t.Name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q: %w", t.Name, err)
	}
	return nil
}

// Ping checks that the cluster answers a metadata request.
func Ping(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka unreachable: %w", err)
	}
	return nil
}

// EndOffsets returns the high watermark of each partition of the topics.
// Partitions whose offset could not be listed are left out.
func EndOffsets(ctx context.Context, cl *kgo.Client, topics ...string) (map[string]map[int32]int64, error) {
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	return offsetsOf(listed), nil
}

// StartOffsets returns the first offset each partition of the topics
// still holds (the log start, after retention). Partitions whose offset
// could not be listed are left out.
func StartOffsets(ctx context.Context, cl *kgo.Client, topics ...string) (map[string]map[int32]int64, error) {
	listed, err := kadm.NewClient(cl).ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	return offsetsOf(listed), nil
}

func offsetsOf(listed kadm.ListedOffsets) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out
}

// Partitions returns how many partitions a topic has, from the cluster's
// metadata; for a topic that does not exist, an error that is
// kerr.UnknownTopicOrPartition.
func Partitions(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	switch {
	case !ok:
		return 0, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	case d.Err != nil:
		return 0, fmt.Errorf("topic %s: %w", topic, d.Err)
	}
	return int32(len(d.Partitions)), nil
}

// SlogLogger adapts a *slog.Logger to franz-go's logger at warn level.
func SlogLogger(l *slog.Logger) kgo.Opt {
	return kgo.WithLogger(kgo.BasicLogger(slogWriter{l}, kgo.LogLevelWarn, nil))
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(string(p), "component", "kafka")
	return len(p), nil
}

// changelogPartitioner places changelog records by their Partition field
// and leaves every other topic to its default partitioner.
type changelogPartitioner struct{ def kgo.Partitioner }

func (p changelogPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if strings.HasPrefix(topic, changelogPrefix) {
		return bySourcePartition{}
	}
	return p.def.ForTopic(topic)
}

// bySourcePartition keeps a record's Partition, modulo the partitions.
type bySourcePartition struct{}

func (bySourcePartition) RequiresConsistency(*kgo.Record) bool { return true }

func (bySourcePartition) Partition(r *kgo.Record, n int) int { return int(r.Partition) % n }
