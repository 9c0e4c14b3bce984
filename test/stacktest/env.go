package stacktest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
)

// Env holds the addresses of a running local stack, as test/stack/stack.sh
// writes them to $PGSINK_STACK_DIR/env.
type Env struct {
	AdminURL       string // PostgreSQL superuser, database postgres
	SourceURL      string // the debezium role, database source
	TargetURL      string // the pgsink role, database target
	KafkaBootstrap string
	ConnectURL     string
	// RegistryURL is the schema registry's base address (Apicurio Registry);
	// not among the required keys, so the JSON tests run against a stack
	// started before it existed. Tests of the Avro format call Registry.
	RegistryURL string
}

const startHint = "the local stack is not running: start it with `make stack-up` (or run `make test`, which does)"

var envKeys = map[string]func(*Env) *string{
	"PGSINK_ADMIN_URL":       func(e *Env) *string { return &e.AdminURL },
	"PGSINK_SOURCE_URL":      func(e *Env) *string { return &e.SourceURL },
	"PGSINK_TARGET_URL":      func(e *Env) *string { return &e.TargetURL },
	"PGSINK_KAFKA_BOOTSTRAP": func(e *Env) *string { return &e.KafkaBootstrap },
	"PGSINK_CONNECT_URL":     func(e *Env) *string { return &e.ConnectURL },
}

// Registry returns the schema registry's base address, or an error saying
// how to get one when the stack has none.
func (e Env) Registry() (string, error) {
	if e.RegistryURL == "" {
		return "", fmt.Errorf("PGSINK_REGISTRY_URL is not set: the stack has no schema registry; restart it with `make stack-down stack-up`")
	}
	return e.RegistryURL, nil
}

// LoadEnv reads the stack's addresses from the process environment, filling
// what is missing from the env file of the stack directory ($PGSINK_STACK_DIR,
// or .stack/ at the repository root), so `go test` works both under make and
// on its own.
func LoadEnv() (Env, error) {
	var e Env
	fromFile, fileErr := readEnvFile(envFilePath())
	for key, field := range envKeys {
		if v := os.Getenv(key); v != "" {
			*field(&e) = v
		} else if v := fromFile[key]; v != "" {
			*field(&e) = v
		}
	}
	e.RegistryURL = os.Getenv("PGSINK_REGISTRY_URL")
	if e.RegistryURL == "" {
		e.RegistryURL = fromFile["PGSINK_REGISTRY_URL"]
	}
	for key, field := range envKeys {
		if *field(&e) == "" {
			if fileErr != nil {
				return e, fmt.Errorf("%s is not set and %w; %s", key, fileErr, startHint)
			}
			return e, fmt.Errorf("%s is not set; %s", key, startHint)
		}
	}
	return e, nil
}

func envFilePath() string {
	if dir := os.Getenv("PGSINK_STACK_DIR"); dir != "" {
		return filepath.Join(dir, "env")
	}
	return filepath.Join(repoRoot(), ".stack", "env")
}

// repoRoot finds the module root by walking up from the working directory,
// which `go test` sets to the package's folder.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// readEnvFile parses the `export KEY='value'` lines stack.sh writes.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the stack's env file: %w", err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vars[key] = strings.Trim(value, `'"`)
	}
	return vars, sc.Err()
}

// CheckPostgres verifies that PostgreSQL answers, for tests that need only it.
func (e Env) CheckPostgres(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.AdminURL)
	if err != nil {
		return fmt.Errorf("postgres at %s: %w\n%s", redactURL(e.AdminURL), err, startHint)
	}
	return conn.Close(ctx)
}

// Check verifies that every service answers, so a test fails at once with a
// message that says what is down rather than timing out later.
func (e Env) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var errs []error
	conn, err := pgx.Connect(ctx, e.AdminURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("postgres at %s: %w", redactURL(e.AdminURL), err))
	} else {
		conn.Close(ctx)
	}
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": e.KafkaBootstrap})
	if err != nil {
		errs = append(errs, fmt.Errorf("kafka admin client: %w", err))
	} else {
		// librdkafka retries an unreachable broker until the deadline: a
		// running broker answers in milliseconds.
		kctx, kcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := admin.ClusterID(kctx)
		kcancel()
		admin.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("kafka at %s: %w", e.KafkaBootstrap, err))
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ConnectURL+"/connector-plugins", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		errs = append(errs, fmt.Errorf("kafka connect at %s: %w", e.ConnectURL, err))
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("kafka connect at %s: GET /connector-plugins answered %s", e.ConnectURL, resp.Status))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\n%s", err, startHint)
	}
	return nil
}

// redactURL drops the password from a connection URL for messages.
func redactURL(raw string) string {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
