//go:build integration

package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2ELeastPrivilege runs the pipeline as a role with only the grants
// docs/operations.md's recipe gives (no ownership, no CREATE anywhere):
// the owner migrates pgsink's tables, validate --no-migrate finds nothing
// missing, and pgsink run --no-migrate applies the changes.
func TestE2ELeastPrivilege(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(`INSERT INTO public.items VALUES (1, 'snapshot row', 1.50, '2026-01-01T00:00:00Z', '{"a": 1}', NULL)`)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	ownerURL, owner := itemsTarget(t)

	role := "pgsink_app_" + strings.ToLower(strings.ReplaceAll(st.ID, "-", "_"))
	admin, err := pgx.Connect(ctx, st.Env.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE ROLE `+pgx.Identifier{role}.Sanitize()+` LOGIN`); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	adminTarget, err := stacktest.WithDatabase(st.Env.AdminURL, strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Roles outlive databases: drop its grants in the target, then it.
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, adminTarget)
		if err == nil {
			_, err = conn.Exec(ctx, `DROP OWNED BY `+pgx.Identifier{role}.Sanitize())
			conn.Close(ctx)
		}
		if err == nil {
			conn, err = pgx.Connect(ctx, st.Env.AdminURL)
			if err == nil {
				_, err = conn.Exec(ctx, `DROP ROLE `+pgx.Identifier{role}.Sanitize())
				conn.Close(ctx)
			}
		}
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	u.User = url.User(role)
	appURL := u.String()

	cfg := itemsConfig(st, st.TopicPrefix+".public.items", quickBatches)
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	pgsink := func(dbURL string, args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "TARGET_URL="+dbURL)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := pgsink(ownerURL, "migrate", "--config", cfgPath, "up"); err != nil {
		t.Fatalf("migrate up as the owner: %v\n%s", err, out)
	}
	if out, _ := pgsink(appURL, "validate", "--config", cfgPath, "--no-migrate"); !strings.Contains(out, "lacks USAGE on schema") {
		t.Fatalf("validate --no-migrate before the grants:\n%s", out)
	}
	quoted := pgx.Identifier{role}.Sanitize()
	for _, grant := range []string{
		`GRANT USAGE ON SCHEMA pgsink TO ` + quoted,
		`GRANT SELECT ON pgsink.schema_migrations TO ` + quoted,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON pgsink.` + strings.Join(dedup.Tables, ", pgsink.") + ` TO ` + quoted,
		`GRANT USAGE ON SCHEMA public TO ` + quoted,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO ` + quoted,
	} {
		if _, err := owner.Exec(ctx, grant); err != nil {
			t.Fatalf("%s: %v", grant, err)
		}
	}
	if out, err := pgsink(appURL, "validate", "--config", cfgPath, "--no-migrate"); err != nil || !strings.Contains(out, ": valid, 1 table(s)") {
		t.Fatalf("validate --no-migrate with the recipe's grants: %v\n%s", err, out)
	}
	p := startPgsinkArgs(t, cfg, []string{"--no-migrate"}, "TARGET_URL="+appURL)
	st.Exec(`INSERT INTO public.items VALUES (2, 'streamed', 2.50, '2026-01-02T00:00:00Z', '{"b": 2}', NULL)`)
	st.Exec(`UPDATE public.items SET name = 'updated' WHERE id = 1`)
	st.Exec(`DELETE FROM public.items WHERE id = 2`)
	st.Exec(`INSERT INTO public.items VALUES (3, 'last', 3.50, '2026-01-03T00:00:00Z', '{}', NULL)`)
	eventually(t, 60*time.Second, "the restricted role applies every change", func() (bool, string) {
		var got string
		if err := owner.QueryRow(ctx, `SELECT coalesce(string_agg(id || ':' || name, ',' ORDER BY id), '') FROM public.items`).Scan(&got); err != nil {
			return false, err.Error()
		}
		return got == "1:updated,3:last", "target " + got
	})
	var superuser bool
	if err := owner.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = $1`, role).Scan(&superuser); err != nil || superuser {
		t.Fatalf("the role is a superuser (%v, %v): the test proves nothing", superuser, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
