// Package docker holds what runs pgsink beside Debezium in containers: the
// Dockerfile, the compose file, and the Debezium connector files that compose
// registers. It embeds those connector files so that the local stack's tests
// and the demo register the very same settings; it must never hold
// deployment logic of its own. Its tests check the files statically, since
// no Docker engine is needed to run them.
package docker
