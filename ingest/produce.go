package ingest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/ksuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/schemas"
)

// batch is one request's records, ready to produce, and its rejections.
type batch struct {
	records  []*kgo.Record
	index    []int // body position of records[i]
	rejected []Rejection
}

func (b *batch) reject(index int, msg string) {
	b.rejected = append(b.rejected, Rejection{Index: index, Error: msg})
}

// newBatch decodes events and turns the valid ones into records: key = the
// entity key, value = the event's JSON as sent (compacted when it spans
// lines), headers = event id and schema version. The timestamp stays unset,
// so the client stamps each record with the time it was accepted.
func (h *Handler) newBatch(stream *featurestore.Stream, dec *schemas.Decoder, events [][]byte) *batch {
	b := &batch{
		records: make([]*kgo.Record, 0, len(events)),
		index:   make([]int, 0, len(events)),
	}
	slab := make([]kgo.Record, len(events))
	headers := make([]kgo.RecordHeader, 2*len(events))
	version := []byte(strconv.Itoa(stream.Schema.Version))
	ids := idSource{now: h.opts.Now(), buf: make([]byte, 0, ksuidLen*len(events))}
	for i, raw := range events {
		ev, err := dec.Decode(raw)
		if err != nil {
			b.reject(i, err.Error())
			continue
		}
		var id []byte
		if ev.ID != "" {
			id = []byte(ev.ID)
		} else {
			id = ids.next()
		}
		n := len(b.records)
		hdr := headers[2*n : 2*n+2 : 2*n+2]
		hdr[0] = kgo.RecordHeader{Key: HeaderEventID, Value: id}
		hdr[1] = kgo.RecordHeader{Key: HeaderSchemaVersion, Value: version}
		rec := &slab[n]
		rec.Topic = stream.Topic
		rec.Key = []byte(dec.Key(ev))
		rec.Value = compact(raw)
		rec.Headers = hdr
		b.records = append(b.records, rec)
		b.index = append(b.index, i)
	}
	return b
}

// compact removes the line breaks and tabs of a pretty-printed event, keeping
// its fields in order; other events are returned as they are. Raw control
// characters cannot occur inside JSON strings, so any of them is layout.
func compact(raw []byte) []byte {
	if bytes.IndexAny(raw, "\n\r\t") < 0 {
		return raw
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return raw // unreachable: splitBody checked the syntax
	}
	return buf.Bytes()
}

// ksuidLen is the length of a KSUID's string form.
const ksuidLen = 27

// idSource assigns KSUIDs to the events of one request: one random seed per
// 65,536 events, then a sequence, so ids are unique and ordered by body
// position without a random read per event.
type idSource struct {
	now     time.Time
	seq     ksuid.Sequence
	started bool
	buf     []byte // the ids' text, sub-sliced by next
}

// next returns the string form of the next id.
func (s *idSource) next() []byte {
	id, err := s.seq.Next()
	if !s.started || err != nil {
		seed, err := ksuid.NewRandomWithTime(s.now)
		if err != nil { // crypto/rand does not fail on supported platforms
			panic(fmt.Sprintf("ingest: generate event id: %v", err))
		}
		s.seq = ksuid.Sequence{Seed: seed}
		s.started = true
		id, _ = s.seq.Next() // a fresh sequence has room
	}
	start := len(s.buf)
	s.buf = id.Append(s.buf)
	return s.buf[start:len(s.buf):len(s.buf)]
}

// produceResult is the outcome of producing a batch.
type produceResult struct {
	acked int
	// err is the first failure that makes the request fail with 503; nil when
	// every record was acknowledged or rejected as too large.
	err error
}

// produce produces the batch's records and waits until Kafka acknowledged or
// failed every one, or ProduceTimeout passes. A client that goes away does
// not cut the wait short: its records share batches with other requests',
// and canceling them could fail those too. Records Kafka refuses as too
// large become rejections; any other failure is returned.
func (h *Handler) produce(ctx context.Context, stream *featurestore.Stream, b *batch) produceResult {
	if len(b.records) == 0 {
		return produceResult{}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.ProduceTimeout)
	defer cancel()
	start := h.opts.Now()

	var (
		acked     atomic.Int64
		remaining atomic.Int64
		mu        sync.Mutex
		failed    map[*kgo.Record]error
		done      = make(chan struct{})
	)
	remaining.Store(int64(len(b.records)))
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if failed == nil {
				failed = make(map[*kgo.Record]error)
			}
			failed[r] = err
			mu.Unlock()
		} else {
			acked.Add(1)
		}
		if remaining.Add(-1) == 0 {
			close(done)
		}
	}
	for _, r := range b.records {
		h.client.Produce(ctx, r, promise)
	}
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done:
		default:
			return produceResult{
				acked: int(acked.Load()),
				err:   fmt.Errorf("no acknowledgement within %v", h.opts.ProduceTimeout),
			}
		}
	}
	h.m.produce.WithLabelValues(stream.Name).Observe(h.opts.Now().Sub(start).Seconds())

	res := produceResult{acked: int(acked.Load())}
	if len(failed) == 0 {
		return res
	}
	for i, r := range b.records {
		err, ok := failed[r]
		switch {
		case !ok:
		case errors.Is(err, kerr.MessageTooLarge):
			b.reject(b.index[i], fmt.Sprintf("stream %q: event is %d bytes, more than Kafka accepts in one record (max.message.bytes)", stream.Name, len(r.Value)))
		case res.err == nil:
			res.err = err
		}
	}
	slices.SortFunc(b.rejected, func(x, y Rejection) int { return cmp.Compare(x.Index, y.Index) })
	return res
}

// message is the error text of a 503.
func (res produceResult) message(stream *featurestore.Stream, records int) string {
	return fmt.Sprintf("stream %q: producing to Kafka topic %q failed: %v; %d of %d valid events were acknowledged "+
		"and the other %d may or may not have been written; retry the request after 1 second "+
		"(events that carry an %s are never counted twice, so set one on every event to make retries safe)",
		stream.Name, stream.Topic, res.err, res.acked, records, records-res.acked, schemas.EventIDField)
}
