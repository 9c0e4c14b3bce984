package config

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// redacted replaces a secret in every rendering meant for people.
const redacted = "REDACTED"

// IsSecretKafkaKey reports whether a librdkafka property holds a secret or
// an identity: passwords and secrets, every sasl.* property and the private
// key properties ssl.key.*.
func IsSecretKafkaKey(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") ||
		strings.HasPrefix(k, "sasl.") || strings.HasPrefix(k, "ssl.key.")
}

var dsnPassword = regexp.MustCompile(`(?i)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactURL hides the passwords of a PostgreSQL connection string, in URL
// form (postgres://user:pw@host/db?sslpassword=…) or keyword form
// (host=… password=…).
func RedactURL(conn string) string {
	if u, err := url.Parse(conn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
		q := u.Query()
		for key := range q {
			if strings.Contains(strings.ToLower(key), "password") {
				q.Set(key, redacted)
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(conn, "://") {
		return redacted // not parsable as a URL: it may hide a password anywhere
	}
	return dsnPassword.ReplaceAllString(conn, "${1}"+redacted)
}

// Redacted returns a copy of c whose secrets are replaced, for logs.
func (c *Config) Redacted() *Config {
	out := *c
	out.Postgres.URL = RedactURL(c.Postgres.URL)
	if out.Debezium.Password != "" {
		out.Debezium.Password = redacted
	}
	if out.SchemaRegistry.Password != "" {
		out.SchemaRegistry.Password = redacted
	}
	out.Kafka = maps.Clone(c.Kafka)
	for key := range out.Kafka {
		if IsSecretKafkaKey(key) {
			out.Kafka[key] = redacted
		}
	}
	return &out
}

// Render prints the effective configuration, defaults included and secrets
// redacted, as YAML.
func (c *Config) Render() (string, error) {
	data, err := yaml.Marshal(c.Redacted())
	if err != nil {
		return "", fmt.Errorf("config: render: %w", err)
	}
	return string(data), nil
}

// MarshalYAML renders a duration as written ("100ms").
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalYAML renders a size with the largest exact binary unit ("16MiB").
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalYAML renders a name as written in SQL.
func (t TableName) MarshalYAML() (any, error) { return t.String(), nil }

// MarshalYAML renders the pattern as written.
func (p Pattern) MarshalYAML() (any, error) { return p.Source, nil }

// MarshalYAML renders the path as written.
func (p JSONPath) MarshalYAML() (any, error) { return p.Source, nil }
