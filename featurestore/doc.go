// Package featurestore holds feature definitions and their registry: the
// entities, streams, feature views and feature services a feature repository
// declares, how they are read from YAML, validated, versioned and diffed.
//
// Its subpackages hold the stores: window (the one implementation of the time
// rule), online (the Badger online store) and offline (the Parquet store).
package featurestore
