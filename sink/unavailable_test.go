package sink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/test/recording"
)

// fakeServer accepts connections on a local port and hands each to serve,
// standing in for a target whose connect attempts fail a given way.
func fakeServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return l.Addr().String()
}

// connectErr is the error pgconn returns for a connection to addr.
func connectErr(t *testing.T, addr, params string) error {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%s user=u dbname=d password=secret-pw %s", host, port, params))
	if err == nil {
		conn.Close(ctx)
		t.Fatal("connect succeeded against a fake server")
	}
	if strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("the connect error, logged while the target is unavailable, shows the password: %v", err)
	}
	if !errors.As(err, new(*pgconn.ConnectError)) {
		t.Fatalf("connect failed with %T (%v), want a *pgconn.ConnectError", err, err)
	}
	return err
}

// answerSSLRequest reads the client's SSLRequest and answers it with b.
func answerSSLRequest(c net.Conn, b byte) bool {
	if _, err := io.ReadFull(c, make([]byte, 8)); err != nil {
		return false
	}
	_, err := c.Write([]byte{b})
	return err == nil
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestUnavailableConnectErrors: of the errors a connect attempt fails with
// (each a *pgconn.ConnectError, all transient), only those of a target
// that is down are retried without end; one that only an operator can fix
// — TLS refused, a certificate not trusted, the client's certificate
// refused — still counts against MaxAttempts, so the partition stops
// loudly rather than wait forever. The errors are pgconn's own, from
// connect attempts against local fake servers.
func TestUnavailableConnectErrors(t *testing.T) {
	cert := selfSigned(t)
	closed := fakeServer(t, func(net.Conn) {})
	refusedPort, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refusedPort.Addr().String()
	refusedPort.Close()
	for _, c := range []struct {
		name   string
		addr   string
		params string
		want   bool
	}{
		{"connection refused", refusedAddr, "sslmode=disable", true},
		{"connection closed at once", closed, "sslmode=disable", true},
		{"connect_timeout expired (a server that does not answer)", fakeServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }), "sslmode=disable connect_timeout=1", true},
		{"server refused TLS (sslmode=require)", fakeServer(t, func(c net.Conn) { answerSSLRequest(c, 'N') }), "sslmode=require", false},
		{"server certificate not trusted (verify-full)", fakeServer(t, func(c net.Conn) {
			if answerSSLRequest(c, 'S') {
				_ = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
			}
		}), "sslmode=verify-full", false},
		{"client certificate refused by the server", fakeServer(t, func(c net.Conn) {
			if answerSSLRequest(c, 'S') {
				s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert})
				if s.Handshake() == nil {
					_, _ = io.Copy(io.Discard, s)
				}
			}
		}), "sslmode=require", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := connectErr(t, c.addr, c.params)
			if !Transient(err) {
				t.Fatalf("%v: not transient", err)
			}
			t.Logf("%v", err)
			if got := Unavailable(err); got != c.want {
				t.Errorf("Unavailable(%v) = %v, want %v", err, got, c.want)
			}
		})
	}
}

// busyConn mirrors pgconn's unexported connLockError for "conn busy",
// which pgx returns when a connection is used by two callers at once.
type busyConn struct{}

func (busyConn) Error() string     { return "conn busy" }
func (busyConn) SafeToRetry() bool { return true }

// closedConn mirrors connLockError for "conn closed": a pooled connection
// lost with the target, which the pool replaces at the next attempt.
type closedConn struct{}

func (closedConn) Error() string     { return "conn closed" }
func (closedConn) SafeToRetry() bool { return true }
func (closedConn) Unwrap() error     { return pgconn.ErrConnClosed }

// TestUnavailableCallerCaused: transient errors that are pgsink's own
// doing count against MaxAttempts rather than wait forever.
func TestUnavailableCallerCaused(t *testing.T) {
	for name, c := range map[string]struct {
		err  error
		want bool
	}{
		"protocol violation (08P01)": {&pgconn.PgError{Code: "08P01", Message: "bind message supplies 2 parameters, but prepared statement \"\" requires 3"}, false},
		"conn busy":                  {fmt.Errorf("apply: %w", busyConn{}), false},
		"conn closed":                {fmt.Errorf("apply: %w", closedConn{}), true},
		"database dropped (57P04)":   {&pgconn.PgError{Code: "57P04"}, false},
	} {
		if !Transient(c.err) {
			t.Errorf("%s: not transient", name)
			continue
		}
		if got := Unavailable(c.err); got != c.want {
			t.Errorf("%s: Unavailable = %v, want %v", name, got, c.want)
		}
	}
	// Retried as a conflict is: given up after MaxAttempts (bounded by a
	// deadline so that a loop that never gives up fails, not hangs).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a := &Applier{opts: Options{Retry: Retry{MaxAttempts: 3, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond}}}
	calls := 0
	violation := &pgconn.PgError{Code: "08P01"}
	if err := a.retry(ctx, &Stats{}, func() error { calls++; return violation }); !errors.Is(err, violation) || calls != 3 {
		t.Fatalf("a protocol violation every attempt: %v after %d calls, want it back after MaxAttempts (3)", err, calls)
	}
}

// TestRetryGivesUpAnUnavailableTargetWhenStopping: a partition revoked or
// stopping while its target is down gives its batch up at once (nothing
// was applied) instead of holding the rebalance or the shutdown until
// shutdown_timeout.
func TestRetryGivesUpAnUnavailableTargetWhenStopping(t *testing.T) {
	a := &Applier{opts: Options{Retry: Retry{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}}}
	down := &pgconn.PgError{Code: "57P03"}
	stopping := make(chan struct{})
	ctx, cancel := context.WithTimeout(WithStopping(context.Background(), stopping), 5*time.Second)
	defer cancel()
	calls := 0
	err := a.retry(ctx, &Stats{}, func() error {
		calls++
		if calls == 5 {
			close(stopping)
		}
		return down
	})
	if !errors.Is(err, ErrStopping) || ctx.Err() != nil {
		t.Fatalf("stopping while the target is down: %v after %d calls (ctx %v), want ErrStopping before the deadline", err, calls, ctx.Err())
	}
	if calls > 6 {
		t.Fatalf("%d attempts after stopping, want at most one more", calls-5)
	}
}

// TestRouterCatalogReadOfATargetThatIsDown: routing a table's first record
// reads the target's catalog; with PostgreSQL down that read fails, and
// the error must say the target is unavailable, so that the partition
// waits for it (connector's partition.item) instead of stopping as for a
// table that does not exist. The record is one Debezium recorded; the
// target is a port nothing listens on.
func TestRouterCatalogReadOfATargetThatIsDown(t *testing.T) {
	records, err := recording.ReadFile("../testdata/debezium/identity_default/records.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	const topic = "fixture_identity_default.public.CamelCase"
	var rec debezium.Record
	for _, r := range records {
		if r.Topic == topic && r.Value != nil {
			rec = debezium.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
			break
		}
	}
	if rec.Value == nil {
		t.Fatalf("no record of %s in the fixture", topic)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg, err := config.Parse("test.yaml", []byte(`kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
tables:
  - topic: `+topic+`
    target: public.camel
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, fmt.Sprintf("postgres://u@127.0.0.1:%d/d?sslmode=disable&connect_timeout=2", refused))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	r := NewRouter(cfg, pool)
	_, _, err = r.Item(ctx, r.NewDecoder(), rec)
	if err == nil {
		t.Fatal("routed a record whose target's catalog cannot be read")
	}
	if !Unavailable(err) {
		t.Fatalf("routing with the target down failed with %v, which Unavailable does not report: the partition would stop", err)
	}
	t.Logf("%v", err)
}

// TestHostNotFound: a connect attempt whose host DNS does not know is
// named as such (the start's clear error, the outage warning's hint), and
// stays Unavailable; any other connect error is not. The errors are
// pgconn's own, its lookup answering as a resolver does for a name it
// does not know.
func TestHostNotFound(t *testing.T) {
	connect := func(lookup pgconn.LookupFunc, port int) error {
		cfg, err := pgconn.ParseConfig("host=pg.example.invalid port=5432 user=u dbname=d sslmode=disable connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		cfg.LookupFunc, cfg.Port = lookup, uint16(port)
		conn, err := pgconn.ConnectConfig(context.Background(), cfg)
		if err == nil {
			conn.Close(context.Background())
			t.Fatal("connected to a host that does not exist")
		}
		return err
	}
	notFound := connect(func(_ context.Context, host string) ([]string, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}, 5432)
	if host, ok := HostNotFound(notFound); !ok || host != "pg.example.invalid" {
		t.Errorf("HostNotFound(%v) = %q, %v; want the host", notFound, host, ok)
	}
	if !Unavailable(notFound) {
		t.Errorf("Unavailable(%v) = false: after the target was reached, a vanished name is an outage", notFound)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	refused := connect(func(context.Context, string) ([]string, error) { return []string{addr.IP.String()}, nil }, addr.Port)
	if host, ok := HostNotFound(refused); ok {
		t.Errorf("HostNotFound(%v) = %q: a refused connection is no DNS failure", refused, host)
	}
}
