package kafka

import "strings"

// Topic names of DESIGN.md section 5.
const (
	RegistryTopic   = "sluice.registry"
	ServingLogTopic = "sluice.serving_log"
	AlertsTopic     = "sluice.alerts"
)

// DLQTopic is the dead-letter topic of a stream.
func DLQTopic(stream string) string { return "sluice.dlq." + stream }

// ChangelogTopic is the compacted changelog of a view.
func ChangelogTopic(view string) string { return changelogPrefix + view }

const changelogPrefix = "sluice.changelog."

// ChangelogView returns the view whose changelog topic is, and whether it
// is one.
func ChangelogView(topic string) (string, bool) {
	return strings.CutPrefix(topic, changelogPrefix)
}

// RepartitionTopic re-keys a stream for a view keyed by another entity.
func RepartitionTopic(view string) string { return "sluice.repartition." + view }

// Record headers of DESIGN.md section 5.
const (
	HeaderEventID         = "sluice-event-id"
	HeaderSchemaVersion   = "sluice-schema-version"
	HeaderError           = "sluice-error"
	HeaderSourceTopic     = "sluice-source-topic"
	HeaderSourcePartition = "sluice-source-partition"
	HeaderSourceOffset    = "sluice-source-offset"
	// HeaderArrivalTime carries an event's arrival time (µs since the
	// epoch) on internal topics, where the record's own time is later.
	HeaderArrivalTime = "sluice-arrival-time"
	// HeaderExpiresAt says when a changelog entry's state expires (Unix
	// seconds), so replicas forget it when the worker does.
	HeaderExpiresAt = "sluice-expires-at"
)

// DefaultPartitions is the partition count of topics Sluice creates.
const DefaultPartitions = 8
