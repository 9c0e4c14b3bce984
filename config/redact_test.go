package config

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "postgres://u:pw@h:5432/db?sslmode=disable", want: "postgres://u:REDACTED@h:5432/db?sslmode=disable"},
		{in: "postgresql://u@h/db", want: "postgresql://u@h/db"},
		{in: "postgres://u@h/db?password=pw&sslpassword=k", want: "postgres://u@h/db?password=REDACTED&sslpassword=REDACTED"},
		{in: "host=h user=u password=pw dbname=db", want: "host=h user=u password=REDACTED dbname=db"},
		{in: "host=h password = 'p w\\'x' dbname=db", want: "host=h password = REDACTED dbname=db"},
		{in: "mysql://u:pw@h/db", want: "REDACTED"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsSecretKafkaKey(t *testing.T) {
	for key, want := range map[string]bool{
		"sasl.password": true, "sasl.username": true, "sasl.oauthbearer.client.secret": true,
		"ssl.key.password": true, "ssl.key.pem": true, "ssl.keystore.password": true,
		"bootstrap.servers": false, "group.id": false, "ssl.ca.location": false, "security.protocol": false,
	} {
		if got := IsSecretKafkaKey(key); got != want {
			t.Errorf("IsSecretKafkaKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestRenderHidesSecrets checks that no secret value of the environment
// reaches the rendering, while the rest of the configuration does.
func TestRenderHidesSecrets(t *testing.T) {
	cfg, problems := parse(t, `kafka:
  bootstrap.servers: 127.0.0.1:9092
  group.id: sink
  sasl.username: pgsink
  sasl.password: ${KAFKA_PASSWORD}
  ssl.key.password: ${KAFKA_PASSWORD}
postgres:
  url: ${PGSINK_DATABASE_URL}
debezium:
  connect_url: https://connect.example:8443
  user: pgsink
  password: ${KAFKA_PASSWORD}
encoding: avro
schema_registry:
  url: https://registry.example:8081
  user: registry
  password: ${KAFKA_PASSWORD}
tables:
  - topic: a
    target: public.a
`)
	if problems != nil {
		t.Fatalf("want a valid configuration, got:\n%v", problems)
	}
	out, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"kafka-s3cret", "s3cret-pw", "username: pgsink"} {
		if strings.Contains(out, secret) {
			t.Errorf("rendering contains the secret %q:\n%s", secret, out)
		}
	}
	for _, kept := range []string{"bootstrap.servers: 127.0.0.1:9092", "url: postgres://pgsink:REDACTED@db.example:5432/target", "max_bytes: 16MiB", "topic: sink.dlq", "connect_url: https://connect.example:8443", "password: REDACTED",
		"url: https://registry.example:8081", "encoding: avro"} {
		if !strings.Contains(out, kept) {
			t.Errorf("rendering lacks %q:\n%s", kept, out)
		}
	}
	if cfg.Kafka["sasl.password"] != "kafka-s3cret" || !strings.Contains(cfg.Postgres.URL, "s3cret-pw") {
		t.Errorf("Render changed the configuration itself: kafka %v, url %q", cfg.Kafka, cfg.Postgres.URL)
	}
}
