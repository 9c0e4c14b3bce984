package debezium

import (
	"errors"
	"fmt"
)

// DecodeError says which record could not be decoded and where in it. Every
// error Decode returns is one; a caller sends the record to the dead-letter
// queue with Error() as the reason (invariant I5).
type DecodeError struct {
	Topic     string
	Partition int32
	Offset    int64
	// Part is "key", "value" or "header <name>".
	Part string
	// Field is the path of the value at fault inside Part, such as
	// "payload.after.c_numeric" or "schema"; empty when the whole part is.
	Field string
	Err   error
}

func (e *DecodeError) Error() string {
	where := e.Part
	if e.Field != "" {
		where += " " + e.Field
	}
	return fmt.Sprintf("decode %s[%d]@%d: %s: %v", e.Topic, e.Partition, e.Offset, where, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Errors a caller may test for with errors.Is, wrapped in a DecodeError.
var (
	// ErrTooLarge: a key or value is above Options.MaxBytes.
	ErrTooLarge = errors.New("record larger than the configured limit")
	// ErrSchemaMismatch: the payload disagrees with its schema or the catalog.
	ErrSchemaMismatch = errors.New("payload does not match its schema")
	// ErrUnknownOp: the envelope's op is none Debezium sends.
	ErrUnknownOp = errors.New("unknown op")
	// ErrMissingImage: a row image an op requires is absent or null.
	ErrMissingImage = errors.New("missing row image")
)

// fieldError carries the path of the value at fault up to Decode, which adds
// the record's position.
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// at prefixes err's path with name, creating the path if err has none.
func at(name string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		if fe.path == "" {
			fe.path = name
		} else {
			fe.path = name + "." + fe.path
		}
		return fe
	}
	return &fieldError{path: name, err: err}
}

// mismatch is an ErrSchemaMismatch with detail.
func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSchemaMismatch, fmt.Sprintf(format, args...))
}
