// Package stream runs Sluice's streaming jobs over Kafka consumer groups:
// the engine that applies feature views to the online store, and the sink
// that writes every valid event to the offline store. Both keep their
// consumed offsets in their own store, committed atomically with the data,
// so a crash at any point replays exactly what was not committed.
//
// Records that fail validation go to the stream's dead-letter topic with
// their original bytes and an error header; processing goes on.
package stream
