// Package serve is Sluice's HTTP API for reads: POST /get-online-features in
// Feast's wire format, with values computed by the time rule over the online
// store; POST /v1/sql over ClickHouse; and the node's registry and health
// endpoints. Its Client calls them.
package serve
