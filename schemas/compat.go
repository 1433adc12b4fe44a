package schemas

import (
	"errors"
	"fmt"
	"slices"
)

// CheckCompatible reports whether next may replace old as the schema of a
// stream: old events must still decode under next, and readers of old
// values must keep working. Allowed changes are adding a nullable field or
// a field with a default, making a field nullable, widening int64 to
// float64, adding a default, relaxing unknown_fields from reject to ignore,
// reordering fields, and dropping a field (whether a view still reads a
// dropped field is the registry's check). Every incompatible change is
// returned, joined, as a *FieldError naming the stream, the field and the
// fix.
func CheckCompatible(old, next *Schema) error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Stream: old.Stream, Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if old.Stream != next.Stream {
		fail("", "cannot be replaced by the schema of stream %q", next.Stream)
		return errors.Join(errs...)
	}
	if old.TimeField != next.TimeField {
		fail("", "changing the timestamp field from %q to %q is incompatible (create a new stream)", old.TimeField, next.TimeField)
	}
	if compatUnit(old.TimeUnit) != compatUnit(next.TimeUnit) {
		fail("", "changing timestamp_unit from %s to %s would misread the times of old events (create a new stream)", compatUnit(old.TimeUnit), compatUnit(next.TimeUnit))
	}
	if !slices.Equal(old.KeyFields, next.KeyFields) {
		fail("", "changing the key fields from %v to %v is incompatible: events are partitioned by them (create a new stream)", old.KeyFields, next.KeyFields)
	}
	if compatPolicy(old.UnknownFields) == IgnoreUnknown && compatPolicy(next.UnknownFields) == RejectUnknown {
		fail("", "changing unknown_fields from ignore to reject would reject old events with extra fields (keep ignore)")
	}
	for _, nf := range next.Fields {
		i := old.Index(nf.Name)
		if i < 0 {
			if !nf.Nullable && nf.Default == nil {
				fail(nf.Name, "a new field must be nullable or have a default, as old events lack it (add nullable: true or a default)")
			}
			continue
		}
		compatField(old.Fields[i], nf, fail)
	}
	return errors.Join(errs...)
}

// compatField checks one field present in both schemas.
func compatField(of, nf Field, fail func(field, format string, args ...any)) {
	if of.Type != nf.Type && (of.Type != Int64 || nf.Type != Float64) {
		fail(nf.Name, "changing the type from %s to %s is incompatible (add a new field instead, or create a new stream)", of.Type, nf.Type)
	}
	if of.Nullable && !nf.Nullable {
		fail(nf.Name, "making a nullable field required would reject old events holding null (keep nullable: true)")
	}
	if of.Default != nil && nf.Default == nil && !nf.Nullable {
		fail(nf.Name, "removing the default would reject old events that omit the field (keep the default, or make the field nullable)")
	}
}

func compatUnit(u TimeUnit) TimeUnit {
	if u == "" {
		return Milliseconds
	}
	return u
}

func compatPolicy(p UnknownFields) UnknownFields {
	if p == "" {
		return RejectUnknown
	}
	return p
}
