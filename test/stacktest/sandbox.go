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
// from: pgoutput, a filtered publication (the debezium role owns the tables
// but is no superuser), JSON with schemas, and the given slot and topic prefix.
func DebeziumPostgres(sourceURL, slot, topicPrefix string) (map[string]string, error) {
	u, err := url.Parse(sourceURL)
	if err != nil {
		return nil, fmt.Errorf("stacktest: source URL: %w", err)
	}
	password, _ := u.User.Password()
	return map[string]string{
		"connector.class":                "io.debezium.connector.postgresql.PostgresConnector",
		"tasks.max":                      "1",
		"plugin.name":                    "pgoutput",
		"database.hostname":              u.Hostname(),
		"database.port":                  u.Port(),
		"database.user":                  u.User.Username(),
		"database.password":              password,
		"database.dbname":                strings.TrimPrefix(u.Path, "/"),
		"topic.prefix":                   topicPrefix,
		"slot.name":                      slot,
		"publication.name":               slot,
		"publication.autocreate.mode":    "filtered",
		"snapshot.mode":                  "initial",
		"key.converter":                  "org.apache.kafka.connect.json.JsonConverter",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"key.converter.schemas.enable":   "true",
		"value.converter.schemas.enable": "true",
		"poll.interval.ms":               "100",
	}, nil
}

// RegisterDebezium registers a Debezium PostgreSQL connector on the sandbox's
// database, overrides applied on top of DebeziumPostgres, and waits until it
// runs. It returns the connector's name, which is also its slot's and its
// publication's: ID, name and a random suffix, because Connect keeps a deleted
// connector's offsets and a reused name would resume from them.
func (s *Sandbox) RegisterDebezium(ctx context.Context, name string, overrides map[string]string) (string, error) {
	full := s.ID + "_" + name + "_" + randomHex(3)
	cfg, err := DebeziumPostgres(s.SourceURL, full, s.TopicPrefix)
	if err != nil {
		return "", err
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
// demo use it: topic <topicPrefix>.outbox.event.<aggregatetype>, key the
// aggregate id, header `id` the event id, header `eventType` the type, and
// the JSON payload expanded.
func OutboxRouter(topicPrefix string) map[string]string {
	return map[string]string{
		"table.include.list":                                  "public.outbox",
		"topic.prefix":                                        topicPrefix + "_outbox",
		"transforms":                                          "outbox",
		"transforms.outbox.type":                              "io.debezium.transforms.outbox.EventRouter",
		"transforms.outbox.route.by.field":                    "aggregatetype",
		"transforms.outbox.route.topic.replacement":           topicPrefix + ".outbox.event.${routedByValue}",
		"transforms.outbox.table.field.event.id":              "id",
		"transforms.outbox.table.field.event.key":             "aggregateid",
		"transforms.outbox.table.field.event.payload":         "payload",
		"transforms.outbox.table.expand.json.payload":         "true",
		"transforms.outbox.table.fields.additional.placement": "type:header:eventType",
		// The expanded payload needs the JSON converter to infer a schema.
		"value.converter.delegate.converter.type": "org.apache.kafka.connect.json.JsonConverter",
	}
}
