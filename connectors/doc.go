// Package connectors is the home of Sluice's sources and sinks to the outside
// world; each lives in a subpackage: kafka (brokers, topics, the registry
// log) and clickhouse (tables, the loader, a managed server).
package connectors
