package sink

import (
	"context"
	"fmt"

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

// dropStatement drops a table filled beside a target.
func dropStatement(t config.TableName) string { return "DROP TABLE IF EXISTS " + ident(t) }

// Drop drops t if it exists (dropStatement).
func Drop(ctx context.Context, db Execer, t config.TableName) error {
	if _, err := db.Exec(ctx, dropStatement(t)); err != nil {
		return fmt.Errorf("drop %s: %w", t, err)
	}
	return nil
}
