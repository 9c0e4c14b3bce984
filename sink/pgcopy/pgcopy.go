package pgcopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// EncodeError is a value that could not be encoded for its column: the
// data of one row is at fault, not the server or the connection.
type EncodeError struct {
	Row    int    // index in the rows given to Copy
	Column string // the column's name
	Err    error
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("row %d, column %q: %v", e.Row, e.Column, e.Err)
}
func (e *EncodeError) Unwrap() error { return e.Err }

// Copy runs COPY table (cols) FROM STDIN BINARY on conn with rows, each
// holding one value per column, and returns the number of rows copied.
//
// The columns' type oids are asked of the server once per connection and
// statement text, and asked again after a COPY that failed. A column whose
// type is altered in place while the connection lives is not noticed: Copy
// is for tables whose definition the caller controls (a staging table it
// created). CopyAt notices.
func Copy(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, cols []string, rows [][]any) (int64, error) {
	return CopyAt(ctx, conn, table, cols, rows, "")
}

// CopyAt is Copy for a table whose columns may be altered while the
// connection lives: revision names the definition of the table the caller
// read in its transaction, under a lock that keeps the definition until the
// COPY (see the sink's copyFresh), and type oids described under another
// revision are described again. Without it, a bigint column altered to
// numeric would be sent bigint's binary form, which numeric's receive
// function reads as a valid number for small values: zero, silently.
func CopyAt(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, cols []string, rows [][]any, revision string) (int64, error) {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	list := strings.Join(quoted, ", ")
	describe := "SELECT " + list + " FROM " + table.Sanitize()
	pg := conn.PgConn()
	oids, err := columnOIDs(ctx, pg, describe, revision)
	if err != nil {
		return 0, fmt.Errorf("describe the columns of %s: %w", table.Sanitize(), err)
	}
	if len(oids) != len(cols) {
		return 0, fmt.Errorf("describe the columns of %s: %d columns for %d names", table.Sanitize(), len(oids), len(cols))
	}
	if err := registerExtensionTypes(ctx, conn, oids); err != nil {
		return 0, err
	}
	r := newReader(NewEncoder(conn.TypeMap(), cols, oids), rows)
	tag, err := pg.CopyFrom(ctx, r, "COPY "+table.Sanitize()+" ("+list+") FROM STDIN BINARY")
	var pgErr *pgconn.PgError
	if rowErr := r.failure(); rowErr != nil && errors.As(err, &pgErr) && pgErr.Code == queryCanceled {
		// The COPY was abandoned because of the row (CopyFail); the
		// server's answer says only that. An error the server raised
		// first, such as a permission denied, is its own answer.
		err = rowErr
	}
	if err != nil {
		delete(pg.CustomData(), oidsKey(describe))
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// queryCanceled is the SQLSTATE of the server's answer to a CopyFail.
const queryCanceled = "57014"

// oidsKey is where a connection keeps the type oids a query returns.
func oidsKey(describe string) string { return "pgcopy oids: " + describe }

// described is what a connection remembers of a query's result columns.
type described struct {
	revision string // the caller's name for the table's definition
	oids     []uint32
}

// columnOIDs returns the type oids of describe's result columns, from the
// connection's memory when they were described under revision, else from
// the server (the unnamed statement, which the next statement replaces).
func columnOIDs(ctx context.Context, pg *pgconn.PgConn, describe, revision string) ([]uint32, error) {
	key := oidsKey(describe)
	if d, ok := pg.CustomData()[key].(described); ok && d.revision == revision {
		return d.oids, nil
	}
	sd, err := pg.Prepare(ctx, "", describe, nil)
	if err != nil {
		return nil, err
	}
	oids := make([]uint32, len(sd.Fields))
	for i, f := range sd.Fields {
		oids[i] = f.DataTypeOID
	}
	pg.CustomData()[key] = described{revision: revision, oids: oids}
	return oids, nil
}

// Encoder turns rows of values into COPY's binary row format. It is not
// safe for concurrent use: its columns remember their last plan.
type Encoder struct {
	types   *pgtype.Map
	columns []column
}

type column struct {
	name string
	oid  uint32
	// typ is the Go type of the last value encoded with plan.
	typ  reflect.Type
	plan pgtype.EncodePlan
}

// NewEncoder returns an encoder for columns of the given names and type
// oids, encoding with the plans of types.
func NewEncoder(types *pgtype.Map, names []string, oids []uint32) *Encoder {
	e := &Encoder{types: types, columns: make([]column, len(oids))}
	for i, oid := range oids {
		e.columns[i] = column{name: names[i], oid: oid}
	}
	return e
}

// copySignature opens every binary COPY stream, followed by a flags word
// and the length of a header extension, both zero.
const copySignature = "PGCOPY\n\377\r\n\000"

// AppendHeader appends the stream's header to buf.
func AppendHeader(buf []byte) []byte {
	buf = append(buf, copySignature...)
	return append(buf, 0, 0, 0, 0, 0, 0, 0, 0)
}

// AppendTrailer appends the stream's end marker to buf.
func AppendTrailer(buf []byte) []byte { return append(buf, 0xff, 0xff) }

// AppendRow appends one row to buf; row i of the caller's, for errors.
func (e *Encoder) AppendRow(buf []byte, i int, row []any) ([]byte, error) {
	if len(row) != len(e.columns) {
		return nil, &EncodeError{Row: i, Err: fmt.Errorf("%d values for %d columns", len(row), len(e.columns))}
	}
	buf = appendInt16(buf, int16(len(row)))
	for j, v := range row {
		var err error
		if buf, err = e.appendValue(buf, &e.columns[j], v); err != nil {
			return nil, &EncodeError{Row: i, Column: e.columns[j].name, Err: err}
		}
	}
	return buf, nil
}

// appendValue appends v as one field: its length, or -1 for NULL, then
// its bytes.
func (e *Encoder) appendValue(buf []byte, c *column, v any) ([]byte, error) {
	if v == nil {
		return appendInt32(buf, -1), nil
	}
	t := reflect.TypeOf(v)
	if mayBeNil(t.Kind()) && reflect.ValueOf(v).IsNil() {
		// A nil pointer, slice or map, and a nil driver.Valuer, have
		// rules of their own in pgx: keep them.
		return e.appendPlanned(buf, c.oid, v)
	}
	if t != c.typ {
		plan := e.types.PlanEncode(c.oid, pgtype.BinaryFormatCode, v)
		if plan == nil {
			return e.appendPlanned(buf, c.oid, v)
		}
		c.typ, c.plan = t, plan
	}
	start := len(buf)
	buf = appendInt32(buf, -1)
	out, err := c.plan.Encode(v, buf)
	if err != nil {
		return e.appendPlanned(buf[:start], c.oid, v)
	}
	return finishField(buf, out, start), nil
}

// appendPlanned encodes v the way pgx's COPY does for a value whose plan is
// not remembered: pgx's own Encode, and if that refuses v, v's text parsed
// by the column's type and encoded from that.
func (e *Encoder) appendPlanned(buf []byte, oid uint32, v any) ([]byte, error) {
	start := len(buf)
	buf = appendInt32(buf, -1)
	out, err := e.types.Encode(oid, pgtype.BinaryFormatCode, v, buf)
	if err != nil {
		var viaText error
		if out, viaText = e.encodeFromText(buf, oid, v); viaText != nil {
			return nil, errors.Join(err, viaText)
		}
	}
	return finishField(buf, out, start), nil
}

// encodeFromText parses v's text form, or v itself if it is a string, as a
// value of the type oid, and appends its binary encoding.
func (e *Encoder) encodeFromText(buf []byte, oid uint32, v any) ([]byte, error) {
	text, ok := v.(string)
	if !ok {
		b, err := e.types.Encode(oid, pgtype.TextFormatCode, v, nil)
		if err != nil {
			return nil, fmt.Errorf("no text form for %T: %w", v, err)
		}
		text = string(b)
	}
	var parsed any
	if typ, ok := e.types.TypeForOID(oid); ok {
		if _, isArray := typ.Codec.(*pgtype.ArrayCodec); isArray {
			// An array keeps its dimensions only when scanned into one.
			var arr pgtype.Array[any]
			if err := e.types.Scan(oid, pgtype.TextFormatCode, []byte(text), &arr); err == nil {
				return e.types.Encode(oid, pgtype.BinaryFormatCode, arr, buf)
			}
		}
	}
	if err := e.types.Scan(oid, pgtype.TextFormatCode, []byte(text), &parsed); err != nil {
		return nil, err
	}
	return e.types.Encode(oid, pgtype.BinaryFormatCode, parsed, buf)
}

// finishField completes the field that starts at start. buf ends with its
// length word, -1; out is what the plan appended to buf. A nil out is pgx's
// way of saying NULL, and the -1 then stays; otherwise the length is set.
func finishField(buf, out []byte, start int) []byte {
	if out == nil {
		return buf
	}
	n := len(out) - start - 4
	out[start], out[start+1], out[start+2], out[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return out
}

func mayBeNil(k reflect.Kind) bool {
	switch k {
	case reflect.Chan, reflect.Func, reflect.Map, reflect.Pointer, reflect.UnsafePointer, reflect.Interface, reflect.Slice:
		return true
	}
	return false
}

func appendInt16(b []byte, n int16) []byte { return append(b, byte(n>>8), byte(n)) }
func appendInt32(b []byte, n int32) []byte {
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// reader streams rows as a binary COPY, encoding them as they are read, a
// chunk at a time. It is read by pgconn's copy goroutine, which CopyFrom
// does not always wait for (not when the connection fails): the encoding
// error is therefore kept under a lock for Copy to read.
type reader struct {
	enc  *Encoder
	rows [][]any
	next int // the first row not yet encoded
	buf  []byte
	off  int // what of buf was read
	done bool

	mu  sync.Mutex
	err error
}

// failure is the encoding error that ended the stream, if any.
func (r *reader) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// chunkBytes is how much a reader encodes ahead of what was read: about
// pgconn's message buffer.
const chunkBytes = 64 << 10

func newReader(enc *Encoder, rows [][]any) *reader {
	return &reader{enc: enc, rows: rows, buf: AppendHeader(make([]byte, 0, chunkBytes+4<<10))}
}

func (r *reader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if err := r.failure(); err != nil {
			return 0, err
		}
		if r.done {
			return 0, io.EOF
		}
		r.fill()
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// fill encodes rows into the emptied buffer until it holds a chunk, and
// the trailer after the last row.
func (r *reader) fill() {
	buf := r.buf[:0]
	r.off = 0
	for len(buf) < chunkBytes && r.next < len(r.rows) {
		out, err := r.enc.AppendRow(buf, r.next, r.rows[r.next])
		if err != nil {
			r.buf = buf
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			return
		}
		buf = out
		r.next++
	}
	if r.next == len(r.rows) {
		buf = AppendTrailer(buf)
		r.done = true
	}
	r.buf = buf
}
