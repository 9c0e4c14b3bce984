//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/docker"
	"github.com/pgsink/pgsink/test/fidelity"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// Where `make fidelity` writes the matrix and its expectations; the test
// runs in test/e2e.
const (
	fidelityDoc      = "../../docs/fidelity.md"
	fidelityExpected = "../fidelity/testdata/expected.tsv"
)

// TestE2EFidelity round-trips every case of test/fidelity through the real
// stack, under the shipped connector settings and under Debezium's
// defaults, each in snapshot and in streaming, and classifies each value as
// exact, lost or refused by comparing its text output in the source and in
// the target. It fails when a case the committed expectations call exact
// is not, or when a row is neither written nor dead-lettered. With
// PGSINK_FIDELITY_WRITE=1 it writes docs/fidelity.md and the expectations
// instead of checking them.
func TestE2EFidelity(t *testing.T) {
	waitsInParallel(t)
	write := os.Getenv("PGSINK_FIDELITY_WRITE") == "1"
	var exp fidelity.Expectations
	if !write {
		var err error
		if exp, err = fidelity.ReadExpectations(fidelityExpected); err != nil {
			t.Fatalf("%v (run `make fidelity`)", err)
		}
	}
	shipped, err := docker.Connector(docker.TablesConnector)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, k := range fidelity.RepresentationKeys {
		if v, ok := shipped[k]; ok {
			kept = append(kept, k+"="+v)
		}
	}
	m := fidelity.NewMatrix(fidelity.Rows())
	drop := fidelity.RepresentationKeys
	t.Run(fidelity.Shipped, func(t *testing.T) { fidelityRun(t, m, fidelity.Shipped, nil) })
	if len(kept) == 0 {
		// Both runs would register the same configuration: run it once.
		m.Settings[fidelity.Shipped] = "`docker/connectors/demo-tables.json` as shipped; it sets no value-representation setting, so it is Debezium's defaults and one run stands for both."
		for _, phase := range []string{fidelity.Snapshot, fidelity.Streaming} {
			for _, r := range m.Rows {
				m.Set(fidelity.Run{Settings: fidelity.Defaults, Phase: phase}, r.ID, m.Outcomes[fidelity.Run{Settings: fidelity.Shipped, Phase: phase}][r.ID])
			}
		}
	} else {
		m.Settings[fidelity.Shipped] = "`docker/connectors/demo-tables.json` as shipped: `" + strings.Join(kept, "`, `") + "`."
		t.Run(fidelity.Defaults, func(t *testing.T) { fidelityRun(t, m, fidelity.Defaults, drop) })
	}
	m.Settings[fidelity.Defaults] = "the same file without `" + strings.Join(drop, "`, `") + "`: what Debezium does when they are not set."

	for run, counts := range m.Counts() {
		t.Logf("%s: %v", run, counts)
	}
	if write && !t.Failed() {
		doc, err := m.Markdown()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fidelityDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := m.WriteExpectations(fidelityExpected); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s and %s", fidelityDoc, fidelityExpected)
	}
	for _, r := range m.Regressions(exp) {
		t.Error(r)
	}
}

// fidelityRun is one settings set: the cases written before the connector
// starts, then again while it streams, then the TOAST rows updated and a
// sentinel written. Two pgsink instances (own groups, own targets) apply
// the topic: one in batches as a backlog forms them (COPY), one a record
// at a time (INSERT with bound parameters). Once a target has the
// sentinel, every row is classified.
func fidelityRun(t *testing.T, m *fidelity.Matrix, settings string, without []string) {
	st := stacktest.New(t)
	ctx := context.Background()
	rows := m.Rows
	for _, sql := range append(slices.Clone(fidelity.Setup), fidelity.TableDDL()) {
		st.Exec(sql)
	}
	src := st.Source()
	fidelityInsert(t, src, rows, 0)
	topic := st.TopicPrefix + ".public.fidelity"
	// One partition: the sentinel, written last, is then applied last.
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, 1); err != nil {
		t.Fatal(err)
	}
	sinks := []*fidelitySink{
		newFidelitySink(t, st, topic, "copy", 0),
		newFidelitySink(t, st, topic, "parameters", 1),
	}

	name := st.ID + "_fidelity"
	cfg, err := stacktest.DebeziumPostgres(st.SourceURL, name, st.TopicPrefix)
	if err != nil {
		t.Fatal(err)
	}
	cfg["table.include.list"] = "public.fidelity"
	cfg["skipped.operations"] = "none"
	for _, k := range without {
		delete(cfg, k)
	}
	t.Cleanup(func() {
		if err := st.Connect.Delete(context.Background(), name); err != nil {
			t.Error(err)
		}
	})
	if err := st.Connect.Put(ctx, name, cfg); err != nil {
		t.Fatal(err)
	}
	if err := st.Connect.WaitRunning(ctx, name, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, s := range sinks {
		s.start()
	}

	// Rows written before the snapshot's last record are in the snapshot;
	// the streamed copies must come after it.
	st.ReadUntil(3*time.Minute, keySeen(rows[len(rows)-1].ID))
	fidelityInsert(t, src, rows, fidelity.StreamOffset)
	var touched []int
	for _, r := range rows {
		if r.Touch {
			touched = append(touched, r.ID, r.ID+fidelity.StreamOffset)
		}
	}
	if _, err := src.Exec(ctx, `UPDATE public.fidelity SET touch = 1 WHERE id = ANY($1)`, touched); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Exec(ctx, `INSERT INTO public.fidelity (id) VALUES ($1)`, fidelity.Sentinel); err != nil {
		t.Fatal(err)
	}
	records := st.ReadUntil(3*time.Minute, keySeen(fidelity.Sentinel))
	sent := sentValues(t, records)
	for _, s := range sinks {
		s.finish(records)
	}

	type byPath map[string]fidelity.Outcome
	results := map[fidelity.Run]map[int]byPath{}
	for _, s := range sinks {
		dead := deadLetters(t, s.target)
		for _, col := range fidelity.Columns() {
			want, got := columnText(t, src, col.Name), columnText(t, s.target, col.Name)
			for _, r := range rows {
				if r.Column != col.Name {
					continue
				}
				for _, phase := range []string{fidelity.Snapshot, fidelity.Streaming} {
					id := r.ID
					if phase == fidelity.Streaming {
						id += fidelity.StreamOffset
					}
					run := fidelity.Run{Settings: settings, Phase: phase}
					if results[run] == nil {
						results[run] = map[int]byPath{}
					}
					if results[run][r.ID] == nil {
						results[run][r.ID] = byPath{}
					}
					o := classify(want[id], got, id, sent[id][col.Name], dead[id])
					if stop, ok := s.stops[id]; ok {
						o = fidelity.Outcome{Class: fidelity.Refused, How: "sent " + sent[id][col.Name] + "; " + stop}
					}
					results[run][r.ID][s.path] = o
				}
			}
		}
	}
	for _, phase := range []string{fidelity.Snapshot, fidelity.Streaming} {
		run := fidelity.Run{Settings: settings, Phase: phase}
		for _, r := range rows {
			m.Set(run, r.ID, fidelity.Merge(results[run][r.ID]))
		}
	}
}

// fidelitySink is one pgsink instance of a fidelity run, with its own
// group and target database, restarted past each record that stops it.
type fidelitySink struct {
	t          *testing.T
	st         *stacktest.T
	path       string // "copy" or "parameters"
	topic      string
	group      string
	targetURL  string
	target     *pgx.Conn
	maxRecords int // 0: pgsink's default
	p          *process
	// stops are the records that stopped the instance, by key: how.
	stops map[int]string
}

func newFidelitySink(t *testing.T, st *stacktest.T, topic, path string, maxRecords int) *fidelitySink {
	targetURL, target := targetWith(t, strings.Join(append(slices.Clone(fidelity.Setup),
		fidelity.TableDDL("_pgsink_commit_lsn bigint", "_pgsink_lsn bigint")), ";\n"))
	return &fidelitySink{t: t, st: st, path: path, topic: topic, group: st.ID + "_" + path,
		targetURL: targetURL, target: target, maxRecords: maxRecords, stops: map[int]string{}}
}

// config is the instance's configuration: tableConfig's with the
// instance's own group, dead letters in the table, and batches capped at
// maxRecords when it is above 0.
func (s *fidelitySink) config(maxRecords int) string {
	cfg := strings.Replace(tableConfig(s.st, s.topic, "public.fidelity", ""), "group.id: "+s.st.ID+"\n", "group.id: "+s.group+"\n", 1)
	if !strings.Contains(cfg, "group.id: "+s.group+"\n") {
		s.t.Fatalf("tableConfig changed shape: no group.id line to replace in\n%s", cfg)
	}
	cfg += "errors:\n  tolerance: all\n  dead_letter:\n    destination: table\n"
	if maxRecords > 0 {
		cfg += fmt.Sprintf("apply:\n  batch:\n    max_records: %d\n", maxRecords)
	}
	return cfg
}

func (s *fidelitySink) start() { s.startWith(s.maxRecords) }

func (s *fidelitySink) startWith(maxRecords int) {
	s.t.Helper()
	path := filepath.Join(s.t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(path, []byte(s.config(maxRecords)), 0o600); err != nil {
		s.t.Fatal(err)
	}
	p := &process{t: s.t, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "run", "--config", path, "--log-format", "console")
	p.cmd.Env = append(os.Environ(), "TARGET_URL="+s.targetURL)
	p.cmd.Stdout, p.cmd.Stderr = lockedWriter{p}, lockedWriter{p}
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	s.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if s.t.Failed() {
			s.t.Logf("pgsink %s (pid %d) logs:\n%s", s.path, p.cmd.Process.Pid, p.Logs())
		}
	})
	s.p = p
}

var stoppedRE = regexp.MustCompile(`pgsink stopped\s+\{"error": "(.*)"\}`)

// finish waits until the target has the sentinel. When pgsink stops at a
// record it cannot apply (it then moves no offset, I5), the record is
// found by applying one record at a time from there, noted as refused, and
// skipped as an operator would: `pgsink replay --from offset:N+1`.
func (s *fidelitySink) finish(records []recording.Record) {
	s.t.Helper()
	ctx := context.Background()
	byOffset := map[int64]recording.Record{}
	for _, r := range records {
		if r.Topic == s.topic {
			byOffset[r.Offset] = r
		}
	}
	single := s.maxRecords == 1
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		var n int
		if err := s.target.QueryRow(ctx, `SELECT count(*) FROM public.fidelity WHERE id = $1`, fidelity.Sentinel).Scan(&n); err != nil {
			s.t.Fatal(err)
		}
		if n == 1 {
			return
		}
		select {
		case <-s.p.done:
		case <-time.After(250 * time.Millisecond):
			continue
		}
		var next int64
		if err := s.target.QueryRow(ctx, `SELECT next_offset FROM pgsink.offsets WHERE group_id = $1 AND topic = $2 AND partition = 0`,
			s.group, s.topic).Scan(&next); err != nil {
			s.t.Fatalf("pgsink %s exited and its position cannot be read: %v\n%s", s.path, err, s.p.Logs())
		}
		if !single {
			// The stop is somewhere in the batch from next on: find it.
			single = true
			s.startWith(1)
			continue
		}
		id, ok := recordKey(byOffset[next])
		if !ok {
			s.t.Fatalf("pgsink %s stopped at offset %d, which holds no fidelity record:\n%s", s.path, next, s.p.Logs())
		}
		reason := "pgsink exited"
		if m := stoppedRE.FindAllStringSubmatch(s.p.Logs(), -1); m != nil {
			reason = m[len(m)-1][1]
		}
		s.stops[id] = "pgsink stopped (offset unmoved): " + fidelity.Show(reason, 100)
		config := filepath.Join(s.t.TempDir(), "replay.yaml")
		if err := os.WriteFile(config, []byte(s.config(0)), 0o600); err != nil {
			s.t.Fatal(err)
		}
		replay := exec.Command(binary, "replay", "--config", config, "--topic", s.topic, "--from", fmt.Sprintf("offset:%d", next+1))
		replay.Env = append(os.Environ(), "TARGET_URL="+s.targetURL)
		if out, err := replay.CombinedOutput(); err != nil {
			s.t.Fatalf("pgsink replay past offset %d: %v\n%s", next, err, out)
		}
		single = s.maxRecords == 1
		s.start()
	}
	s.t.Fatalf("pgsink %s: the sentinel row is not in the target after 4 minutes:\n%s", s.path, s.p.Logs())
}

// fidelityInsert writes every case with key ID+offset, in one transaction.
func fidelityInsert(t *testing.T, conn *pgx.Conn, rows []fidelity.Row, offset int) {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, r := range rows {
		if _, err := tx.Exec(ctx, r.Insert(r.ID+offset)); err != nil {
			t.Fatalf("%s %q: %v\n%s", r.Column, r.Case.Name, err, r.Insert(r.ID+offset))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// cellText is a column's text output and its row's touch column; ok is
// false where the row does not exist.
type cellText struct {
	value, touch *string
	ok           bool
}

// columnText reads one column of every row as text.
func columnText(t *testing.T, conn *pgx.Conn, col string) map[int]cellText {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT id, `+pgx.Identifier{col}.Sanitize()+`::text, touch::text FROM public.fidelity`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]cellText{}
	for rows.Next() {
		var id int
		var c cellText
		if err := rows.Scan(&id, &c.value, &c.touch); err != nil {
			t.Fatal(err)
		}
		c.ok = true
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// classify compares one row's column in the source (want) and the target.
func classify(want cellText, target map[int]cellText, id int, sent string, dead string) fidelity.Outcome {
	got, written := target[id]
	switch {
	case written && equalText(want.value, got.value) && equalText(want.touch, got.touch):
		return fidelity.Outcome{Class: fidelity.Exact}
	case dead != "":
		return fidelity.Outcome{Class: fidelity.Refused, How: "sent " + sent + "; dead letter: " + fidelity.Show(dead, 100)}
	case !written:
		return fidelity.Outcome{Class: fidelity.Dropped, How: "not in the target, no dead letter; sent " + sent}
	case !equalText(want.touch, got.touch):
		return fidelity.Outcome{Class: fidelity.Lost, How: "the update was not applied"}
	}
	return fidelity.Outcome{Class: fidelity.Lost, How: "sent " + sent + ", written " + quoted(got.value)}
}

func equalText(a, b *string) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func quoted(s *string) string {
	if s == nil {
		return "NULL"
	}
	return "`" + fidelity.Show(*s, 80) + "`"
}

// keySeen is a ReadUntil condition: a record with key id has been read.
func keySeen(id int) func([]recording.Record) bool {
	next := 0
	return func(records []recording.Record) bool {
		for ; next < len(records); next++ {
			if k, ok := recordKey(records[next]); ok && k == id {
				return true
			}
		}
		return false
	}
}

// recordKey is the id in a fidelity record's key.
func recordKey(r recording.Record) (int, bool) {
	var key struct {
		Payload struct {
			ID *int `json:"id"`
		} `json:"payload"`
	}
	if r.Key == nil || json.Unmarshal(r.Key, &key) != nil || key.Payload.ID == nil {
		return 0, false
	}
	return *key.Payload.ID, true
}

// sentValues is, by key and column, the last value Debezium sent for the
// row: its JSON and the field's schema name (or type).
func sentValues(t *testing.T, records []recording.Record) map[int]map[string]string {
	t.Helper()
	type field struct {
		Field string `json:"field"`
		Name  string `json:"name"`
		Type  string `json:"type"`
		Items *field `json:"items"`
	}
	var value struct {
		Schema struct {
			Fields []struct {
				Field  string  `json:"field"`
				Fields []field `json:"fields"`
			} `json:"fields"`
		} `json:"schema"`
		Payload struct {
			After map[string]json.RawMessage `json:"after"`
		} `json:"payload"`
	}
	out := map[int]map[string]string{}
	for _, r := range records {
		id, ok := recordKey(r)
		if !ok || r.Value == nil {
			continue
		}
		value.Payload.After = nil
		value.Schema.Fields = nil
		if err := json.Unmarshal(r.Value, &value); err != nil {
			t.Fatalf("%s@%d: %v", r.Topic, r.Offset, err)
		}
		if value.Payload.After == nil {
			continue
		}
		schemas := map[string]string{}
		for _, f := range value.Schema.Fields {
			if f.Field != "after" {
				continue
			}
			for _, c := range f.Fields {
				kind := c.Type
				if c.Name != "" {
					kind = c.Name
				}
				if c.Items != nil {
					item := c.Items.Type
					if c.Items.Name != "" {
						item = c.Items.Name
					}
					kind += " of " + item
				}
				schemas[c.Field] = kind
			}
		}
		row := map[string]string{}
		for col, v := range value.Payload.After {
			if _, ok := schemas[col]; !ok {
				continue
			}
			row[col] = "`" + fidelity.Show(string(v), 160) + "` (" + schemas[col] + ")"
		}
		for _, col := range fidelity.Columns() {
			if _, ok := schemas[col.Name]; !ok {
				row[col.Name] = "nothing (the event has no such field)"
			}
		}
		out[id] = row
	}
	return out
}

// deadLetters is the reason of each key's dead letters, joined.
func deadLetters(t *testing.T, target *pgx.Conn) map[int]string {
	t.Helper()
	rows, err := target.Query(context.Background(), `SELECT key, error FROM pgsink.dead_letters ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for rows.Next() {
		var key []byte
		var reason string
		if err := rows.Scan(&key, &reason); err != nil {
			t.Fatal(err)
		}
		id, ok := recordKey(recording.Record{Key: key})
		if !ok {
			t.Errorf("a dead letter without a fidelity key (%s): %s", key, reason)
			continue
		}
		switch {
		case out[id] == "":
			out[id] = reason
		case !strings.Contains(out[id], reason):
			out[id] += "; " + reason
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
