// Package schemas defines Sluice's event schemas: the field types a stream
// declares, the rules for evolving them compatibly, and the decoder that turns
// a producer's JSON into a validated Event with an exact event time.
//
// Every error a producer can see names the stream, the field and the fix, for
// example:
//
//	stream "transactions": field "amount": expected float64, got string "12,5"
package schemas
