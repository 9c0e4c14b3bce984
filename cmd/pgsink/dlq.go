package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
)

const dlqUsage = `Usage: pgsink dlq list --config FILE [--table T] [--topic X] [--limit N]
       pgsink dlq show --config FILE ID...
       pgsink dlq retry --config FILE ID...

Works on the dead-letter table (errors.dead_letter.destination: table):
list prints one line per record that could not be applied, newest first;
show prints records in full: position, key, value, headers and the error;
retry applies records again through the normal apply path, once their cause
is fixed, each in one transaction that also removes its dead letter. Writes
are version-guarded, so a retried record older than the target row changes
nothing. A record that still fails stays, with the new error printed.

Flags:
`

func runDLQ(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (required)")
	table := fs.String("table", "", "only dead letters of this target `table`")
	topic := fs.String("topic", "", "only dead letters from this `topic`")
	limit := fs.Int("limit", 50, "list at most this many")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), dlqUsage)
		fs.PrintDefaults()
	}
	var action string
	if len(args) > 0 {
		action = args[0]
	}
	switch {
	case action == "list" || action == "show" || action == "retry":
	case action == "-h" || action == "-help" || action == "--help":
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	default:
		problem := fmt.Sprintf("unknown subcommand %q", action)
		if action == "" || strings.HasPrefix(action, "-") {
			problem = "missing subcommand" // flags come after it
		}
		fmt.Fprintf(stderr, "pgsink dlq: %s: want list, show or retry\n\n", problem)
		fs.Usage()
		return 2
	}
	if code, done := parseFlags(fs, args[1:], stdout); done {
		return code
	}
	if *path == "" || (action != "list" && fs.NArg() == 0) || (action == "list" && fs.NArg() > 0) {
		fmt.Fprintln(stderr, "pgsink dlq: --config FILE is required; show and retry take dead-letter IDs, list none")
		return 2
	}
	var ids []int64
	for _, a := range fs.Args() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "pgsink dlq show: %q is not a dead-letter ID\n", a)
			return 2
		}
		ids = append(ids, id)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink dlq: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	letters, err := readDeadLetters(ctx, cfg, dedup.DeadLetterFilter{Group: cfg.Kafka["group.id"], Fills: true, Target: *table, Topic: *topic, IDs: ids, Limit: *limit})
	if err != nil {
		fmt.Fprintf(stderr, "pgsink dlq: %v\n", err)
		return 1
	}
	if action == "list" {
		printDeadLetters(stdout, letters)
		return 0
	}
	if action == "retry" {
		failed := retryDeadLetters(ctx, cfg, letters, stdout)
		if failed > 0 || len(letters) < len(ids) {
			fmt.Fprintf(stderr, "pgsink dlq retry: %d failed, %d not found\n", failed, len(ids)-len(letters))
			return 1
		}
		return 0
	}
	for _, d := range letters {
		showDeadLetter(stdout, d)
	}
	if len(letters) < len(ids) {
		fmt.Fprintf(stderr, "pgsink dlq show: %d of %d IDs not found\n", len(ids)-len(letters), len(ids))
		return 1
	}
	return 0
}

func readDeadLetters(ctx context.Context, cfg *config.Config, f dedup.DeadLetterFilter) ([]dedup.DeadLetter, error) {
	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	return dedup.NewDeadLetters(cfg.Postgres.Schema).List(ctx, conn, f)
}

func printDeadLetters(w io.Writer, letters []dedup.DeadLetter) {
	if len(letters) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECORD\tTABLE\tCLASS\tFAILED AT\tERROR")
	for _, d := range letters {
		msg := d.Error
		if len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s[%d]@%d\t%s\t%s\t%s\t%s\n", d.ID, d.Topic, d.Partition, d.Offset, tableOf(d), d.Class,
			d.FailedAt.Format(time.RFC3339), msg)
	}
	tw.Flush()
}

// tableOf is a dead letter's target as list and show print it: a fill's
// (pgsink replay --into, --rebuild --online) says so, since retry does not
// apply it (retryDeadLetters).
func tableOf(d dedup.DeadLetter) string {
	if strings.HasPrefix(d.Group, dedup.FillGroupPrefix) {
		return d.Target + " (fill)"
	}
	return d.Target
}

func showDeadLetter(w io.Writer, d dedup.DeadLetter) {
	fmt.Fprintf(w, "dead letter %d: %s[%d]@%d\n  table:     %s\n  failed at: %s\n  class:     %s\n  error:     %s\n",
		d.ID, d.Topic, d.Partition, d.Offset, tableOf(d), d.FailedAt.Format(time.RFC3339), d.Class, d.Error)
	headers, _ := json.Marshal(d.Headers) // strings only: it cannot fail
	fmt.Fprintf(w, "  headers:   %s\n  key:       %s\n  value:     %s\n\n", headers, printable(d.Key), printable(d.Value))
}

// printable shows JSON indented, other text as is, and binary as a quoted
// Go string, so a terminal is never fed raw control bytes.
func printable(b []byte) string {
	if b == nil {
		return "(null)"
	}
	var out bytes.Buffer
	if json.Indent(&out, b, "             ", "  ") == nil {
		return out.String()
	}
	return strconv.Quote(string(b))
}
