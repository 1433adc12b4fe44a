package ingest

// Headers of the records ingest writes to a stream topic (DESIGN section 5).
const (
	// HeaderEventID carries the event's id: the producer's _event_id, or a
	// KSUID that ingest assigned.
	HeaderEventID = "sluice-event-id"
	// HeaderSchemaVersion carries the decimal version of the stream schema
	// the event was validated against.
	HeaderSchemaVersion = "sluice-schema-version"
)
