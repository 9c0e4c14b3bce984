package dedup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Tables are pgsink's own tables in its schema, those a running instance
// reads and writes.
var Tables = []string{"offsets", "tombstones", "moved_rows", "outbox_events", "dead_letters", "snapshots", "tx_staged", "tx_resolved", "tx_schemas", "consistency_modes", "tx_frontier", "tx_resolver_waits",
	"tx_staging_generation", "tx_staging_marker", "tx_staging_partitions"}

// LatestVersion is the newest embedded migration: the version this pgsink
// needs its tables at.
func LatestVersion() uint {
	entries, _ := fs.ReadDir(migrationFiles, "migrations")
	var latest uint
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseUint(prefix, 10, 32); err == nil && uint(v) > latest {
			latest = uint(v)
		}
	}
	return latest
}

// AccessProblems says what stops the connection's role from running pgsink
// against schema: with migrate, from migrating its tables at start as
// `pgsink run` does; without (run --no-migrate), from using tables an owner
// migrated. Each problem is one sentence with the fix. It changes nothing.
func AccessProblems(ctx context.Context, db DB, schema string, migrate bool) ([]string, error) {
	st, err := readAccess(ctx, db, schema)
	if err != nil {
		return nil, err
	}
	quoted := pgx.Identifier{schema}.Sanitize()
	latest := LatestVersion()
	if !st.exists {
		if !migrate {
			return []string{st.schemaMissing()}, nil
		}
		if !st.createDB {
			return []string{fmt.Sprintf("role %q lacks CREATE on database %q, needed to create schema %s at start: create the schema for it, or run pgsink migrate up as another role and pgsink run --no-migrate", st.role, st.database, quoted)}, nil
		}
		return nil, nil
	}
	if !st.usage {
		return []string{st.noUsage()}, nil
	}
	if !st.readable {
		return []string{st.unreadable()}, nil
	}
	version := st.version
	var problems []string
	switch {
	case st.dirty, version > latest, version < latest && !migrate:
		problems = append(problems, st.versionError().Error())
	case version < latest:
		if !st.createSchema {
			problems = append(problems, fmt.Sprintf("role %q lacks CREATE on schema %s, needed to migrate pgsink's tables at start from version %d to %d", st.role, quoted, version, latest))
		}
		notOwned, err := tablesNotOwned(ctx, db, schema)
		if err != nil {
			return nil, err
		}
		for _, t := range notOwned {
			problems = append(problems, fmt.Sprintf("role %q does not own %s.%s, which the migrations from version %d to %d alter: run pgsink migrate up as its owner, then pgsink run --no-migrate", st.role, quoted, pgx.Identifier{t}.Sanitize(), version, latest))
		}
	}
	if version < latest {
		return problems, nil // the tables are not all there yet to check
	}
	missing, err := tablePrivileges(ctx, db, schema)
	if err != nil {
		return nil, err
	}
	for _, m := range missing {
		problems = append(problems, fmt.Sprintf("role %q lacks %s", st.role, m))
	}
	return problems, nil
}

// CheckVersion refuses, with the fix in its message, pgsink's tables in
// schema that this pgsink cannot run on without migrating them: the schema
// missing, its version unreadable by the role, or its version not
// LatestVersion or dirty (a *VersionError). It changes nothing. A start
// that leaves the migrations to an owner (run --no-migrate) calls it
// first, so that it stops there, naming both versions, rather than later
// on a table or column it does not find, or, on tables a newer pgsink
// migrated, by writing them as the older one did.
func CheckVersion(ctx context.Context, db DB, schema string) error {
	st, err := readAccess(ctx, db, schema)
	if err != nil {
		return err
	}
	switch {
	case !st.exists:
		return errors.New(st.schemaMissing())
	case !st.usage:
		return errors.New(st.noUsage())
	case !st.readable:
		return errors.New(st.unreadable())
	case st.dirty || st.version != LatestVersion():
		return st.versionError()
	}
	return nil
}

// VersionError is pgsink's tables in Schema at a version this pgsink cannot
// run on: an older one (not migrated yet), a newer one (migrated by a newer
// pgsink), or one whose migration failed half-way or is being applied
// (Dirty).
type VersionError struct {
	Schema string
	// Found is the version the tables are at (0: none applied), Needed
	// this pgsink's (LatestVersion).
	Found, Needed uint
	Dirty         bool
}

func (e *VersionError) Error() string {
	quoted := pgx.Identifier{e.Schema}.Sanitize()
	switch {
	case e.Dirty:
		return fmt.Sprintf("migration %d of pgsink's tables in %s is dirty (being applied at this moment, or failed half-way), and this pgsink needs version %d: if no migration runs, fix what it left by hand, set the version row to the last migration that completed (UPDATE %s.schema_migrations SET version = ..., dirty = false), then run pgsink migrate up", e.Found, quoted, e.Needed, quoted)
	case e.Found > e.Needed:
		return fmt.Sprintf("pgsink's tables in %s are at version %d, newer than this pgsink knows (it needs %d): a newer pgsink migrated them; run that pgsink (every instance of a schema at one version)", quoted, e.Found, e.Needed)
	default:
		return fmt.Sprintf("pgsink's tables in %s are at version %d and this pgsink needs %d: run pgsink migrate up as their owner (or pgsink run without --no-migrate), or run the pgsink that migrated them", quoted, e.Found, e.Needed)
	}
}

// access is what the connection's role finds of pgsink's schema.
type access struct {
	schema, role, database                string
	createDB, exists, usage, createSchema bool
	readable                              bool // the version row, when exists and usage
	version                               uint
	dirty                                 bool
}

func readAccess(ctx context.Context, db DB, schema string) (access, error) {
	st := access{schema: schema}
	err := db.QueryRow(ctx, `SELECT current_user::text, current_database()::text,
		       has_database_privilege(current_database(), 'CREATE'),
		       n.oid IS NOT NULL,
		       coalesce(has_schema_privilege(n.oid, 'USAGE'), false),
		       coalesce(has_schema_privilege(n.oid, 'CREATE'), false)
		  FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1`, schema).
		Scan(&st.role, &st.database, &st.createDB, &st.exists, &st.usage, &st.createSchema)
	if err != nil {
		return st, fmt.Errorf("dedup: read the privileges of the current role: %w", err)
	}
	if st.exists && st.usage {
		st.version, st.dirty, st.readable, err = storedVersion(ctx, db, schema)
	}
	return st, err
}

func (st access) schemaMissing() string {
	return fmt.Sprintf("schema %s does not exist: run pgsink migrate up as a role that may create it, before pgsink run --no-migrate", pgx.Identifier{st.schema}.Sanitize())
}

func (st access) noUsage() string {
	return fmt.Sprintf("role %q lacks USAGE on schema %s", st.role, pgx.Identifier{st.schema}.Sanitize())
}

func (st access) unreadable() string {
	return fmt.Sprintf("role %q lacks SELECT on %s.schema_migrations, so the version of pgsink's tables cannot be checked: grant it (the role recipe in docs/operations.md does)", st.role, pgx.Identifier{st.schema}.Sanitize())
}

func (st access) versionError() *VersionError {
	return &VersionError{Schema: st.schema, Found: st.version, Needed: LatestVersion(), Dirty: st.dirty}
}

// storedVersion reads golang-migrate's version row; 0 when none. readable
// is false when the role may not read it.
func storedVersion(ctx context.Context, db DB, schema string) (version uint, dirty, readable bool, err error) {
	var exists, mayRead bool
	if err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, coalesce(has_table_privilege(to_regclass($1), 'SELECT'), false)`,
		pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&exists, &mayRead); err != nil {
		return 0, false, false, fmt.Errorf("dedup: look for schema_migrations: %w", err)
	}
	if !exists {
		return 0, false, true, nil
	}
	if !mayRead {
		return 0, false, false, nil
	}
	var stored int64
	err = db.QueryRow(ctx, `SELECT version, dirty FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+` LIMIT 1`).Scan(&stored, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, true, nil
	}
	if err != nil {
		return 0, false, true, fmt.Errorf("dedup: read the migration version: %w", err)
	}
	return uint(stored), dirty, true, nil
}

// tablesNotOwned lists pgsink's existing tables the role is not a member
// of the owner of: a migration that alters them fails.
func tablesNotOwned(ctx context.Context, db DB, schema string) ([]string, error) {
	var names []string
	err := db.QueryRow(ctx, `SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}')
		  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = $1 AND c.relname = ANY($2) AND NOT pg_has_role(c.relowner, 'USAGE')`, schema, Tables).Scan(&names)
	if err != nil {
		return nil, fmt.Errorf("dedup: read the owners of pgsink's tables: %w", err)
	}
	return names, nil
}

// tablePrivileges lists, as "PRIVILEGE on schema.table", what a running
// instance needs on pgsink's tables and the role lacks.
func tablePrivileges(ctx context.Context, db DB, schema string) ([]string, error) {
	var missing []string
	err := db.QueryRow(ctx, `SELECT coalesce(array_agg(p.priv || ' on ' || quote_ident($1) || '.' || quote_ident(t.name) ORDER BY t.name, p.priv), '{}')
		  FROM unnest($2::text[]) AS t(name)
		 CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(priv)
		 WHERE to_regclass(quote_ident($1) || '.' || quote_ident(t.name)) IS NULL
		    OR NOT has_table_privilege(to_regclass(quote_ident($1) || '.' || quote_ident(t.name)), p.priv)`, schema, Tables).Scan(&missing)
	if err != nil {
		return nil, fmt.Errorf("dedup: read the privileges on pgsink's tables: %w", err)
	}
	return missing, nil
}
