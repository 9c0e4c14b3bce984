// Command pgsink applies Debezium change events from Kafka to PostgreSQL with
// an exactly-once effect. See README.md.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{name: "version", summary: "print the version, commit and library versions", run: runVersion},
		{name: "run", summary: "consume the configured topics and apply them to PostgreSQL", run: runRun},
		{name: "replay", summary: "rewind a table's or a topic's positions to apply records again", run: runReplay},
		{name: "verify", summary: "compare source tables with their targets; --repair heals drift through Debezium", run: runVerify},
		{name: "status", summary: "positions, lag, owners and dead letters per partition", run: runStatus},
		{name: "dlq", summary: "list, show and retry records in the dead-letter table", run: runDLQ},
		{name: "migrate", summary: "create or upgrade pgsink's own tables (up, down, version)", run: runMigrate},
		{name: "validate", summary: "check a configuration file and, unless --offline, the target catalog", run: runValidate},
		{name: "healthcheck", summary: "exit 0 if a URL (the container's /readyz) answers 2xx, else 1", run: runHealthcheck},
	}
}

// run dispatches to a subcommand and returns the process exit code: 0 on
// success, 1 when the command failed, 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "-version", "--version":
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "pgsink: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `pgsink applies Debezium change events from Kafka to PostgreSQL, exactly once.

Usage:
  pgsink <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'pgsink <command> --help' for a command's flags.
`)
}
