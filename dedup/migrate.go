package dedup

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrator applies pgsink's embedded migrations to one schema.
type Migrator struct {
	connString string
	schema     string
}

// NewMigrator returns a Migrator for the schema (postgres.schema) of the
// database at connString.
func NewMigrator(connString, schema string) *Migrator {
	return &Migrator{connString: connString, schema: schema}
}

// open creates the schema if needed and returns a migrate instance whose
// connection has search_path set to it, so the migrations' unqualified names
// land there and golang-migrate keeps its version table beside them.
func (m *Migrator) open(ctx context.Context) (*migrate.Migrate, *sql.DB, error) {
	cfg, err := pgx.ParseConfig(m.connString)
	if err != nil {
		return nil, nil, fmt.Errorf("dedup: parse postgres URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("dedup: connect: %w", err)
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{m.schema}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("dedup: create schema %s: %w", m.schema, err)
	}

	cfg.RuntimeParams["search_path"] = pgx.Identifier{m.schema}.Sanitize()
	db := stdlib.OpenDB(*cfg)
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{SchemaName: m.schema, MigrationsTable: "schema_migrations"})
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("dedup: migration driver: %w", err)
	}
	src, err := iofs.New(migrationFiles, "migrations")
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("dedup: migration files: %w", err)
	}
	mg, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("dedup: migrate: %w", err)
	}
	return mg, db, nil
}

// Up applies every migration not applied yet. It is a no-op when the schema
// is current. Tables a newer pgsink migrated, or a migration that failed
// half-way, it refuses with a *VersionError (golang-migrate's own errors
// for them name no version this pgsink needs, nor a fix). Only the newer
// version is looked at before golang-migrate's lock: a peer migrating at
// this moment leaves the version dirty until it is done, which Up, behind
// the lock, no longer sees.
func (m *Migrator) Up(ctx context.Context) error {
	return m.run(ctx, func(mg *migrate.Migrate) error {
		version, _, err := mg.Version()
		if err != nil && !errors.Is(err, migrate.ErrNilVersion) {
			return err
		}
		if version > LatestVersion() {
			return &VersionError{Schema: m.schema, Found: version, Needed: LatestVersion()}
		}
		err = mg.Up()
		var dirty migrate.ErrDirty
		if errors.As(err, &dirty) {
			return &VersionError{Schema: m.schema, Found: uint(dirty.Version), Needed: LatestVersion(), Dirty: true}
		}
		return err
	})
}

// Down reverts every migration: it drops pgsink's tables, offsets included.
func (m *Migrator) Down(ctx context.Context) error {
	return m.run(ctx, func(mg *migrate.Migrate) error { return mg.Down() })
}

// Version returns the applied migration version; version 0 means none.
// dirty reports a migration that failed half-way and needs an operator.
func (m *Migrator) Version(ctx context.Context) (version uint, dirty bool, err error) {
	err = m.run(ctx, func(mg *migrate.Migrate) error {
		version, dirty, err = mg.Version()
		if errors.Is(err, migrate.ErrNilVersion) {
			version, dirty, err = 0, false, nil
		}
		return err
	})
	return version, dirty, err
}

func (m *Migrator) run(ctx context.Context, step func(*migrate.Migrate) error) error {
	mg, db, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	defer mg.Close()
	if err := step(mg); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("dedup: migrations in schema %s: %w", m.schema, err)
	}
	return nil
}
