// Package ingest is the producer-facing HTTP API of Sluice:
//
//	POST /v1/streams/{stream}/events
//
// It accepts a batch of events as NDJSON, a JSON array or one JSON object,
// validates each event against the stream's schema, and produces every valid
// event as one Kafka record on the stream's topic: the key is the entity key,
// the value is the event's JSON, and the headers carry the event id and the
// schema version (HeaderEventID, HeaderSchemaVersion). The response is sent
// only after Kafka acknowledged every record, so a 200 means nothing is lost:
//
//	200 {"accepted": 2, "rejected": [{"index": 1, "error": "..."}]}
//
// Invalid events are reported by their 0-based position in the body and do
// not stop the others. Whole-body problems get an error status and a body
// {"error": "..."}: 400 (not valid JSON; the error gives line, column and
// event), 404 (unknown stream), 413 (body too large), 429 (too many requests
// in flight) and 503 (Kafka did not acknowledge in time). 429 and 503 carry
// Retry-After. Events are identified by the reserved field _event_id, or by a
// KSUID that ingest assigns, so re-sending events that carry an _event_id
// never counts them twice.
package ingest
