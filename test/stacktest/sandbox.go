package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pgsink/pgsink/docker"
)

// Sandbox is one test's private corner of the stack: a fresh source database
// owned by the debezium role, and a topic prefix no other test uses. The
// connectors it registers, their replication slots and their topics are
// removed by Close.
type Sandbox struct {
	Env     Env
	Connect *Connect
	// ID names everything the sandbox creates: the database, the topic
	// prefix, and (suffixed) connectors, slots and publications.
	ID          string
	SourceDB    string
	SourceURL   string // the debezium role on SourceDB
	TopicPrefix string

	connectors []string
}

var unsafeIDChars = regexp.MustCompile(`[^a-z0-9_]+`)

// NewID returns a short identifier that is valid as a database, slot and
// topic name: the lower-cased hint (a test name) and random hex.
func NewID(hint string) string {
	hint = strings.Trim(unsafeIDChars.ReplaceAllString(strings.ToLower(hint), "_"), "_")
	if len(hint) > 24 {
		hint = hint[:24]
	}
	return "pgs_" + hint + "_" + randomHex(4)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewSandbox creates the sandbox's source database.
func NewSandbox(ctx context.Context, env Env, id string) (*Sandbox, error) {
	src, err := url.Parse(env.SourceURL)
	if err != nil {
		return nil, fmt.Errorf("stacktest: PGSINK_SOURCE_URL: %w", err)
	}
	owner := src.User.Username()
	if err := CreateDatabase(ctx, env.AdminURL, id, owner); err != nil {
		return nil, err
	}
	sourceURL, err := WithDatabase(env.SourceURL, id)
	if err != nil {
		return nil, err
	}
	return &Sandbox{
		Env:         env,
		Connect:     NewConnect(env.ConnectURL),
		ID:          id,
		SourceDB:    id,
		SourceURL:   sourceURL,
		TopicPrefix: id,
	}, nil
}

// DebeziumPostgres returns the connector configuration pgsink's tests start
// from: docker/connectors/demo-tables.json (pgoutput, a filtered publication
// since the debezium role owns the tables but is no superuser, JSON with
// schemas) on sourceURL with the given slot and topic prefix. The demo's table
// selection and skipped.operations are left out: each test chooses its
// tables, and keeps Debezium's default of skipping truncates unless it asks.
func DebeziumPostgres(sourceURL, slot, topicPrefix string) (map[string]string, error) {
	cfg, err := ConnectorFile(docker.TablesConnector, Run{SourceURL: sourceURL, Slot: slot, TopicPrefix: topicPrefix})
	if err != nil {
		return nil, err
	}
	delete(cfg, "table.include.list")
	delete(cfg, "skipped.operations")
	return cfg, nil
}

// RegisterDebezium registers a Debezium PostgreSQL connector on the sandbox's
// database, overrides applied on top of DebeziumPostgres, and waits until it
// runs. It returns the connector's name, which is also its slot's and its
// publication's: ID, name and a random suffix, because Connect keeps a deleted
// connector's offsets and a reused name would resume from them.
func (s *Sandbox) RegisterDebezium(ctx context.Context, name string, overrides map[string]string) (string, error) {
	return s.RegisterDebeziumWithout(ctx, name, nil, overrides)
}

// RegisterDebeziumWithout is RegisterDebezium with the keys of without
// removed from DebeziumPostgres before the overrides apply: Debezium's
// defaults for settings the shipped file sets.
func (s *Sandbox) RegisterDebeziumWithout(ctx context.Context, name string, without []string, overrides map[string]string) (string, error) {
	full := s.ID + "_" + name + "_" + randomHex(3)
	cfg, err := DebeziumPostgres(s.SourceURL, full, s.TopicPrefix)
	if err != nil {
		return "", err
	}
	for _, k := range without {
		delete(cfg, k)
	}
	for k, v := range overrides {
		cfg[k] = v
	}
	s.connectors = append(s.connectors, full)
	if err := s.Connect.Put(ctx, full, cfg); err != nil {
		return "", err
	}
	if err := s.Connect.WaitRunning(ctx, full, 90*time.Second); err != nil {
		return "", err
	}
	return full, nil
}

// Close deletes the sandbox's connectors, then its database with their
// replication slots, then its topics. It tries every step and reports all
// failures.
func (s *Sandbox) Close(ctx context.Context) error {
	var errs []error
	for _, name := range s.connectors {
		errs = append(errs, s.Connect.Delete(ctx, name))
	}
	errs = append(errs, DropDatabase(ctx, s.Env.AdminURL, s.SourceDB))
	errs = append(errs, DeleteTopics(ctx, s.Env.KafkaBootstrap, s.TopicPrefix))
	return errors.Join(errs...)
}

// OutboxRouter returns the connector overrides that stream public.outbox
// through Debezium's Outbox Event Router, as pgsink's tests, fixtures and
// demo use it: docker/connectors/demo-outbox.json without its database and
// slot, so topic <topicPrefix>.outbox.event.<aggregatetype>, key the
// aggregate id, header `id` the event id, header `eventType` the type, and
// the JSON payload expanded. It panics if the embedded file is broken, which
// the docker package's tests rule out.
func OutboxRouter(topicPrefix string) map[string]string {
	cfg, err := docker.Connector(docker.OutboxConnector)
	if err == nil {
		err = retarget(cfg, topicPrefix)
	}
	if err != nil {
		panic(fmt.Sprintf("stacktest: %v", err))
	}
	for _, k := range runKeys {
		delete(cfg, k)
	}
	return cfg
}
