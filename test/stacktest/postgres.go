package stacktest

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// WithDatabase returns the URL connURL with its database replaced by db.
func WithDatabase(connURL, db string) (string, error) {
	u, err := url.Parse(connURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("stacktest: %q is not a postgres:// URL", redactURL(connURL))
	}
	u.Path = "/" + db
	return u.String(), nil
}

// CreateDatabase creates database name owned by role owner.
func CreateDatabase(ctx context.Context, adminURL, name, owner string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("stacktest: connect as admin: %w", err)
	}
	defer conn.Close(ctx)
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " OWNER " + pgx.Identifier{owner}.Sanitize()
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("stacktest: create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name with the replication slots that live in
// it (a slot pins WAL for ever and would block DROP DATABASE).
func DropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("stacktest: connect as admin: %w", err)
	}
	defer conn.Close(ctx)
	// A walsender may still hold the slot for a moment after its connector
	// was deleted: end it first.
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
		WHERE database = $1 AND active_pid IS NOT NULL`, name); err != nil {
		return fmt.Errorf("stacktest: end walsenders of %s: %w", name, err)
	}
	if err := dropSlots(ctx, conn, name); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("stacktest: drop database %s: %w", name, err)
	}
	return nil
}

// dropSlots retries for a few seconds, because a terminated walsender releases
// its slot asynchronously.
func dropSlots(ctx context.Context, conn *pgx.Conn, db string) error {
	var lastErr error
	for range 40 {
		_, lastErr = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
			WHERE database = $1 AND active_pid IS NULL`, db)
		var left int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = $1`, db).Scan(&left); err != nil {
			return fmt.Errorf("stacktest: count slots of %s: %w", db, err)
		}
		if left == 0 {
			return nil
		}
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
			WHERE database = $1 AND active_pid IS NOT NULL`, db); err != nil {
			return fmt.Errorf("stacktest: end walsenders of %s: %w", db, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("stacktest: replication slots of %s still present (last error: %v)", db, lastErr)
}
