//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
)

func TestIntegrationDLQCommands(t *testing.T) {
	ctx := context.Background()
	url := stacktest.OwnedTargetDatabase(t)
	if err := dedup.NewMigrator(url, "pgsink").Up(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var id string
	if err := conn.QueryRow(ctx, `INSERT INTO pgsink.dead_letters (group_id, topic, partition, "offset", target, key, value, headers, error, error_class)
		VALUES ('g', 'app.public.t', 2, 41, 'public.t', '{"id":7}', $1, '[{"key":"origin","value":"x"}]', 'new row violates check constraint "t_status_check"', 'postgres:23514')
		RETURNING id::text`, []byte("\x00binary\x1b[31m")).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO pgsink.dead_letters (group_id, topic, partition, "offset", error, error_class)
		VALUES ('other group', 'app.public.t', 0, 1, 'not ours', 'decode')`); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGSINK_TEST_DB_URL", url)
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(path, []byte("kafka:\n  bootstrap.servers: 127.0.0.1:1\n  group.id: g\npostgres:\n  url: ${PGSINK_TEST_DB_URL}\ntables:\n  - topic: app.public.t\n    target: public.t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"dlq", "list", "--config", path}, &out, &errOut); code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "app.public.t[2]@41") || strings.Contains(out.String(), "not ours") {
		t.Fatalf("dlq list shows:\n%s\nwant this group's record only", out.String())
	}
	out.Reset()
	if code := run([]string{"dlq", "show", "--config", path, id}, &out, &errOut); code != 0 {
		t.Fatalf("dlq show: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{`"id": 7`, "t_status_check", "postgres:23514", `"\x00binary\x1b[31m"`, "origin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dlq show lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Error("dlq show wrote a raw escape byte to the terminal")
	}
	if code := run([]string{"dlq", "show", "--config", path, "999999"}, &out, &errOut); code != 1 {
		t.Fatalf("dlq show of a missing ID: exit %d, want 1", code)
	}
}
