//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
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
	dead := dedup.NewDeadLetters("pgsink")
	for _, l := range []dedup.DeadLetter{
		{Group: "g", Topic: "app.public.t", Partition: 2, Offset: 41, Target: "public.t", Key: []byte(`{"id":7}`), Value: []byte("\x00binary\x1b[31m"),
			Headers: []dedup.Header{{Key: "origin", Value: "x"}}, Error: `new row violates check constraint "t_status_check"`, Class: "postgres:23514"},
		{Group: "g", Topic: "app.public.u", Partition: 0, Offset: 3, Target: "public.u", Error: "other table", Class: "apply"},
		{Group: "other group", Topic: "app.public.t", Partition: 0, Offset: 1, Error: "not ours", Class: "decode"},
		{Group: dedup.FillGroup("g", "public.t_copy"), Topic: "app.public.t", Partition: 1, Offset: 9, Target: "public.t_copy", Error: "fill's own", Class: "apply"},
		{Group: dedup.FillGroup("other group", "public.t_copy"), Topic: "app.public.t", Partition: 1, Offset: 8, Target: "public.t_copy", Error: "another group's fill", Class: "apply"},
	} {
		sql, args := dead.Insert(l)
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	listed, err := dead.List(ctx, conn, dedup.DeadLetterFilter{Group: "g", Topic: "app.public.t", Limit: 1})
	if err != nil || len(listed) != 1 {
		t.Fatalf("the dead letter just written: %v, %v", listed, err)
	}
	id := strconv.FormatInt(listed[0].ID, 10)
	t.Setenv("PGSINK_TEST_DB_URL", url)
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(path, []byte("kafka:\n  bootstrap.servers: 127.0.0.1:1\n  group.id: g\npostgres:\n  url: ${PGSINK_TEST_DB_URL}\ntables:\n  - topic: app.public.t\n    target: public.t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"dlq", "list", "--config", path}, &out, &errOut); code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "app.public.t[2]@41") || !strings.Contains(out.String(), "app.public.u[0]@3") || strings.Contains(out.String(), "not ours") ||
		strings.Contains(out.String(), "another group's fill") {
		t.Fatalf("dlq list shows:\n%s\nwant this group's records only", out.String())
	}
	// A fill's dead letter is listed with its group's, marked: it is a
	// record missing from the fill's table, which must not go unseen.
	if !strings.Contains(out.String(), "app.public.t[1]@9") || !strings.Contains(out.String(), "public.t_copy (fill)") {
		t.Fatalf("dlq list shows:\n%s\nwant the fill's dead letter, marked", out.String())
	}
	fills, err := dead.List(ctx, conn, dedup.DeadLetterFilter{Group: "g", Fills: true, Target: "public.t_copy", Limit: 10})
	if err != nil || len(fills) != 1 || fills[0].Group != dedup.FillGroup("g", "public.t_copy") {
		t.Fatalf("the fill's dead letters: %+v, %v; want one, with the fill's group", fills, err)
	}
	// retry applies through the configured routes, which do not lead to a
	// fill's table: it refuses, says why, and leaves the dead letter.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"dlq", "retry", "--config", path, strconv.FormatInt(fills[0].ID, 10)}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "not retried: written by the fill into public.t_copy") {
		t.Fatalf("dlq retry of a fill's dead letter: exit %d:\n%s%s\nwant a refusal naming the fill", code, out.String(), errOut.String())
	}
	if again, err := dead.List(ctx, conn, dedup.DeadLetterFilter{Group: "g", Fills: true, IDs: []int64{fills[0].ID}}); err != nil || len(again) != 1 {
		t.Fatalf("the refused dead letter: %v, %v; want it kept", again, err)
	}
	for _, filter := range [][]string{{"--table", "public.t"}, {"--topic", "app.public.t"}} {
		out.Reset()
		if code := run(append([]string{"dlq", "list", "--config", path}, filter...), &out, &errOut); code != 0 {
			t.Fatalf("dlq list %v: exit %d: %s", filter, code, errOut.String())
		}
		if !strings.Contains(out.String(), "app.public.t[2]@41") || strings.Contains(out.String(), "app.public.u") {
			t.Fatalf("dlq list %v shows:\n%s\nwant the record of public.t only", filter, out.String())
		}
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
