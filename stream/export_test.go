package stream

// StartRegistry gives the package's external tests the broker and
// registry set-up of its internal ones.
var StartRegistry = startRegistry
