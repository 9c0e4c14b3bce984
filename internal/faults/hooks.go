package faults

import (
	"fmt"
	"os"
)

// Hooks are the fault hooks the environment arms for one process.
type Hooks struct {
	// Audit turns on the apply audit (AuditEnv=1).
	Audit bool
	// Break is BreakEnv's value: "" or "no-version-guard".
	Break string
	// Failpoints are the armed points (FailpointEnv).
	Failpoints Failpoints
}

// NoVersionGuard reports whether the version guard is broken on purpose.
func (h Hooks) NoVersionGuard() bool { return h.Break == "no-version-guard" }

// Armed reports whether any hook is on.
func (h Hooks) Armed() bool { return h.Audit || h.Break != "" || len(h.Failpoints) > 0 }

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
	return h, nil
}
