// Package connectors is the home of Sluice's sources and sinks to the outside
// world; each lives in a subpackage: kafka (brokers, topics, the registry
// log), clickhouse (tables, the loader, a managed server) and files
// (training-set spines from CSV and Parquet).
package connectors
