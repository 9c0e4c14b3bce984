package stacktest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func clearEnv(t *testing.T) {
	for key := range envKeys {
		t.Setenv(key, "")
	}
	t.Setenv("PGSINK_REGISTRY_URL", "") // optional, so not among envKeys
}

func TestLoadEnvFromFile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	t.Setenv("PGSINK_STACK_DIR", dir)
	file := `# comment
export PGSINK_ADMIN_URL='postgres://postgres@127.0.0.1:1/postgres'
export PGSINK_SOURCE_URL='postgres://debezium@127.0.0.1:1/source'
export PGSINK_TARGET_URL='postgres://pgsink@127.0.0.1:1/target'
export PGSINK_KAFKA_BOOTSTRAP='127.0.0.1:2'
export PGSINK_CONNECT_URL='http://127.0.0.1:3'
export PGSINK_REGISTRY_URL='http://127.0.0.1:4'
`
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGSINK_KAFKA_BOOTSTRAP", "127.0.0.1:9") // the process environment wins
	env, err := LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		AdminURL:       "postgres://postgres@127.0.0.1:1/postgres",
		SourceURL:      "postgres://debezium@127.0.0.1:1/source",
		TargetURL:      "postgres://pgsink@127.0.0.1:1/target",
		KafkaBootstrap: "127.0.0.1:9",
		ConnectURL:     "http://127.0.0.1:3",
		RegistryURL:    "http://127.0.0.1:4",
	}
	if env != want {
		t.Fatalf("LoadEnv() = %+v, want %+v", env, want)
	}
}

func TestLoadEnvMissingSaysHowToStart(t *testing.T) {
	clearEnv(t)
	t.Setenv("PGSINK_STACK_DIR", t.TempDir())
	_, err := LoadEnv()
	if err == nil || !strings.Contains(err.Error(), "make stack-up") {
		t.Fatalf("LoadEnv() error = %v, want one that says to run make stack-up", err)
	}
}

// TestCheckFailsWhenServicesAreDown points at ports nothing listens on: the
// error must name each service and say how to start the stack.
func TestCheckFailsWhenServicesAreDown(t *testing.T) {
	env := Env{
		AdminURL:       "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=2",
		KafkaBootstrap: "127.0.0.1:1",
		ConnectURL:     "http://127.0.0.1:1",
	}
	err := env.Check(context.Background())
	if err == nil {
		t.Fatal("Check() = nil with every service down")
	}
	for _, want := range []string{"postgres at", "kafka at", "kafka connect at", "make stack-up"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check() error does not mention %q:\n%v", want, err)
		}
	}
}

func TestNewIDIsAValidIdentifier(t *testing.T) {
	id := NewID("TestSomething/with Sub-Test ünïcode and a very long name indeed")
	if len(id) > 40 || unsafeIDChars.MatchString(id) {
		t.Fatalf("NewID gave %q: want at most 40 characters of [a-z0-9_]", id)
	}
	if a, b := NewID("x"), NewID("x"); a == b {
		t.Fatal("NewID is not unique")
	}
}
