package sink

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
)

// The statements of tables filled beside a target (connector.Fill): a
// point-in-time copy and the shadow of an online rebuild. Every name is
// quoted by pgx's sanitizer (I8); the golden files in testdata/sql hold
// them built from hostile names.

// ident quotes a table name.
func ident(t config.TableName) string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

// createLikeStatement creates into with from's definition: columns,
// defaults, NOT NULL and CHECK constraints, indexes (the primary key among
// them), identity, generated columns, storage, statistics and comments.
// Not copied by LIKE: foreign keys, triggers, grants, ownership, policies.
func createLikeStatement(into, from config.TableName) string {
	return "CREATE TABLE " + ident(into) + " (LIKE " + ident(from) + " INCLUDING ALL)"
}

// CreateLike creates into with from's definition (see createLikeStatement).
func CreateLike(ctx context.Context, db Execer, into, from config.TableName) error {
	if _, err := db.Exec(ctx, createLikeStatement(into, from)); err != nil {
		return fmt.Errorf("create %s like %s: %w", into, from, err)
	}
	return nil
}

// swapStatements lock live and replace it by shadow (both in one schema):
// live is renamed to old and shadow takes live's name. Readers queued on
// live's lock look its name up again once the lock is theirs, so they read
// the new table, whole.
func swapStatements(live, shadow, old config.TableName) []string {
	return []string{
		"LOCK TABLE " + ident(live) + " IN ACCESS EXCLUSIVE MODE",
		"ALTER TABLE " + ident(live) + " RENAME TO " + pgx.Identifier{old.Name}.Sanitize(),
		"ALTER TABLE " + ident(shadow) + " RENAME TO " + pgx.Identifier{live.Name}.Sanitize(),
	}
}

// Swap replaces live by shadow inside tx (swapStatements); live is then
// named old, the shadow gets live's table grants (grantStatements), and its
// indexes (and the constraints they back) take the names of live's
// (swapIndexNames). The caller commits, with the
// ledgers and offsets moved in the same transaction.
func Swap(ctx context.Context, tx Execer, live, shadow, old config.TableName) error {
	if live.Schema != shadow.Schema || live.Schema != old.Schema {
		return fmt.Errorf("swap %s with %s: a shadow must be in its table's schema", live, shadow)
	}
	statements := swapStatements(live, shadow, old)
	if _, err := tx.Exec(ctx, statements[0]); err != nil { // the lock
		return fmt.Errorf("swap %s with %s: %w", live, shadow, err)
	}
	var liveNames, shadowNames []string
	var oids []uint32
	if err := tx.QueryRow(ctx, indexPairsQuery, ident(live), ident(shadow)).Scan(&liveNames, &shadowNames, &oids); err != nil {
		return fmt.Errorf("swap %s with %s: match their indexes: %w", live, shadow, err)
	}
	statements = append(statements, swapIndexNames(live.Schema, liveNames, shadowNames, oids)...)
	var grantees, privileges []string
	var grantable []bool
	if err := tx.QueryRow(ctx, grantsQuery, ident(live)).Scan(&grantees, &privileges, &grantable); err != nil {
		return fmt.Errorf("swap %s with %s: read its grants: %w", live, shadow, err)
	}
	grants, err := grantStatements(shadow, grantees, privileges, grantable)
	if err != nil {
		return fmt.Errorf("swap %s with %s: %w", live, shadow, err)
	}
	// Before the renames, while the shadow has its own name.
	statements = append(statements[:1], append(grants, statements[1:]...)...)
	for _, sql := range statements[1:] {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("swap %s with %s: %w", live, shadow, err)
		}
	}
	return nil
}

// indexPairsQuery pairs each index of the live table ($1) with the one of
// the shadow ($2) that LIKE … INCLUDING ALL made from it: the same
// definition after the index and table names, the same uniqueness. An
// index with no single twin keeps its name.
const indexPairsQuery = `WITH l AS (
    SELECT i.indexrelid AS oid, c.relname, i.indisprimary, i.indisunique,
           regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? USING ', '') AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass
), s AS (
    SELECT c.relname, i.indisprimary, i.indisunique,
           regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? USING ', '') AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $2::regclass
), pairs AS (
    SELECT l.oid, l.relname AS live, s.relname AS shadow,
           count(*) OVER (PARTITION BY l.oid) AS twins, count(*) OVER (PARTITION BY s.relname) AS twins_back
      FROM l JOIN s USING (def, indisprimary, indisunique)
)
SELECT coalesce(array_agg(live), '{}'), coalesce(array_agg(shadow), '{}'), coalesce(array_agg(oid), '{}')
  FROM pairs WHERE twins = 1 AND twins_back = 1`

// swapIndexNames renames, after the tables' swap, each index of the
// replaced table to a name of its own (pgsink_old_<oid>, unique: an oid is)
// and its shadow twin to the name it had.
func swapIndexNames(schema string, live, shadow []string, oids []uint32) []string {
	var out []string
	for i := range live {
		out = append(out,
			"ALTER INDEX "+pgx.Identifier{schema, live[i]}.Sanitize()+" RENAME TO "+pgx.Identifier{fmt.Sprintf("pgsink_old_%d", oids[i])}.Sanitize(),
			"ALTER INDEX "+pgx.Identifier{schema, shadow[i]}.Sanitize()+" RENAME TO "+pgx.Identifier{live[i]}.Sanitize())
	}
	return out
}

// dropStatement drops a table filled beside a target: a rebuild's
// replaced table, or a shadow abandoned to start again.
func dropStatement(t config.TableName) string { return "DROP TABLE IF EXISTS " + ident(t) }

// Drop drops t if it exists (dropStatement).
func Drop(ctx context.Context, db Execer, t config.TableName) error {
	if _, err := db.Exec(ctx, dropStatement(t)); err != nil {
		return fmt.Errorf("drop %s: %w", t, err)
	}
	return nil
}

// swappableQuery reads what a swap by rename would lose or break about the
// table $1: whether this role may rename it (owns it), and the objects
// LIKE … INCLUDING ALL does not copy or that refer to the table by oid and
// would follow the replaced one: views and rules, foreign keys either way,
// triggers, row-level security, column grants, partitioning and
// inheritance. Table grants are copied (grantStatements).
const swappableQuery = `SELECT c.relkind::text,
       pg_has_role(c.relowner, 'USAGE'),
       array(SELECT DISTINCT 'view or rule ' || r.ev_class::regclass::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
              WHERE d.refobjid = c.oid AND d.classid = 'pg_rewrite'::regclass AND r.ev_class <> c.oid)
    || array(SELECT 'foreign key ' || conname || ' of ' || conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND (confrelid = c.oid OR conrelid = c.oid))
    || array(SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal)
    || array(SELECT 'row-level security' WHERE c.relrowsecurity)
    || array(SELECT 'column grants on ' || attname FROM pg_attribute WHERE attrelid = c.oid AND attacl IS NOT NULL)
    || array(SELECT 'inheritance with ' || inhrelid::regclass::text FROM pg_inherits WHERE inhparent = c.oid OR inhrelid = c.oid)
  FROM pg_class c WHERE c.oid = $1::regclass`

// SwapBlockedError says why a table cannot be rebuilt by a swap: what a
// rename would lose or leave pointing at the replaced table.
type SwapBlockedError struct {
	Table   config.TableName
	Reasons []string
}

func (e *SwapBlockedError) Error() string {
	return fmt.Sprintf("%s cannot be swapped for a rebuilt copy: %s", e.Table, strings.Join(e.Reasons, "; "))
}

// CheckSwappable returns a *SwapBlockedError when live cannot be replaced
// by a shadow without loss (swappableQuery).
func CheckSwappable(ctx context.Context, db Execer, live config.TableName) error {
	var kind string
	var owner bool
	var found []string
	if err := db.QueryRow(ctx, swappableQuery, ident(live)).Scan(&kind, &owner, &found); err != nil {
		return fmt.Errorf("read %s from the catalog: %w", live, err)
	}
	var reasons []string
	if kind != "r" {
		reasons = append(reasons, "it is not a plain table (relkind "+kind+")")
	}
	if !owner {
		reasons = append(reasons, "pgsink's role does not own it, and only an owner may rename it")
	}
	for _, f := range found {
		reasons = append(reasons, f+" would not follow")
	}
	if len(reasons) > 0 {
		return &SwapBlockedError{Table: live, Reasons: reasons}
	}
	return nil
}

// grantsQuery lists the table grants of $1 to roles other than its owner
// (whose rights are its own), as (grantee, privilege, grantable); grantee
// "" is PUBLIC.
const grantsQuery = `SELECT coalesce(array_agg(coalesce(r.rolname, '')), '{}'), coalesce(array_agg(a.privilege_type), '{}'), coalesce(array_agg(a.is_grantable), '{}')
  FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE c.oid = $1::regclass AND a.grantee <> c.relowner`

// tablePrivileges are the privileges a table grant may name.
var tablePrivileges = map[string]bool{"SELECT": true, "INSERT": true, "UPDATE": true, "DELETE": true,
	"TRUNCATE": true, "REFERENCES": true, "TRIGGER": true, "MAINTAIN": true}

// grantStatements gives shadow the grants live has (grantsQuery's rows).
func grantStatements(shadow config.TableName, grantees, privileges []string, grantable []bool) ([]string, error) {
	out := make([]string, 0, len(grantees))
	for i, g := range grantees {
		if !tablePrivileges[privileges[i]] {
			return nil, fmt.Errorf("grant of %q on the table: not a table privilege pgsink knows", privileges[i])
		}
		to := "PUBLIC"
		if g != "" {
			to = pgx.Identifier{g}.Sanitize()
		}
		sql := "GRANT " + privileges[i] + " ON " + ident(shadow) + " TO " + to
		if grantable[i] {
			sql += " WITH GRANT OPTION"
		}
		out = append(out, sql)
	}
	return out, nil
}
