package ingest

import "github.com/sluicehq/sluice/connectors/kafka"

// Headers of the records ingest writes to a stream topic (DESIGN section 5);
// the names are defined once, in package kafka.
const (
	// HeaderEventID carries the event's id: the producer's _event_id, or a
	// KSUID that ingest assigned.
	HeaderEventID = kafka.HeaderEventID
	// HeaderSchemaVersion carries the decimal version of the stream schema
	// the event was validated against.
	HeaderSchemaVersion = kafka.HeaderSchemaVersion
)
