// Package connectors is the home of Sluice's sources and sinks to the outside
// world; each lives in a subpackage (kafka, ...).
package connectors
