// Package config owns pgsink's YAML configuration: its schema, `${ENV}`
// expansion for secrets, defaults, and validation that names the file, line
// and key of every problem.
//
// It must never open a connection: checking a configuration against a live
// catalog belongs to the sink package and the `validate` command.
package config
