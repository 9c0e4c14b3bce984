//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2ETLS runs the pipeline with every pgsink connection encrypted and
// verified: Kafka over SASL_SSL with SCRAM-SHA-256 (and over SSL alone),
// PostgreSQL with sslmode=verify-full, against the stack's private CA.
// Debezium stays on the plaintext listener; only pgsink's side is tested.
func TestE2ETLS(t *testing.T) {
	tlsEnv, err := stacktest.LoadTLSEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, listener := range []string{"SASL_SSL", "SSL"} {
		t.Run(listener, func(t *testing.T) {
			ctx := context.Background()
			st := stacktest.New(t)
			st.Exec(`CREATE TABLE public.items ` + itemsDDL)
			st.Exec(`INSERT INTO public.items VALUES (1, 'snapshot row', 1.50, '2026-01-01T00:00:00Z', '{"a": 1}', NULL)`)
			st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
			plainURL, conn := itemsTarget(t)

			// verify-full: the server's certificate must chain to the CA
			// and name the host dialled.
			u, err := url.Parse(plainURL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("sslmode", "verify-full")
			q.Set("sslrootcert", tlsEnv.CA)
			u.RawQuery = q.Encode()
			tlsURL := u.String()

			kafkaSettings := fmt.Sprintf("  bootstrap.servers: %s\n  security.protocol: ssl\n  ssl.ca.location: %s\n", tlsEnv.KafkaSSLBootstrap, tlsEnv.CA)
			env := []string{"TARGET_URL=" + tlsURL}
			if listener == "SASL_SSL" {
				user, password := st.ID, "scram-"+st.ID
				addScramUser(t, st.Env.KafkaBootstrap, user, password)
				kafkaSettings = fmt.Sprintf("  bootstrap.servers: %s\n  security.protocol: sasl_ssl\n  sasl.mechanisms: SCRAM-SHA-256\n  sasl.username: %s\n  sasl.password: ${KAFKA_PASSWORD}\n  ssl.ca.location: %s\n",
					tlsEnv.KafkaSASLBootstrap, user, tlsEnv.CA)
				env = append(env, "KAFKA_PASSWORD="+password)
			}
			cfg := fmt.Sprintf(`
kafka:
%s  group.id: %s
postgres:
  url: ${TARGET_URL}
apply:
  batch: { max_records: 100, max_wait: 50ms }
metrics:
  listen: 127.0.0.1:0
tables:
  - topic: %s.public.items
    target: public.items
`, kafkaSettings, st.ID, st.TopicPrefix)
			p := startPgsink(t, cfg, env...)
			st.Exec(`INSERT INTO public.items VALUES (2, 'streamed', 2.50, '2026-01-02T00:00:00Z', '{}', NULL)`)
			st.Exec(`UPDATE public.items SET name = 'updated' WHERE id = 1`)
			eventually(t, 90*time.Second, "the changes applied over TLS", func() (bool, string) {
				var got string
				if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(id || ':' || name, ',' ORDER BY id), '') FROM public.items`).Scan(&got); err != nil {
					return false, err.Error()
				}
				return got == "1:updated,2:streamed", "target " + got
			})
			// pgsink's own sessions are encrypted.
			var plain, encrypted int
			if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FILTER (WHERE s.ssl)
				FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
				WHERE a.application_name = 'pgsink' AND a.datname = current_database()`).Scan(&plain, &encrypted); err != nil {
				t.Fatal(err)
			}
			if plain != 0 || encrypted == 0 {
				t.Fatalf("pgsink's sessions: %d plaintext, %d encrypted; want none plaintext", plain, encrypted)
			}
			if code, _ := p.stop(30 * time.Second); code != 0 {
				t.Fatalf("exit %d", code)
			}
			if logs := p.Logs(); strings.Contains(logs, "scram-"+st.ID) {
				t.Fatal("the SASL password appears in the logs")
			}
		})
	}
}

// TestE2ETLSRefusesAnUnverifiedServer: with a CA that did not sign the
// server's certificate, pgsink does not start applying: the TLS checks are
// real, not decoration.
func TestE2ETLSRefusesAnUnverifiedServer(t *testing.T) {
	if _, err := stacktest.LoadTLSEnv(); err != nil {
		t.Fatal(err)
	}
	plainURL := stacktest.OwnedTargetDatabase(t)
	u, err := url.Parse(plainURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("sslmode", "verify-full")
	q.Set("sslrootcert", "/etc/ssl/certs/ca-certificates.crt") // public CAs: not the stack's
	u.RawQuery = q.Encode()
	conn, err := pgx.Connect(context.Background(), u.String())
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("verify-full accepted a server certificate its CA file did not sign")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("refused, but not for the certificate: %v", err)
	}
}

// addScramUser creates a SCRAM-SHA-256 user through the admin API on the
// plaintext listener; it is removed when the test ends.
func addScramUser(t *testing.T, bootstrap, user, password string) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.AlterUserScramCredentials(ctx, []kafka.UserScramCredentialUpsertion{{
		User: user, Password: []byte(password), Salt: []byte("pgsink-" + user),
		ScramCredentialInfo: kafka.ScramCredentialInfo{Mechanism: kafka.ScramMechanismSHA256, Iterations: 8192},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for u, e := range res.Errors {
		if e.Code() != kafka.ErrNoError {
			t.Fatalf("add SCRAM user %s: %v", u, e)
		}
	}
	t.Cleanup(func() {
		admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
		if err != nil {
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.AlterUserScramCredentials(ctx, nil, []kafka.UserScramCredentialDeletion{{User: user, Mechanism: kafka.ScramMechanismSHA256}})
	})
}
