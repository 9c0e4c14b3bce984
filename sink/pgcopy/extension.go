package pgcopy

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// registerExtensionTypes gives conn's type map the codecs of the extension
// types among oids that it does not know: hstore and hstore[], whose oids
// each database assigns when it creates the extension. Binary COPY needs
// them: without a codec, pgx sends a string as its bytes, which hstore's
// binary input reads as a pair count and refuses (or, for an empty string,
// fails as a protocol violation). With one, the string is parsed as hstore
// text and sent in hstore's binary form.
//
// The type must belong to the hstore extension, not merely be named
// hstore. Oids asked about are remembered per connection, found or not, so
// a table with other extension types costs one query per connection.
func registerExtensionTypes(ctx context.Context, conn *pgx.Conn, oids []uint32) error {
	m := conn.TypeMap()
	asked, _ := conn.PgConn().CustomData()[askedKey].(map[uint32]bool)
	if asked == nil {
		asked = map[uint32]bool{}
		conn.PgConn().CustomData()[askedKey] = asked
	}
	var unknown []uint32
	for _, oid := range oids {
		if _, ok := m.TypeForOID(oid); !ok && !asked[oid] {
			unknown = append(unknown, oid)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	rows, err := conn.Query(ctx, hstoreTypes, unknown)
	if err != nil {
		return fmt.Errorf("read extension types: %w", err)
	}
	var found [][2]uint32
	for rows.Next() {
		var oid, array uint32
		if err := rows.Scan(&oid, &array); err != nil {
			rows.Close()
			return fmt.Errorf("read extension types: %w", err)
		}
		found = append(found, [2]uint32{oid, array})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read extension types: %w", err)
	}
	for _, f := range found {
		hstore := &pgtype.Type{Name: "hstore", OID: f[0], Codec: pgtype.HstoreCodec{}}
		m.RegisterType(hstore)
		m.RegisterType(&pgtype.Type{Name: "_hstore", OID: f[1], Codec: &pgtype.ArrayCodec{ElementType: hstore}})
	}
	for _, oid := range unknown {
		asked[oid] = true
	}
	return nil
}

const askedKey = "pgcopy extension oids asked"

// hstoreTypes finds, among the oids $1, the hstore extension's type or its
// array type.
const hstoreTypes = `SELECT t.oid, t.typarray
  FROM pg_catalog.pg_type t
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid = t.oid AND d.deptype = 'e'
  JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid AND x.extname = 'hstore'
 WHERE t.typname = 'hstore' AND (t.oid = ANY($1) OR t.typarray = ANY($1))`
