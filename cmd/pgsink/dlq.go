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

// deadLetter is one row of the dead-letter table.
type deadLetter struct {
	ID        int64           `json:"id"`
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Target    string          `json:"target,omitempty"`
	Key       []byte          `json:"-"`
	Value     []byte          `json:"-"`
	Headers   json.RawMessage `json:"headers"`
	Error     string          `json:"error"`
	Class     string          `json:"error_class"`
	FailedAt  time.Time       `json:"failed_at"`
}

func runDLQ(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show" && args[0] != "retry" && args[0] != "-h" && args[0] != "--help") {
		fmt.Fprint(stderr, dlqUsage)
		return 2
	}
	action := args[0]
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
	if action == "-h" || action == "--help" {
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
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
	letters, err := readDeadLetters(ctx, cfg, *table, *topic, ids, *limit)
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

func readDeadLetters(ctx context.Context, cfg *config.Config, table, topic string, ids []int64, limit int) ([]deadLetter, error) {
	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	where := []string{"group_id = $1"}
	args := []any{cfg.Kafka["group.id"]}
	if table != "" {
		args = append(args, table)
		where = append(where, fmt.Sprintf("target = $%d", len(args)))
	}
	if topic != "" {
		args = append(args, topic)
		where = append(where, fmt.Sprintf("topic = $%d", len(args)))
	}
	if len(ids) > 0 {
		args = append(args, ids)
		where = append(where, fmt.Sprintf("id = ANY($%d)", len(args)))
	} else {
		args = append(args, limit)
	}
	query := `SELECT id, topic, partition, "offset", coalesce(target, ''), key, value, coalesce(headers, '[]'), error, error_class, failed_at
		FROM ` + pgx.Identifier{cfg.Postgres.Schema, "dead_letters"}.Sanitize() + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC`
	if len(ids) == 0 {
		query += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (deadLetter, error) {
		var d deadLetter
		err := r.Scan(&d.ID, &d.Topic, &d.Partition, &d.Offset, &d.Target, &d.Key, &d.Value, &d.Headers, &d.Error, &d.Class, &d.FailedAt)
		return d, err
	})
}

func printDeadLetters(w io.Writer, letters []deadLetter) {
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
		fmt.Fprintf(tw, "%d\t%s[%d]@%d\t%s\t%s\t%s\t%s\n", d.ID, d.Topic, d.Partition, d.Offset, d.Target, d.Class,
			d.FailedAt.Format(time.RFC3339), msg)
	}
	tw.Flush()
}

func showDeadLetter(w io.Writer, d deadLetter) {
	fmt.Fprintf(w, "dead letter %d: %s[%d]@%d\n  table:     %s\n  failed at: %s\n  class:     %s\n  error:     %s\n",
		d.ID, d.Topic, d.Partition, d.Offset, d.Target, d.FailedAt.Format(time.RFC3339), d.Class, d.Error)
	fmt.Fprintf(w, "  headers:   %s\n  key:       %s\n  value:     %s\n\n", d.Headers, printable(d.Key), printable(d.Value))
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
