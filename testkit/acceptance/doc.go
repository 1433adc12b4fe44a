// Package acceptance runs Sluice end to end as users do: the `sluice` binary
// over TCP against its embedded broker, producers using HTTP and kcat, and
// readers of the served features and of the Parquet files.
package acceptance
