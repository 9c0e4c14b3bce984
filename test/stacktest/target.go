package stacktest

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TargetDatabase creates a fresh database owned by the superuser, runs setup
// in it as the superuser, drops it at cleanup, and returns its URL for the
// pgsink role (PGSINK_TARGET_URL with the database replaced). The role can
// do there exactly what setup grants it, which is what catalog and
// privilege tests need. It fails tb (never skips) when the stack is down.
func TargetDatabase(tb testing.TB, setup ...string) string {
	tb.Helper()
	env, db := freshDatabase(tb, func(e Env) string { return e.AdminURL })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adminURL, err := WithDatabase(env.AdminURL, db)
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		tb.Fatalf("stacktest: connect as admin to %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	for _, sql := range setup {
		if _, err := conn.Exec(ctx, sql); err != nil {
			tb.Fatalf("stacktest: setup of %s: %v\nSQL: %s", db, err, sql)
		}
	}
	targetURL, err := WithDatabase(env.TargetURL, db)
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	return targetURL
}

// OwnedTargetDatabase creates a fresh database owned by the pgsink role, so
// the role may create its schema and tables there, as in a deployment where
// pgsink owns its target; it returns the role's URL and drops the database
// at cleanup.
func OwnedTargetDatabase(tb testing.TB) string {
	tb.Helper()
	env, db := freshDatabase(tb, func(e Env) string { return e.TargetURL })
	targetURL, err := WithDatabase(env.TargetURL, db)
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	return targetURL
}

// freshDatabase creates a database owned by the user of the URL ownerURL
// picks, registers its drop at cleanup, and returns its name.
func freshDatabase(tb testing.TB, ownerURL func(Env) string) (Env, string) {
	tb.Helper()
	env, err := LoadEnv()
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.CheckPostgres(ctx); err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	owner, err := url.Parse(ownerURL(env))
	if err != nil {
		tb.Fatalf("stacktest: owner URL: %v", err)
	}
	db := NewID(tb.Name())
	if err := CreateDatabase(ctx, env.AdminURL, db, owner.User.Username()); err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := DropDatabase(ctx, env.AdminURL, db); err != nil {
			tb.Errorf("stacktest: %v", err)
		}
	})
	return env, db
}
