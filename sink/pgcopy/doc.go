// Package pgcopy writes rows into PostgreSQL with COPY … FROM STDIN BINARY,
// encoding each value with the plan pgx would choose for it, looked up once
// per column rather than once per value.
//
// pgx's CopyFrom finds a value's encode plan by two map lookups (the column's
// type oid, then the value's Go type) and a reflection test for nil on every
// value; for the sink's rows that was a large share of the time spent
// encoding a COPY (docs/benchmarks.md). A column of a COPY almost always holds values of one Go
// type, so each column remembers the last type it saw and its plan.
//
// The bytes are those pgx writes: the same plans, the same treatment of nil
// and of nil driver.Valuers (left to pgx), and the same fallback for a value
// the binary plan refuses (its text form, parsed by the column's type and
// encoded again). A value that cannot be encoded at all is an *EncodeError
// naming its row and column, reported before the server sees anything of
// that row; the caller can tell it apart from a failure of the server.
//
// It also holds the pgx codecs binary COPY needs for the decoder's values
// (RegisterTypes): timetz and money, which pgx v5 lacks, and a numeric
// encoder that skips math/big for common decimals; and, registered by Copy
// itself when a column's oid is unknown, hstore's, whose oid is the
// database's.
package pgcopy
