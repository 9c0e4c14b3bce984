// Package config owns pgsink's YAML configuration: its schema, `${ENV}`
// expansion for secrets, defaults, validation that names the file, line and
// key of every problem, and the topic → table routing the runtime asks.
//
// It must never open a connection (checking against a live catalog belongs to
// sink/catalog and the `validate` command), and never render a secret.
package config
