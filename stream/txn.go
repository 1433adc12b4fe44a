package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// A batch's changelog records go to Kafka in one transaction, which
// commits only while the worker is still the group member that consumed
// the batch: with it the batch's consumed offsets are committed to the
// group at the generation the worker holds (KIP-447). A worker dropped
// from the group (a long pause, a network split) therefore cannot add a
// late batch after the partition's new owner, and a worker that dies
// half-way leaves an aborted transaction. Restores and serve replicas read
// committed records only, so they see every batch whole or not at all.
// Kafka must allow the worker transactions: WRITE on transactional ids
// sluice-stream-*, and a transaction state log it can write to.

// txnTimeout bounds how long a transaction a dead worker left open holds
// back the readers of its changelog partitions, as Kafka Streams' default
// for exactly-once does. A worker restarted on the same data dir ends it
// at once (openTxn).
const txnTimeout = 10 * time.Second

// groupMember is the consumer whose membership fences the transactions.
type groupMember struct {
	group string
	cl    interface{ GroupMetadata() (string, int32) }
	// consumer is the member's client, which backfills pause and resume
	// partitions of; nil in tests that fence with another.
	consumer *kgo.Client
}

// joined records the consumer the engine works under, or none (nil).
func (e *Engine) joined(group string, cl *kgo.Client) {
	if cl == nil {
		e.member.Store(nil)
		return
	}
	e.member.Store(&groupMember{group: group, cl: cl, consumer: cl})
}

// txnName names the transactions of one run of a worker (online.Store's
// NodeID, LastRun and SetRun).
func txnName(node string, run uint64) string {
	return "sluice-stream-" + node + "-" + strconv.FormatUint(run, 10)
}

// openTxn makes the transactional client, once, under a transactional id
// of a new run. It first ends what the run before left open: starting a
// producer under that run's id aborts its open transaction, which readers
// would otherwise wait for until it timed out. Each run writes as a
// producer of its own because a broker recovering from a crash may abort
// a transaction without writing its marker, and readers then drop every
// later batch of that producer.
func (e *Engine) openTxn(ctx context.Context) (*kgo.Client, error) {
	e.txnMu.Lock()
	defer e.txnMu.Unlock()
	if e.txn != nil {
		return e.txn, nil
	}
	node, err := e.store.NodeID()
	if err != nil {
		return nil, err
	}
	previous, err := e.store.LastRun()
	if err != nil {
		return nil, err
	}
	if previous > 0 {
		old, err := e.newTxnClient(ctx, txnName(node, previous))
		if err != nil {
			return nil, err
		}
		old.Close()
	}
	run := previous + 1
	if err := e.store.SetRun(run); err != nil {
		return nil, err
	}
	cl, err := e.newTxnClient(ctx, txnName(node, run))
	if err != nil {
		return nil, err
	}
	// The commit marker of the last transaction was the old producer's: a
	// new one's records may come before it.
	e.txn, e.txnID = cl, txnName(node, run)
	e.sealedMu.Lock()
	e.sealed = nil
	e.sealedMu.Unlock()
	return cl, nil
}

// newTxnClient starts a transactional client under id, which aborts a
// transaction left open under it.
func (e *Engine) newTxnClient(ctx context.Context, id string) (*kgo.Client, error) {
	// Up to version 4, TxnOffsetCommit belongs to the transactions from
	// before KIP-890 part 2, which the client then keeps to: their EndTxn
	// fails for a transaction the broker aborted, where that of KIP-890
	// may answer as if it had committed (the embedded broker does after a
	// crash), and the batch would commit without its changelog. Version 3
	// and later carry the member id and generation that fence it.
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 4)
	cl, err := e.cluster.Producer(kgo.TransactionalID(id), kgo.TransactionTimeout(txnTimeout), kgo.MaxVersions(versions),
		kgo.ProducerLinger(0)) // a batch's records are produced at once
	if err != nil {
		return nil, err
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("start the changelog's transactions (id %s): %w", id, err)
	}
	return cl, nil
}

// closeTxn drops the transactional client; the next batch makes another,
// whose start aborts whatever this one left open.
func (e *Engine) closeTxn() {
	e.txnMu.Lock()
	defer e.txnMu.Unlock()
	if e.txn != nil {
		e.txn.Close()
		e.txn = nil
	}
}

// writeChangelog produces a batch's changelog records in one transaction
// and commits it with the batch's consumed offsets (topic, partition: next
// offset) under the worker's group membership. Any failure aborts it, or
// leaves it for the broker to abort: the batch then does not commit, and
// is applied again from the store's offsets.
func (e *Engine) writeChangelog(ctx context.Context, recs []*kgo.Record, consumed map[string]map[int32]int64) error {
	cl, err := e.openTxn(ctx)
	if err != nil {
		return err
	}
	if err := cl.BeginTransaction(); err != nil {
		e.closeTxn()
		return fmt.Errorf("begin the changelog transaction: %w", err)
	}
	// The offsets go to the transaction while the records do: a batch's
	// commit waits for the slower of the two, not for both in turn.
	fenced := make(chan error, 1)
	go func() {
		if testHookBeforeFence != nil {
			if err := testHookBeforeFence(); err != nil {
				fenced <- err
				return
			}
		}
		fenced <- e.fence(ctx, cl, consumed)
	}()
	err = cl.ProduceSync(ctx, recs...).FirstErr()
	produced := err == nil
	if err != nil {
		err = fmt.Errorf("write the changelogs: %w", err)
	}
	err = errors.Join(err, <-fenced)
	end := kgo.TryCommit
	if err != nil {
		end = kgo.TryAbort
	}
	// Ended even when ctx is done (the worker stopping): left open, the
	// transaction would hold its partitions' readers back until it times
	// out.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txnTimeout)
	defer cancel()
	endErr := cl.EndTransaction(endCtx, end)
	if endErr != nil || !produced {
		// The outcome may be unknown, the client unusable, or the broker
		// may hold the transaction open with nothing for the client to end
		// (the offsets added, no records): the next run's start ends it.
		e.closeTxn()
	}
	if endErr != nil {
		err = errors.Join(err, fmt.Errorf("end the changelog transaction: %w", endErr))
	}
	return err
}

// errNotMember says the worker is out of its consumer group: the batch
// belongs to the partitions' next owner.
var errNotMember = errors.New("not a member of the consumer group: the batch is left to the partitions' next owner")

// fence commits the batch's consumed offsets in the transaction at the
// generation the worker holds in its group: the broker refuses them, and
// so the transaction, if the worker has left the group or the group has
// moved to another generation since.
func (e *Engine) fence(ctx context.Context, cl *kgo.Client, consumed map[string]map[int32]int64) error {
	m := e.member.Load()
	if m == nil {
		return errNotMember
	}
	memberID, generation := m.cl.GroupMetadata()
	if memberID == "" || generation < 0 {
		return errNotMember
	}
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = e.txnID, id, epoch, m.group
	added, err := add.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(added.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("add the group's offsets to the changelog transaction: %w", err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = e.txnID, m.group, id, epoch
	req.MemberID, req.Generation = memberID, generation
	for topic, parts := range consumed {
		t := kmsg.NewTxnOffsetCommitRequestTopic()
		t.Topic = topic
		for p, next := range parts {
			tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			tp.Partition, tp.Offset, tp.LeaderEpoch = p, next, -1
			t.Partitions = append(t.Partitions, tp)
		}
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("commit the batch's offsets in the changelog transaction: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit the batch's offsets of %s/%d in the changelog transaction (group %s, generation %d): %w", t.Topic, p.Partition, m.group, generation, err)
			}
		}
	}
	return nil
}

// testHookBeforeFence, when set, runs before a batch's offsets go to its
// transaction; an error it returns fails them.
var testHookBeforeFence func() error
