package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/featurestore"
)

// RegistryLog keeps the registry's definitions in the compacted
// sluice.registry topic, so every node of a fleet sees the same ones.
type RegistryLog struct {
	cluster  Cluster
	producer *kgo.Client
}

// NewRegistryLog creates the registry topic when missing.
func NewRegistryLog(ctx context.Context, cluster Cluster, producer *kgo.Client) (*RegistryLog, error) {
	if err := EnsureTopics(ctx, producer, Topic{Name: RegistryTopic, Partitions: 1, Compacted: true}); err != nil {
		return nil, err
	}
	return &RegistryLog{cluster: cluster, producer: producer}, nil
}

// Append writes records (nil Value deletes) and returns once Kafka
// acknowledged all of them.
func (l *RegistryLog) Append(ctx context.Context, recs []featurestore.Record) error {
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Topic: RegistryTopic, Partition: 0, Key: []byte(r.Key), Value: r.Value}
	}
	if err := l.producer.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	return nil
}

// ReadAll returns every record of the registry topic in order.
func (l *RegistryLog) ReadAll(ctx context.Context) ([]featurestore.Record, error) {
	ends, err := EndOffsets(ctx, l.producer, RegistryTopic)
	if err != nil {
		return nil, err
	}
	end := ends[RegistryTopic][0]
	if end == 0 {
		return nil, nil
	}
	cl, err := l.cluster.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		RegistryTopic: {0: kgo.NewOffset().AtStart()},
	}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []featurestore.Record
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read registry: %w", err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("read registry: %w", ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, featurestore.Record{Key: string(r.Key), Value: r.Value})
			if r.Offset+1 >= end {
				done = true
			}
		})
		if done {
			return out, nil
		}
	}
}

// Follow calls fn with the registry topic's records from the start, one
// batch per fetch, until ctx is done.
func (l *RegistryLog) Follow(ctx context.Context, fn func([]featurestore.Record)) error {
	cl, err := l.cluster.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		RegistryTopic: {0: kgo.NewOffset().AtStart()},
	}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		var batch []featurestore.Record
		fs.EachRecord(func(r *kgo.Record) {
			batch = append(batch, featurestore.Record{Key: string(r.Key), Value: r.Value})
		})
		if len(batch) > 0 {
			fn(batch)
		}
	}
}
