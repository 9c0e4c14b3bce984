package faults

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// PanicEnv makes pgsink panic on chosen records, to prove a panic is
// contained to its record: "decode:MARKER" panics while decoding a record
// whose value contains MARKER, "apply:MARKER" while writing it.
const PanicEnv = "PGSINK_TEST_PANIC"

// Hooks are the fault hooks the environment arms for one process.
type Hooks struct {
	// Audit turns on the apply audit (AuditEnv=1).
	Audit bool
	// Break is BreakEnv's value: "" or "no-version-guard".
	Break string
	// Failpoints are the armed points (FailpointEnv).
	Failpoints Failpoints
	// PanicWhere ("decode" or "apply") and PanicMarker are PanicEnv's.
	PanicWhere  string
	PanicMarker []byte
}

// PanicsOn reports whether a record of this value must panic at where.
func (h Hooks) PanicsOn(where string, value []byte) bool {
	return h.PanicWhere == where && len(h.PanicMarker) > 0 && bytes.Contains(value, h.PanicMarker)
}

// NoVersionGuard reports whether the version guard is broken on purpose.
func (h Hooks) NoVersionGuard() bool { return h.Break == "no-version-guard" }

// Armed reports whether any hook is on.
func (h Hooks) Armed() bool {
	return h.Audit || h.Break != "" || len(h.Failpoints) > 0 || h.PanicWhere != ""
}

// FromEnv reads the hooks from AuditEnv, BreakEnv and FailpointEnv.
func FromEnv() (Hooks, error) {
	h := Hooks{Audit: os.Getenv(AuditEnv) == "1", Break: os.Getenv(BreakEnv)}
	switch h.Break {
	case "", "no-version-guard":
	default:
		return Hooks{}, fmt.Errorf("%s: %q: the only way to break pgsink is no-version-guard", BreakEnv, h.Break)
	}
	fp, err := ParseFailpoints(os.Getenv(FailpointEnv))
	if err != nil {
		return Hooks{}, err
	}
	h.Failpoints = fp
	if spec := os.Getenv(PanicEnv); spec != "" {
		where, marker, ok := strings.Cut(spec, ":")
		if !ok || marker == "" || (where != "decode" && where != "apply") {
			return Hooks{}, fmt.Errorf("%s: %q: want decode:MARKER or apply:MARKER", PanicEnv, spec)
		}
		h.PanicWhere, h.PanicMarker = where, []byte(marker)
	}
	return h, nil
}
