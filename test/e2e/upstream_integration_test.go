//go:build integration

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/docker"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

const pricesDDL = `(id integer PRIMARY KEY, amount numeric(12,2), span interval)`

// setting is how a finding names a value: marked when it is Debezium's
// default rather than the connector's own.
func setting(value string, set bool) string {
	if set {
		return value
	}
	return value + " (Debezium's default)"
}

// validate runs `pgsink validate` on the configuration file and returns its
// exit code, stdout and stderr.
func validate(t *testing.T, path string, env ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, "validate", "--config", path)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestE2ERunChecksDerivedTargets: at run's start, the columns of a target a
// routing template derives from a topic that exists are checked against
// the connector's settings, as validate checks them, and a lossy setting
// is a warning naming the derived target and its column.
func TestE2ERunChecksDerivedTargets(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.prices ` + pricesDDL)
	targetURL, _ := targetWith(t, `CREATE TABLE public.prices `+pricesDDL[:len(pricesDDL)-1]+`, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`)
	yaml := tablesConfig(st, fmt.Sprintf("  - topic_pattern: '%s\\.public\\.(?P<table>.+)'\n    target: 'public.${table}'\n", strings.ReplaceAll(st.TopicPrefix, ".", `\.`))) +
		"debezium:\n  connect_url: ${CONNECT_URL}\n"
	env := []string{"TARGET_URL=" + targetURL, "CONNECT_URL=" + st.Env.ConnectURL}
	precise := st.RegisterDebezium("precise", map[string]string{"table.include.list": "public.prices", "skipped.operations": "none",
		"decimal.handling.mode": "precise", "interval.handling.mode": "string"})
	st.Exec(`INSERT INTO public.prices VALUES (1, 'NaN', '1 day')`)
	st.ReadUntil(60*time.Second, func(rs []recording.Record) bool { return len(rs) >= 1 }) // the topic exists before pgsink starts

	p := startPgsink(t, yaml, env...)
	want := fmt.Sprintf(`tables[0]: error: connector %q decimal.handling.mode=precise: derived target public.prices: column "amount" (numeric(12,2)): `, precise)
	eventually(t, 30*time.Second, "run's warning on the derived target's column", func() (bool, string) {
		logs := p.Logs()
		return strings.Contains(logs, "\twarn\tupstream check: ") && strings.Contains(logs, want), logs
	})
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink run exited %d", code)
	}
}

// TestE2EValidateUpstream registers Debezium connectors over a table with a
// numeric column and checks what `pgsink validate` and `pgsink run` say of
// them: precise decimals are an error naming the column and the fix (a
// warning at run's start, which goes on applying), the connector file's
// settings are judged the same way, the lossless settings give no
// finding, and a column type Debezium does not send and a partial snapshot
// of a table that reconciles are errors whatever the settings.
func TestE2EValidateUpstream(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.prices ` + pricesDDL)
	targetURL, target := targetWith(t, `CREATE TABLE public.prices `+pricesDDL[:len(pricesDDL)-1]+`, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`)
	yaml := tableConfig(st, st.TopicPrefix+".public.prices", "public.prices", "") + "debezium:\n  connect_url: ${CONNECT_URL}\n"
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"TARGET_URL=" + targetURL, "CONNECT_URL=" + st.Env.ConnectURL}
	const tableLine = 10 // "  - topic: ..." in tableConfig
	numericError := func(connector, setting string) string {
		return fmt.Sprintf(`%s:%d: tables[0]: error: connector %q decimal.handling.mode=%s: column "amount" (numeric(12,2)): `+
			`NaN, which every numeric column accepts, arrives as null and is written as NULL; fix: set decimal.handling.mode=string on the connector`+"\n",
			path, tableLine, connector, setting)
	}
	valid := fmt.Sprintf("%s: valid, 1 table(s) (target catalog and Debezium connectors checked, 0 warning(s))\n", path)
	register := func(name string, overrides map[string]string) (string, func()) {
		full := st.RegisterDebezium(name, overrides)
		return full, func() {
			if err := st.Connect.Delete(context.Background(), full); err != nil {
				t.Fatal(err)
			}
		}
	}

	// decimal.handling.mode=precise: an error for validate...
	precise, unregister := register("precise", map[string]string{"table.include.list": "public.prices", "skipped.operations": "none",
		"decimal.handling.mode": "precise", "interval.handling.mode": "string"})
	code, stdout, stderr := validate(t, path, env...)
	if code != 1 || stdout != numericError(precise, "precise") || !strings.Contains(stderr, "1 problem(s)") {
		t.Fatalf("validate with decimal.handling.mode=precise: exit %d, want 1 and the numeric column's error\nstdout:\n%s\nwant:\n%s\nstderr:\n%s",
			code, stdout, numericError(precise, "precise"), stderr)
	}
	// ...and a warning at run's start, which does not stop it.
	st.Exec(`INSERT INTO public.prices VALUES (1, 'NaN', '1 day'), (2, 12.5, '1 year 2 mons')`)
	st.ReadUntil(60*time.Second, func(rs []recording.Record) bool { return len(rs) >= 2 }) // the topic exists before pgsink subscribes
	p := startPgsink(t, yaml, env...)
	eventually(t, 30*time.Second, "run's upstream warning", func() (bool, string) {
		logs := p.Logs()
		// run writes its own copy of the file: the line is the same, not the path.
		finding := strings.TrimSuffix(strings.TrimPrefix(numericError(precise, "precise"), path), "\n")
		return strings.Contains(logs, "\twarn\tupstream check: ") && strings.Contains(logs, "pgsink.yaml"+finding+"\t"), logs
	})
	eventually(t, 60*time.Second, "run applying after the warning", func() (bool, string) {
		var n int
		if err := target.QueryRow(context.Background(), `SELECT count(*) FROM public.prices`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 2, fmt.Sprintf("%d rows", n)
	})
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink run exited %d", code)
	}
	unregister()

	// The settings of the connector file compose and the demo register,
	// with this test's table: judged as they are.
	shipped, err := docker.Connector(docker.TablesConnector)
	if err != nil {
		t.Fatal(err)
	}
	overrides := map[string]string{"table.include.list": "public.prices"}
	if ops, ok := shipped["skipped.operations"]; ok {
		overrides["skipped.operations"] = ops
	}
	file, unregister := register("shipped", overrides)
	var wantFindings []string
	if mode, set := shipped["decimal.handling.mode"]; !set || mode == "precise" {
		wantFindings = append(wantFindings, numericError(file, setting("precise", set)))
	}
	if mode, set := shipped["interval.handling.mode"]; !set || mode == "numeric" {
		wantFindings = append(wantFindings, fmt.Sprintf(`%s:%d: tables[0]: error: connector %q interval.handling.mode=%s: column "span" (interval): `+
			`values arrive as microseconds, with months and days folded into them ('1 year 2 mons 3 days 04:05:06.789' is written as 10303:05:06.789); `+
			`fix: set interval.handling.mode=string on the connector`+"\n", path, tableLine, file, setting("numeric", set)))
	}
	wantCode, want := 0, valid
	if len(wantFindings) > 0 {
		wantCode, want = 1, strings.Join(wantFindings, "")
	}
	if code, stdout, _ := validate(t, path, env...); code != wantCode || stdout != want {
		t.Errorf("validate with the settings of docker/connectors/%s.json: exit %d, want %d\ngot:\n%s\nwant:\n%s",
			docker.TablesConnector, code, wantCode, stdout, want)
	}
	unregister()

	// The lossless settings: no finding.
	lossless := map[string]string{"table.include.list": "public.prices", "skipped.operations": "none",
		"decimal.handling.mode": "string", "interval.handling.mode": "string"}
	_, unregisterLossless := register("lossless", lossless)
	if code, stdout, stderr := validate(t, path, env...); code != 0 || stdout != valid {
		t.Fatalf("validate with decimal.handling.mode=string, interval.handling.mode=string: exit %d, want 0 and no finding\nstdout:\n%s\nwant:\n%s\nstderr:\n%s",
			code, stdout, valid, stderr)
	}

	// Debezium's context headers left at its default (on): a note, which
	// loses nothing and leaves the exit code at 0. The connector replaces
	// the lossless one: two connectors of one topic.prefix are a warning.
	unregisterLossless()
	headers := st.RegisterDebeziumWithout("headers", []string{"extended.headers.enabled"}, map[string]string{"table.include.list": "public.prices",
		"skipped.operations": "none", "decimal.handling.mode": "string", "interval.handling.mode": "string"})
	wantNote := fmt.Sprintf(`%s:%d: tables[0]: info: connector %q extended.headers.enabled=true (Debezium's default): `+
		`every record carries four __debezium.context.* headers (about 180 bytes), which pgsink does not read but copies out of the Kafka client `+
		`for each record, a cost in CPU and memory per record; nothing is lost; fix: set extended.headers.enabled=false on the connector`+"\n",
		path, tableLine, headers) + path + ": valid, 1 table(s) (target catalog and Debezium connectors checked, 0 warning(s), 1 note(s))\n"
	if code, stdout, stderr := validate(t, path, env...); code != 0 || stdout != wantNote {
		t.Fatalf("validate with extended.headers.enabled at its default: exit %d, want 0 and the note\nstdout:\n%s\nwant:\n%s\nstderr:\n%s",
			code, stdout, wantNote, stderr)
	}
	if err := st.Connect.Delete(context.Background(), headers); err != nil {
		t.Fatal(err)
	}
	_, unregisterLossless = register("lossless", lossless)

	// A warning alone is printed and leaves the exit code at 0: here, a
	// table whose topic no connector produces.
	if _, err := target.Exec(context.Background(), `CREATE TABLE public.other (id integer PRIMARY KEY, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`); err != nil {
		t.Fatal(err)
	}
	twoTables := strings.Replace(yaml, "debezium:", "  - topic: elsewhere.public.other\n    target: public.other\ndebezium:", 1)
	if err := os.WriteFile(path, []byte(twoTables), 0o600); err != nil {
		t.Fatal(err)
	}
	wantOut := fmt.Sprintf("%s:%d: tables[1]: warning: ", path, tableLine+2) + "no Debezium PostgreSQL connector at debezium.connect_url produces this table's topics " +
		"(matched by topic.prefix, table.include.list and topic routing), so no connector setting is checked for it; " +
		"fix: check the table's topics, or point debezium.connect_url at the Connect cluster that produces them\n" +
		path + ": valid, 2 table(s) (target catalog and Debezium connectors checked, 1 warning(s))\n"
	if code, stdout, stderr := validate(t, path, env...); code != 0 || stdout != wantOut {
		t.Fatalf("validate with a warning only: exit %d, want 0\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, stdout, wantOut, stderr)
	}

	// A target column of a type Debezium leaves out of its events, and a
	// connector that snapshots only part of a table that reconciles: two
	// errors, whatever the connector's value settings.
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	unregisterLossless()
	if _, err := target.Exec(context.Background(), `ALTER TABLE public.prices ADD COLUMN shape box`); err != nil {
		t.Fatal(err)
	}
	partial, _ := register("partial", map[string]string{"table.include.list": "public.prices", "skipped.operations": "none",
		"decimal.handling.mode": "string", "interval.handling.mode": "string",
		"snapshot.select.statement.overrides":               "public.prices",
		"snapshot.select.statement.overrides.public.prices": "SELECT * FROM public.prices WHERE id > 1"})
	wantOut = fmt.Sprintf(`%[1]s:%[2]d: tables[0]: error: connector %[3]q: column "shape" (box): Debezium 3.6.1 leaves columns of this type out of its events `+
		`(Connect logs "No converter found for column"): no value of it reaches the target; fix: carry the values at the source in a type Debezium sends (text, or point for one point)`+"\n"+
		`%[1]s:%[2]d: tables[0].snapshot.reconcile: error: connector %[3]q snapshot.select.statement.overrides=public.prices: the connector's snapshot of public.prices `+
		`reads only the rows its SELECT picks, which pgsink cannot tell from a whole snapshot: the sweep after it (snapshot.reconcile) deletes every target row the SELECT left out; `+
		`fix: set snapshot.reconcile: false on this table, or remove public.prices from snapshot.select.statement.overrides on the connector`+"\n", path, tableLine, partial)
	if code, stdout, stderr := validate(t, path, env...); code != 1 || stdout != wantOut || !strings.Contains(stderr, "2 problem(s)") {
		t.Fatalf("validate with a box column and a partial snapshot: exit %d, want 1\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, stdout, wantOut, stderr)
	}
}
