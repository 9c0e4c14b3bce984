package sink

import (
	"fmt"
	"runtime/debug"
)

// PanicError is a panic recovered while applying or decoding a record: a
// bug met on some input. It is a record error, so the bisect isolates the
// record that trips it into the dead letters (or, under errors.tolerance
// none, stops the partition at it) instead of one record killing every
// partition and, redelivered after the restart, doing it again.
type PanicError struct {
	Value any
	Stack []byte
}

// maxPanicStack bounds the stack kept in a dead letter's reason.
const maxPanicStack = 8 << 10

// NewPanicError captures the recovered value and the stack of the
// goroutine that panicked; call it from the deferred recover.
func NewPanicError(v any) *PanicError {
	stack := debug.Stack()
	if len(stack) > maxPanicStack {
		stack = stack[:maxPanicStack]
	}
	return &PanicError{Value: v, Stack: stack}
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic (a bug in pgsink met on this record; please report it with this stack): %v\n%s", e.Value, e.Stack)
}
