package upstream

import (
	"fmt"
	"strings"
)

// Severity says whether a setting loses data (Error), may (Warning), or
// loses nothing but costs (Info).
type Severity int

// Severities.
const (
	// Info: nothing is lost, but the setting costs pgsink work per record
	// for nothing it reads.
	Info Severity = iota - 1
	// Warning: data may be lost, depending on what validate cannot see
	// (the source's own column types, whether a column is meant to stay
	// empty).
	Warning Severity = iota
	// Error: every value of a kind the column holds, or every event of a
	// kind the table applies, is lost or altered whenever one occurs.
	Error
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Info:
		return "info"
	}
	return "warning"
}

// Finding is one setting of one connector that loses data of one pgsink
// table, or of one of its target columns, or (Info) that costs it work.
type Finding struct {
	Severity Severity
	// Path is the key path of the pgsink table ("tables[2]") or of the
	// table's setting that meets the connector's ("tables[2].snapshot.reconcile").
	Path string
	// Connector is the connector's name; empty when no connector feeds the table.
	Connector string
	// Setting is the connector's key and value, as "decimal.handling.mode=precise".
	Setting string
	// Target names the table a template derived, for a column of it; empty
	// for a fixed target (the entry names it).
	Target string
	// Column and ColumnType name the target column; empty for the table as a whole.
	Column, ColumnType string
	Consequence        string
	Fix                string
}

// Message is the finding on one line, without its position: severity,
// connector and setting, column, consequence, fix.
func (f Finding) Message() string {
	var b strings.Builder
	b.WriteString(f.Severity.String() + ": ")
	if f.Connector != "" {
		fmt.Fprintf(&b, "connector %q", f.Connector)
		if f.Setting != "" {
			b.WriteString(" " + f.Setting)
		}
		b.WriteString(": ")
	}
	if f.Target != "" {
		fmt.Fprintf(&b, "derived target %s: ", f.Target)
	}
	if f.Column != "" {
		fmt.Fprintf(&b, "column %q (%s): ", f.Column, f.ColumnType)
	}
	b.WriteString(f.Consequence)
	if f.Fix != "" {
		b.WriteString("; fix: " + f.Fix)
	}
	return b.String()
}
