// Package online is the online store: per view and entity, the events its
// features read, kept in Badger together with the stream offsets they were
// consumed up to and the ids of recent events (for deduplication), all
// committed in one transaction per batch. Reads evaluate the time rule
// (package window) over the stored events, and over those of batches
// staged (Batch.Stage) while they commit.
package online
