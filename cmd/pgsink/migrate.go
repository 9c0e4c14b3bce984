package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
)

const migrateUsage = `Usage: pgsink migrate --config FILE up|down|version

Manages pgsink's own tables (offsets, tombstone and outbox-event ledgers,
dead letters) in the schema postgres.schema of postgres.url:

  up       apply every migration not applied yet (idempotent)
  down     revert every migration: DROPS the stored offsets and ledgers
  version  print the applied migration version

Flags:
`

func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (required)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), migrateUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if *path == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "pgsink migrate: --config FILE and one of up, down, version are required")
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink migrate: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	m := dedup.NewMigrator(cfg.Postgres.URL, cfg.Postgres.Schema)
	switch fs.Arg(0) {
	case "up":
		err = m.Up(ctx)
	case "down":
		err = m.Down(ctx)
	case "version":
		var v uint
		var dirty bool
		if v, dirty, err = m.Version(ctx); err == nil {
			state := "clean"
			if dirty {
				state = "dirty: a migration failed half-way; fix it by hand, then force the version"
			}
			fmt.Fprintf(stdout, "schema %s: version %d (%s)\n", cfg.Postgres.Schema, v, state)
		}
	default:
		fmt.Fprintf(stderr, "pgsink migrate: unknown action %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if err != nil {
		// The URL may carry a password: report only the error, which pgx
		// writes without it.
		fmt.Fprintf(stderr, "pgsink migrate: %v\n", err)
		return 1
	}
	if fs.Arg(0) != "version" {
		fmt.Fprintf(stdout, "schema %s: migrations %s done\n", cfg.Postgres.Schema, fs.Arg(0))
	}
	return 0
}
