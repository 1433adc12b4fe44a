// Package serve is Sluice's online serving API: POST /get-online-features in
// Feast's wire format, with values computed by the time rule over the online
// store, plus the node's registry and health endpoints.
package serve
