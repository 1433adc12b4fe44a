package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ReadCommitted calls fn with the records of a topic's partitions from
// from[p] up to to[p], in order, as a read-committed consumer sees them:
// records of aborted transactions are left out, the transaction markers
// are passed (Record.Attrs.IsControl), and a transaction still open is
// waited for. Unlike a consumer it knows where it stands in each
// partition, so it returns once every partition is read to its end even
// when the last records there belong to a transaction the broker aborted
// without a marker, as the embedded broker does for a transaction open
// when it crashed. Records deleted meanwhile are skipped.
func ReadCommitted(ctx context.Context, cl *kgo.Client, topic string, from, to map[int32]int64, fn func(*kgo.Record) error) error {
	next := map[int32]int64{}
	for p, end := range to {
		if from[p] < end {
			next[p] = from[p]
		}
	}
	var leaders map[int32]int32
	var id [16]byte
	failed := map[int32]int{} // by leader: fetches in a row that failed
	for len(next) > 0 {
		if leaders == nil {
			var err error
			if leaders, id, err = partitionLeaders(ctx, cl, topic); err != nil {
				return err
			}
		}
		byLeader := map[int32][]int32{}
		for p := range next {
			leader, ok := leaders[p]
			if !ok {
				return fmt.Errorf("read %s: partition %d does not exist", topic, p)
			}
			byLeader[leader] = append(byLeader[leader], p)
		}
		for leader, parts := range byLeader {
			stale, err := fetchCommitted(ctx, cl, leader, topic, id, parts, next, to, fn)
			if err != nil {
				return err
			}
			if !stale {
				delete(failed, leader)
				continue
			}
			leaders = nil
			if failed[leader]++; failed[leader] == maxFailedFetches {
				return fmt.Errorf("read %s: %d fetches in a row from broker %d failed, the last at %v", topic, maxFailedFetches, leader, next)
			}
		}
	}
	return nil
}

// maxFailedFetches is how many fetches in a row may fail, each followed by
// a pause of 100 ms and a new look at the leaders, before a read gives up.
const maxFailedFetches = 300

// partitionLeaders returns the leader of each partition of topic and the
// topic's id.
func partitionLeaders(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int32, [16]byte, error) {
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil, [16]byte{}, fmt.Errorf("read %s: metadata: %w", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return nil, [16]byte{}, fmt.Errorf("read %s: metadata: %w", topic, errors.Join(td.Err, kerr.UnknownTopicOrPartition))
	}
	out := map[int32]int32{}
	for p, pd := range td.Partitions {
		out[p] = pd.Leader
	}
	return out, td.ID, nil
}

// fetchCommitted fetches once from one leader, advancing next and dropping
// the partitions read to their end from it. It reports whether the
// leaders should be looked up again.
func fetchCommitted(ctx context.Context, cl *kgo.Client, leader int32, topic string, id [16]byte, parts []int32, next, to map[int32]int64, fn func(*kgo.Record) error) (bool, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 100, 1, 32<<20
	req.IsolationLevel, req.SessionEpoch = 1, -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic, t.TopicID = topic, id
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, next[p], 8<<20
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		t.Partitions = append(t.Partitions, rp)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		var ke *kerr.Error
		if ctx.Err() != nil || errors.Is(err, kgo.ErrClientClosed) || errors.As(err, &ke) && !ke.Retriable {
			return false, fmt.Errorf("read %s: fetch: %w", topic, errors.Join(ctx.Err(), err))
		}
		return true, pause(ctx) // the connection or the leader: look again
	}
	stale := false
	for _, rt := range resp.Topics {
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			p := rp.Partition
			at, wanted := next[p]
			if !wanted {
				continue
			}
			opts := kgo.ProcessFetchPartitionOpts{KeepControlRecords: true, Offset: at, IsolationLevel: kgo.ReadCommitted(), Topic: topic, Partition: p}
			fp, n := kgo.ProcessFetchPartition(opts, rp, kgo.DefaultDecompressor(), nil)
			switch {
			case errors.Is(fp.Err, kerr.OffsetOutOfRange) && rp.LogStartOffset > at:
				n = rp.LogStartOffset // deleted since: nothing to read there
			case fp.Err != nil && kerr.IsRetriable(fp.Err):
				stale = true
				continue
			case fp.Err != nil:
				return false, fmt.Errorf("read %s/%d at %d: %w", topic, p, at, fp.Err)
			}
			for _, r := range fp.Records {
				if r.Offset >= to[p] {
					break
				}
				if err := fn(r); err != nil {
					return false, err
				}
			}
			if n > at {
				next[p] = n
			}
			if next[p] >= to[p] {
				delete(next, p)
			}
		}
	}
	if stale {
		return true, pause(ctx)
	}
	return false, nil
}

// pause waits a moment before a retry, or until ctx is done.
func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}
