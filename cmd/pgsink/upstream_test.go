package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// unreadableCatalog fails every query, as a target database that refuses
// the role would: run's check then goes on without the target's columns.
type unreadableCatalog struct{}

type errRow struct{}

func (errRow) Scan(...any) error { return errors.New("permission denied") }

func (unreadableCatalog) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{} }
func (unreadableCatalog) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("permission denied")
}
func (unreadableCatalog) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults { return errBatch{} }

// errBatch is a pipeline whose every statement is refused.
type errBatch struct{}

func (errBatch) Exec() (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errors.New("permission denied")
}
func (errBatch) Query() (pgx.Rows, error) { return nil, errors.New("permission denied") }
func (errBatch) QueryRow() pgx.Row        { return errRow{} }
func (errBatch) Close() error             { return errors.New("permission denied") }
func (errBatch) Tx() pgx.Tx               { return nil }

// connectConfig serves body as Kafka Connect's connector listing for the
// test's life and returns a configuration of one table pointing at it,
// its file's path and the server (closing it is Connect going down).
func connectConfig(t *testing.T, body []byte) (*config.Config, string, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	t.Cleanup(srv.Close)
	t.Setenv("PGSINK_TEST_CONNECT_URL", srv.URL)
	path := writeConfig(t, `kafka: { bootstrap.servers: 127.0.0.1:9092, group.id: sink }
postgres: { url: postgres://pgsink@127.0.0.1:1/target }
debezium: { connect_url: '${PGSINK_TEST_CONNECT_URL}' }
tables:
  - topic: shop.public.prices
    target: public.prices
`)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, path, srv
}

// TestRunWarnsUpstream: at run's start, every upstream finding is logged as
// a warning, at its table's line, and Connect not answering is one warning.
func TestRunWarnsUpstream(t *testing.T) {
	body, err := os.ReadFile("../../upstream/testdata/connectors.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, path, srv := connectConfig(t, body)
	core, logs := observer.New(zapcore.WarnLevel)
	warnUpstream(context.Background(), cfg, unreadableCatalog{}, zap.New(core))
	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Message)
	}
	// The recorded "precise" and "lossy" connectors skip truncates, and
	// "lossy" deletes too; "partial" snapshots part of the table, which
	// reconciles; without the target's columns nothing more is known. The
	// recording's connectors ran on one Connect cluster, all with the
	// prefix "shop".
	want := []string{
		path + `:5: tables[0]: error: connector "lossy" skipped.operations=d,t: deletes never reach the target`,
		path + `:5: tables[0]: error: connector "lossy" skipped.operations=d,t: a TRUNCATE at the source never reaches pgsink`,
		path + `:5: tables[0].snapshot.reconcile: error: connector "partial" snapshot.select.statement.overrides=public.prices: `,
		path + `:5: tables[0]: error: connector "precise" skipped.operations=t (Debezium's default): a TRUNCATE at the source never reaches pgsink`,
		path + `:5: tables[0]: warning: connector "lossless" topic.prefix=shop: connectors "lossless", "lossy", "partial", "precise", "routed" share topic.prefix "shop"`,
		"upstream check: the connectors lose data pgsink cannot bring back; pgsink validate lists these findings",
	}
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d of them", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d = %q, want it to contain %q", i, got[i], want[i])
		}
		if logs.All()[i].Level != zapcore.WarnLevel {
			t.Errorf("warning %d logged at %s", i, logs.All()[i].Level)
		}
	}

	srv.Close()
	core, logs = observer.New(zapcore.WarnLevel)
	warnUpstream(context.Background(), cfg, unreadableCatalog{}, zap.New(core))
	if all := logs.All(); len(all) != 1 || !strings.HasPrefix(all[0].Message, "upstream check not made") {
		t.Errorf("with Connect down, want one warning that the check was not made, got %+v", all)
	}
}

// panickingCatalog panics on every query, as a bug in a catalog read would.
type panickingCatalog struct{}

func (panickingCatalog) QueryRow(context.Context, string, ...any) pgx.Row { panic("catalog bug") }
func (panickingCatalog) Query(context.Context, string, ...any) (pgx.Rows, error) {
	panic("catalog bug")
}
func (panickingCatalog) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults { panic("catalog bug") }

// TestUpstreamCheckBesideContainsPanic: the check run beside the apply
// logs a panic as an error and ends; stop returns once it has.
func TestUpstreamCheckBesideContainsPanic(t *testing.T) {
	cfg, _, _ := connectConfig(t, []byte(`{}`))
	core, logs := observer.New(zapcore.ErrorLevel)
	stop := checkUpstreamBeside(context.Background(), cfg, panickingCatalog{}, zap.New(core))
	stop()
	if all := logs.All(); len(all) != 1 || !strings.HasPrefix(all[0].Message, "upstream check failed") {
		t.Errorf("want one error saying the check failed, got %+v", all)
	}
}
