//go:build integration

package debezium

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/sink/pgcopy"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationRoundTrip binds every decoded all_types after image to a
// real PostgreSQL table of the same column types, through the extended
// protocol and through CopyFrom (binary COPY), reads the row back with
// row_to_json and compares it with the row_to_json recorded at the source.
// A value may differ only where Debezium itself lost information (the golden
// test names those), and then the stored value must still equal the decoded
// one.
func TestIntegrationRoundTrip(t *testing.T) {
	env, err := stacktest.LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := url.Parse(env.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	db := stacktest.NewID(t.Name())
	if err := stacktest.CreateDatabase(ctx, env.AdminURL, db, admin.User.Username()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stacktest.DropDatabase(context.Background(), env.AdminURL, db); err != nil {
			t.Error(err)
		}
	})
	dbURL, err := stacktest.WithDatabase(env.AdminURL, db)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// timetz and money have no pgx codec: CopyFrom needs the decoder's.
	pgcopy.RegisterTypes(conn.TypeMap(), 2)

	fixtures := loadFixtures(t)
	cols := fixtures[0].catalog["public.all_types"]
	var defs []string
	types := map[string]string{}
	for _, c := range cols {
		defs = append(defs, pgx.Identifier{c.Name}.Sanitize()+" "+c.Type)
		types[c.Name] = c.Type
	}
	for _, sql := range []string{
		`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
		`CREATE TABLE via_insert (` + strings.Join(defs, ", ") + `)`,
		`CREATE TABLE via_copy (` + strings.Join(defs, ", ") + `)`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			// column is the test tables' column of a decoded field: Avro
			// fixtures carry the names Avro allows ("Order Id" arrives as
			// "Order_Id"), the tables keep the source's.
			column := func(name string) string { return name }
			if f.avro() {
				byAvroName := map[string]string{}
				for _, c := range cols {
					byAvroName[avroName(c.Name)] = c.Name
				}
				column = func(name string) string {
					if n, ok := byAvroName[name]; ok {
						return n
					}
					return name
				}
			}
			d := NewDecoder(f.options())
			rows := map[string][]auditRow{} // inserted/updated images by txid
			for _, r := range f.rows {
				if r.Table == "all_types" && r.New != nil {
					rows[fmt.Sprint(r.TxID)] = append(rows[fmt.Sprint(r.TxID)], r)
					if r.Op == "INSERT" {
						rows["snapshot"] = append(rows["snapshot"], r)
					}
				}
			}
			var checked int
			for _, rec := range f.records {
				ch, err := d.Decode(toRecord(rec))
				if err != nil {
					t.Fatalf("%s@%d: %v", rec.Topic, rec.Offset, err)
				}
				if ch.Kind != KindChange || ch.Table != "all_types" || ch.After == nil {
					continue
				}
				tx := fmt.Sprint(ch.TxID)
				if ch.Op == OpRead {
					tx = "snapshot" // the snapshot's txId is not the inserting one
				}
				want := findImage(rows, tx, ch.After)
				if want == nil {
					t.Fatalf("%s@%d: no recorded image for id %v in txid %d", rec.Topic, rec.Offset, first(ch.After), ch.TxID)
				}
				var names []string
				var values []any
				for _, fld := range ch.After {
					if fld.Unchanged {
						continue // never written (I7); the test has no old row to keep
					}
					names = append(names, column(fld.Name))
					values = append(values, fld.Value)
				}
				for _, table := range []string{"via_insert", "via_copy"} {
					if _, err := conn.Exec(ctx, "TRUNCATE "+table); err != nil {
						t.Fatal(err)
					}
					if table == "via_insert" {
						var ph []string
						quoted := make([]string, len(names))
						for i, n := range names {
							ph = append(ph, fmt.Sprintf("$%d", i+1))
							quoted[i] = pgx.Identifier{n}.Sanitize()
						}
						sql := "INSERT INTO via_insert (" + strings.Join(quoted, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ")"
						if _, err := conn.Exec(ctx, sql, values...); err != nil {
							t.Errorf("%s@%d: extended protocol: %v", rec.Topic, rec.Offset, err)
							continue
						}
					} else if _, err := conn.CopyFrom(ctx, pgx.Identifier{"via_copy"}, names, pgx.CopyFromRows([][]any{values})); err != nil {
						t.Errorf("%s@%d: CopyFrom: %v", rec.Topic, rec.Offset, err)
						continue
					}
					var text []byte
					if err := conn.QueryRow(ctx, "SELECT row_to_json(t) FROM "+table+" t").Scan(&text); err != nil {
						t.Fatal(err)
					}
					var stored map[string]json.RawMessage
					if err := json.Unmarshal(text, &stored); err != nil {
						t.Fatal(err)
					}
					for _, fld := range ch.After {
						if fld.Unchanged {
							continue
						}
						checkStored(t, fmt.Sprintf("%s@%d %s.%s", rec.Topic, rec.Offset, table, fld.Name), types[column(fld.Name)], f.setting("decimal.handling.mode"), fld.Value, stored[column(fld.Name)], want[fld.Name])
						checked++
					}
				}
			}
			if checked == 0 {
				t.Fatal("no value was round-tripped")
			}
			t.Logf("%d values stored and read back", checked)
		})
	}
}

// checkStored compares what PostgreSQL stored for a decoded value with what
// the source row held.
func checkStored(t *testing.T, where, pgType, mode string, decoded any, stored, source json.RawMessage) {
	t.Helper()
	if sameJSON(stored, source) {
		return
	}
	// Different from the source: only a documented Debezium loss may explain
	// it, and the stored value must then be exactly the decoded one.
	loss, err := equalPG(pgType, mode, decoded, source)
	if string(source) == `"NaN"` && decoded == nil {
		loss, err = "NaN arrives as null", nil
	}
	if err != nil || loss == "" {
		t.Errorf("%s (%s): stored %s, source had %s (decoded %#v)", where, pgType, stored, source, decoded)
		return
	}
	if decoded == nil {
		if string(stored) != "null" {
			t.Errorf("%s (%s): stored %s for a NULL", where, pgType, stored)
		}
		return
	}
	if _, err := equalPG(pgType, mode, decoded, stored); err != nil {
		t.Errorf("%s (%s): stored %s is not the decoded value: %v", where, pgType, stored, err)
	}
}

func sameJSON(a, b json.RawMessage) bool {
	var av, bv any
	if json.Unmarshal(a, &av) != nil || json.Unmarshal(b, &bv) != nil {
		return false
	}
	return reflect.DeepEqual(av, bv)
}

// findImage takes the first recorded new image of transaction tx with
// after's id: a transaction may change one row twice, in event order.
func findImage(rows map[string][]auditRow, tx string, after Row) map[string]json.RawMessage {
	id := fmt.Sprint(first(after))
	for i, r := range rows[tx] {
		if string(r.New["id"]) == id {
			rows[tx] = append(rows[tx][:i:i], rows[tx][i+1:]...)
			return r.New
		}
	}
	return nil
}

func first(r Row) any {
	if f, ok := r.Get("id"); ok {
		return f.Value
	}
	return nil
}
