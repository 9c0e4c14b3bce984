package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink/catalog"
)

// catalogTimeout bounds the whole online check, connection included, so a
// firewalled database fails the command instead of hanging it.
const catalogTimeout = 30 * time.Second

const validateUsage = `Usage: pgsink validate --config FILE [--offline] [--no-migrate] [--print]

Checks a configuration file and prints every problem as
FILE:LINE: KEY: MESSAGE, then exits 1 if there was any.

Without --offline it also connects to postgres.url and checks each table
against the target catalog: the table exists (unless schema.create), the key
is its primary key or a unique index, every mapped column and the version and
soft-delete columns exist, and the role has the privileges the sink needs;
and that the role can migrate pgsink's own tables at start as pgsink run
does (CREATE on the database or the schema, ownership of the tables), or,
with --no-migrate, that an owner migrated them to this version and the role
may read and write them.

Flags:
`

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (required)")
	offline := fs.Bool("offline", false, "check the file only; do not connect to PostgreSQL")
	noMigrate := fs.Bool("no-migrate", false, "check as for pgsink run --no-migrate: pgsink's tables migrated by their owner, not by this role")
	printConfig := fs.Bool("print", false, "print the effective configuration, defaults filled in and secrets redacted")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), validateUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "pgsink validate: --config FILE is required and no arguments are taken")
		fs.Usage()
		return 2
	}

	cfg, err := config.Load(*path)
	var problems config.Problems
	switch {
	case errors.As(err, &problems):
		return report(stdout, stderr, *path, problems)
	case err != nil:
		fmt.Fprintf(stderr, "pgsink validate: %v\n", err)
		return 1
	}
	if !*offline {
		ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
		defer cancel()
		problems = checkCatalog(ctx, cfg, !*noMigrate)
	}
	if *printConfig {
		rendered, err := cfg.Render()
		if err != nil {
			fmt.Fprintf(stderr, "pgsink validate: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, rendered)
	}
	if len(problems) > 0 {
		return report(stdout, stderr, *path, problems)
	}
	checked := "target catalog checked"
	if *offline {
		checked = "offline: target catalog not checked"
	}
	fmt.Fprintf(stdout, "%s: valid, %d table(s) (%s)\n", *path, len(cfg.Tables), checked)
	return 0
}

func report(stdout, stderr io.Writer, path string, problems config.Problems) int {
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	fmt.Fprintf(stderr, "pgsink validate: %s: %d problem(s)\n", path, len(problems))
	return 1
}

// checkCatalog compares every table with the target database, and checks
// what pgsink's own tables need (migrate: as run migrates them at start). A
// connection failure is itself a problem, reported at postgres.url.
func checkCatalog(ctx context.Context, cfg *config.Config, migrate bool) config.Problems {
	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	if err != nil {
		return config.Problems{cfg.Problem("postgres.url", "cannot connect to %s: %s", config.RedactURL(cfg.Postgres.URL), oneLine(err))}
	}
	defer conn.Close(context.Background())
	var problems config.Problems
	access, err := dedup.AccessProblems(ctx, conn, cfg.Postgres.Schema, migrate)
	if err != nil {
		problems = append(problems, cfg.Problem("postgres.schema", "%s", oneLine(err)))
	}
	for _, a := range access {
		problems = append(problems, cfg.Problem("postgres.schema", "%s", a))
	}
	for _, t := range cfg.Tables {
		target, err := catalog.Read(ctx, conn, t.Target.Schema, t.Target.Name)
		if err != nil {
			problems = append(problems, cfg.Problem(t.Path+".target", "%s", oneLine(err)))
			continue
		}
		for _, f := range catalog.Check(t, target) {
			problems = append(problems, cfg.Problem(f.Path, "%s", f.Message))
		}
	}
	return problems.Sorted()
}

// oneLine folds a multi-line driver error into the one line a problem gets.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
