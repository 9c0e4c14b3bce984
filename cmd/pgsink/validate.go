package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink/catalog"
	"github.com/pgsink/pgsink/upstream"
)

// catalogTimeout bounds the whole online check, connection included, so a
// firewalled database fails the command instead of hanging it.
const catalogTimeout = 30 * time.Second

const validateUsage = `Usage: pgsink validate --config FILE [--offline] [--no-migrate] [--print] [--topics T1,T2]

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

With debezium.connect_url it also reads the Debezium connectors from Kafka
Connect and reports, at the line of each table, every connector setting
that loses the data of one of its target columns (error) or may (warning).
Warnings are printed but do not change the exit code.

A table whose target is a template (${schema}.${table}) is listed with what
it resolves to for each topic: the topics given with --topics, else, unless
--offline, the topics of the Kafka cluster that a table claims. A topic
that two rules of equal precedence claim, or for which a template yields an
invalid or ambiguous name, is a problem at the rule's line; each derived
target is checked against the catalog like a fixed one.

Flags:
`

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (required)")
	offline := fs.Bool("offline", false, "check the file only; do not connect to PostgreSQL or Kafka Connect")
	noMigrate := fs.Bool("no-migrate", false, "check as for pgsink run --no-migrate: pgsink's tables migrated by their owner, not by this role")
	printConfig := fs.Bool("print", false, "print the effective configuration, defaults filled in and secrets redacted")
	topicList := fs.String("topics", "", "comma-separated `topics` to resolve the table templates for (default: the cluster's, unless --offline)")
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
		return report(stdout, stderr, *path, problems, nil, nil)
	case err != nil:
		fmt.Fprintf(stderr, "pgsink validate: %v\n", err)
		return 1
	}
	var warnings, notes config.Problems
	topics := splitTopics(*topicList)
	if len(topics) == 0 && !*offline && hasTemplates(cfg) {
		if topics, err = clusterTopics(cfg); err != nil {
			warnings = append(warnings, cfg.Problem("kafka.bootstrap.servers", "cannot list the topics the table templates resolve for: %s", oneLine(err)))
		}
	}
	resolved := resolveRoutes(cfg, topics)
	if !*offline {
		ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
		defer cancel()
		var targets map[string]*catalog.Table
		problems, targets = checkCatalog(ctx, cfg, !*noMigrate, resolved.derived)
		problems = append(problems, checkTransactionTopic(cfg)...)
		if cfg.Debezium.ConnectURL != "" {
			errs, warns, upstreamNotes := validateUpstream(ctx, cfg, targets)
			problems, warnings, notes = append(problems, errs...).Sorted(), warns, upstreamNotes
		}
	}
	if *printConfig {
		rendered, err := cfg.Render()
		if err != nil {
			fmt.Fprintf(stderr, "pgsink validate: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, rendered)
	}
	for _, line := range resolved.lines {
		fmt.Fprintln(stdout, line)
	}
	problems = append(problems, resolved.problems...).Sorted()
	if len(problems) > 0 {
		return report(stdout, stderr, *path, problems, warnings, notes)
	}
	for _, w := range append(warnings, notes...) {
		fmt.Fprintln(stdout, w)
	}
	checked := "target catalog checked"
	switch {
	case *offline:
		checked = "offline: target catalog not checked"
	case cfg.Debezium.ConnectURL != "":
		checked = fmt.Sprintf("target catalog and Debezium connectors checked, %d warning(s)", len(warnings))
		if len(notes) > 0 {
			checked += fmt.Sprintf(", %d note(s)", len(notes))
		}
	}
	fmt.Fprintf(stdout, "%s: valid, %d table(s) (%s)\n", *path, len(cfg.Tables), checked)
	return 0
}

// report prints problems and warnings in line order, then the notes, and
// exits 1: only problems fail the command.
func report(stdout, stderr io.Writer, path string, problems, warnings, notes config.Problems) int {
	for _, p := range append(slices.Clone(problems), warnings...).Sorted() {
		fmt.Fprintln(stdout, p)
	}
	for _, n := range notes {
		fmt.Fprintln(stdout, n)
	}
	if len(warnings) > 0 {
		fmt.Fprintf(stderr, "pgsink validate: %s: %d problem(s), %d warning(s)\n", path, len(problems), len(warnings))
	} else {
		fmt.Fprintf(stderr, "pgsink validate: %s: %d problem(s)\n", path, len(problems))
	}
	return 1
}

// validateUpstream runs the upstream check: its errors are problems, its
// warnings and notes (settings that cost, not lose) only printed. Connect not answering is a problem at
// debezium.connect_url, as the database not answering is at postgres.url.
func validateUpstream(ctx context.Context, cfg *config.Config, targets map[string]*catalog.Table) (errs, warnings, notes config.Problems) {
	findings, err := checkUpstream(ctx, cfg, targets)
	if err != nil {
		return config.Problems{cfg.Problem("debezium.connect_url", "%s", oneLine(err))}, nil, nil
	}
	for _, f := range findings {
		switch f.Severity {
		case upstream.Error:
			errs = append(errs, upstreamProblem(cfg, f))
		case upstream.Info:
			notes = append(notes, upstreamProblem(cfg, f))
		default:
			warnings = append(warnings, upstreamProblem(cfg, f))
		}
	}
	return errs, warnings.Sorted(), notes.Sorted()
}

// checkCatalog compares every table with the target database, and checks
// what pgsink's own tables need (migrate: as run migrates them at start). A
// connection failure is itself a problem, reported at postgres.url. It
// returns the targets it read, by the key path of their table. A templated
// table is checked through the targets derived for it.
func checkCatalog(ctx context.Context, cfg *config.Config, migrate bool, derived []*config.Table) (config.Problems, map[string]*catalog.Table) {
	targets := map[string]*catalog.Table{}
	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	if err != nil {
		return config.Problems{cfg.Problem("postgres.url", "cannot connect to %s: %s", config.RedactURL(cfg.Postgres.URL), oneLine(err))}, targets
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
	var tables []config.Table
	for _, t := range cfg.Tables {
		if t.Target.Template == nil {
			tables = append(tables, t)
		}
	}
	for _, t := range derived {
		tables = append(tables, *t)
	}
	for _, t := range tables {
		target, err := catalog.Read(ctx, conn, t.Target.Schema, t.Target.Name)
		if err != nil {
			problems = append(problems, cfg.Problem(t.Path+".target", "%s: %s", t.Target.TableName, oneLine(err)))
			continue
		}
		prefix := ""
		if t.Target.Template != nil {
			// Several targets derive from one entry: say which.
			prefix = "derived target " + t.Target.TableName.String() + ": "
			targets[upstream.DerivedKey(t.Target.TableName)] = target
		} else {
			targets[t.Path] = target
		}
		for _, f := range catalog.Check(t, target) {
			problems = append(problems, cfg.Problem(f.Path, "%s%s", prefix, f.Message))
		}
	}
	return problems.Sorted(), targets
}

// oneLine folds a multi-line driver error into the one line a problem gets.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
