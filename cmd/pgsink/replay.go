package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
)

const replayUsage = `Usage: pgsink replay --config FILE (--table T | --topic X) [--partition N]
                     --from earliest|offset:N|timestamp:RFC3339 [--rebuild] [--wait]
       pgsink replay --config FILE --table T --rebuild --online [--max-lag N]
       pgsink replay --config FILE --table T --into T_AT [--until RFC3339|lsn:X/Y]

Rewinds the stored positions of a table's topics (or of one topic) so the
records from --from on are applied again. It goes through the same epoch
fencing as running instances: they see the new epoch, re-claim the partition
and continue from the rewound position, so it is safe while they run. A
partition stopped on an error (a record under errors.tolerance none, a
position Kafka no longer holds) takes the rewind too, and applies again
without a restart. Writes are version-guarded, so replaying over a live
table never regresses a row.

Under apply.consistency: transaction, --topic may be the transaction topic
(apply.transaction.topic): the resolver's position moves back, and it
passes over the ENDs of transactions it applied already. Refused past its
position (ENDs would be skipped) and before retention.tombstones (their
transactions may no longer be recorded as applied).

--rebuild empties the target table and its tombstone and outbox-event ledger
entries first, in the same transaction, to rebuild it from a compacted topic.
A position Kafka no longer holds is refused.

--rebuild --online builds a shadow of the table from the earliest offset
while running instances keep applying the table, then swaps the two in one
transaction (ledgers and positions with them): readers never see it empty
or partial. Killed, it resumes when run again.

--into fills another table, created with T's definition, with T's state
as of --until: every change committed at or before that source commit
time, or every change before that WAL position. Refused when Kafka no
longer holds the beginning of T's topics. Killed, it resumes when run again.
Under apply.consistency: transaction the copy holds the source transactions
the running instances' resolver had applied when it began, each whole (an
lsn: bound places a transaction by its commit), and none after: each
partition ends at its first record of another, and the report says how
many did.

Flags:
`

func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (required)")
	table := fs.String("table", "", "replay every topic of this target `table` (as in the configuration, e.g. public.orders)")
	topic := fs.String("topic", "", "replay this `topic` only")
	partition := new(int)
	*partition = -1 // every partition, shown as "all"
	fs.Var((*allOrOne)(partition), "partition", "replay partition `N` only")
	from := fs.String("from", "", "earliest, offset:N or timestamp:RFC3339 (required)")
	rebuild := fs.Bool("rebuild", false, "empty the target table and its ledgers first")
	wait := fs.Bool("wait", false, "show progress until the replayed range is applied")
	timeout := fs.Duration("wait-timeout", 0, "with --wait, give up after this long (0: never)")
	online := fs.Bool("online", false, "with --rebuild: build a shadow table and swap it in, the table staying live")
	maxLag := fs.Int64("max-lag", 1000, "with --online: swap once the shadow trails the live table by at most `N` records")
	into := fs.String("into", "", "fill this new `table` with --table's state as of --until, instead of replaying into --table")
	until := fs.String("until", "", "with --into: a source commit time (RFC3339) or lsn:X/Y; default: the records Kafka holds now")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), replayUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	fill := *into != "" || *online
	if fill && (*from == "" || *from == "earliest") {
		*from = "earliest" // a fill always starts at the beginning
	}
	if *path == "" || *from == "" || (*table == "") == (*topic == "") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "pgsink replay: --config, --from and exactly one of --table or --topic are required")
		fs.Usage()
		return 2
	}
	if *rebuild && *table == "" {
		fmt.Fprintln(stderr, "pgsink replay: --rebuild needs --table: a topic alone does not say which table to empty")
		return 2
	}
	switch {
	case fill && (*table == "" || *partition >= 0 || *from != "earliest" || *wait):
		fmt.Fprintln(stderr, "pgsink replay: --into and --online take --table, no --topic, --partition, --wait or --from other than earliest: they fill a whole table from the beginning")
		return 2
	case *online && (!*rebuild || *into != ""):
		fmt.Fprintln(stderr, "pgsink replay: --online goes with --rebuild, and not with --into")
		return 2
	case *into != "" && *rebuild:
		fmt.Fprintln(stderr, "pgsink replay: --into fills another table: --rebuild does not apply")
		return 2
	case *until != "" && *into == "":
		fmt.Fprintln(stderr, "pgsink replay: --until goes with --into")
		return 2
	case *maxLag < 0:
		fmt.Fprintln(stderr, "pgsink replay: --max-lag must be >= 0")
		return 2
	}
	req := replayRequest{table: *table, topic: *topic, partition: *partition, rebuild: *rebuild, wait: *wait, timeout: *timeout,
		maxLag: *maxLag, untilText: "now"}
	if *into != "" {
		var err error
		if req.into, err = config.ParseTableName(*into); err != nil {
			fmt.Fprintf(stderr, "pgsink replay: --into: %v\n", err)
			return 2
		}
	}
	if *until != "" {
		var err error
		if req.until, err = parseUntil(*until, time.Now()); err != nil {
			fmt.Fprintf(stderr, "pgsink replay: --until: %v\n", err)
			return 2
		}
		req.untilText = *until
	}
	pos, err := parseFrom(*from)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink replay: --from: %v\n", err)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink replay: %v\n", err)
		return 1
	}
	if cfg.Apply.Offsets == config.OffsetsKafka && (*into == "" || *online) {
		// Its instances never read pgsink.offsets: a rewind there would be
		// accepted and silently do nothing.
		fmt.Fprintln(stderr, "pgsink replay: apply.offsets is kafka: positions are the consumer group's; reset them with Kafka's tools (kafka-consumer-groups --reset-offsets) while pgsink is stopped")
		return 2
	}
	if cfg.Apply.Consistency == config.ConsistencyTransaction && *rebuild && !*online {
		// The instances would read the rewound records back, but those of
		// transactions the resolver applied are neither staged nor written
		// again (pgsink.tx_resolved): the emptied table would stay empty.
		fmt.Fprintln(stderr, "pgsink replay: --rebuild empties the table for the running instances to refill, but under apply.consistency: transaction they do not apply again the records of transactions already resolved: "+
			"use --rebuild --online (or --into), which fill the table from the topics directly")
		return 2
	}
	req.from = pos
	if fill {
		return runFill(cfg, req, *online, stdout, stderr)
	}
	if err := replay(context.Background(), cfg, req, stdout); err != nil {
		fmt.Fprintf(stderr, "pgsink replay: %v\n", err)
		return 1
	}
	return 0
}

// position is a parsed --from.
type position struct {
	earliest bool
	offset   int64
	at       time.Time
}

func parseFrom(s string) (position, error) {
	switch {
	case s == "earliest":
		return position{earliest: true}, nil
	case strings.HasPrefix(s, "offset:"):
		n, err := strconv.ParseInt(strings.TrimPrefix(s, "offset:"), 10, 64)
		if err != nil || n < 0 {
			return position{}, fmt.Errorf("%q: want offset:N with N >= 0", s)
		}
		return position{offset: n}, nil
	case strings.HasPrefix(s, "timestamp:"):
		t, err := time.Parse(time.RFC3339, strings.TrimPrefix(s, "timestamp:"))
		if err != nil {
			return position{}, fmt.Errorf("%q: %v", s, err)
		}
		return position{at: t}, nil
	}
	return position{}, fmt.Errorf("%q: want earliest, offset:N or timestamp:RFC3339", s)
}

type replayRequest struct {
	table, topic string
	partition    int
	from         position
	rebuild      bool
	wait         bool
	timeout      time.Duration
	// A fill: --into (with --until) or --rebuild --online (with --max-lag).
	into      config.TableName
	until     connector.Bound
	untilText string
	maxLag    int64
}

// rewind is one partition to replay.
type rewind struct {
	id       dedup.PartitionID
	from, to int64 // the new position and the high watermark when replayed
}

func replay(ctx context.Context, cfg *config.Config, req replayRequest, out io.Writer) error {
	in, err := connector.NewInspector(cfg)
	if err != nil {
		return err
	}
	defer in.Close()
	topics, targets, err := replayTopics(cfg, in, req)
	if err != nil {
		return err
	}
	var plan []rewind
	for _, topic := range topics {
		parts, err := in.Partitions(topic)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if req.partition >= 0 && int(p) != req.partition {
				continue
			}
			low, high, err := in.Watermarks(topic, p)
			if err != nil {
				return err
			}
			next := low
			switch {
			case req.from.earliest:
			case !req.from.at.IsZero():
				if next, err = in.OffsetAt(topic, p, req.from.at); err != nil {
					return err
				}
			default:
				next = req.from.offset
			}
			if next < low || next > high {
				return fmt.Errorf("%s[%d]: offset %d is not in Kafka any more (it holds [%d, %d)): choose a later --from, or --from earliest",
					topic, p, next, low, high)
			}
			plan = append(plan, rewind{id: dedup.PartitionID{Group: cfg.Kafka["group.id"], Topic: topic, Partition: p}, from: next, to: high})
		}
	}
	if len(plan) == 0 {
		return fmt.Errorf("no partition matches")
	}

	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	for _, r := range plan {
		if isResolverTopic(cfg, r.id.Topic) {
			if err := checkResolverRewind(ctx, cfg, in, conn, r); err != nil {
				return err
			}
		}
	}
	host, _ := os.Hostname()
	offsets := dedup.NewOffsets(cfg.Postgres.Schema)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if req.rebuild {
			for _, t := range targets {
				if err := rebuildTarget(ctx, tx, cfg.Postgres.Schema, t); err != nil {
					return err
				}
				fmt.Fprintf(out, "emptied %s and its ledger entries\n", t)
			}
		}
		for _, r := range plan {
			if _, err := offsets.Rewind(ctx, tx, r.id, r.from, fmt.Sprintf("%s:%d", host, os.Getpid())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var total int64
	for _, r := range plan {
		fmt.Fprintf(out, "%s[%d]: next offset %d (%d records to apply)\n", r.id.Topic, r.id.Partition, r.from, r.to-r.from)
		total += r.to - r.from
	}
	if isResolverTopic(cfg, req.topic) {
		fmt.Fprintf(out, "rewound the resolver; it re-reads %d transaction markers, passes over the ENDs of transactions it applied already and applies those it has not\n", total)
	} else {
		fmt.Fprintf(out, "rewound %d partition(s); running instances re-claim them and apply %d records\n", len(plan), total)
	}
	if !req.wait {
		return nil
	}
	return waitReplay(ctx, conn, offsets, plan, total, req.timeout, out)
}

// replayTopics resolves --table or --topic to topics and target tables.
func replayTopics(cfg *config.Config, in *connector.Inspector, req replayRequest) (topics []string, targets []config.TableName, err error) {
	router := cfg.Router()
	if isResolverTopic(cfg, req.topic) {
		return []string{req.topic}, nil, nil // the resolver's: no table of its own
	}
	if req.topic != "" {
		t, err := router.Resolve(req.topic)
		if err != nil {
			return nil, nil, err
		}
		return []string{req.topic}, []config.TableName{t.Target.TableName}, nil
	}
	all, err := in.Topics(cfg)
	if err != nil {
		return nil, nil, err
	}
	return tableTopics(router, all, req.table)
}

// tableTopics picks from all the topics whose target is table. A table
// only a record can name (a template reading the record) has no topic of
// its own: the error says so, rather than that nothing feeds it.
func tableTopics(router *config.Router, all []string, table string) (topics []string, targets []config.TableName, err error) {
	var perRecord []string
	for _, topic := range all {
		t, err := router.Resolve(topic)
		if err != nil {
			continue
		}
		if t.Target.TableName.IsZero() {
			perRecord = append(perRecord, fmt.Sprintf("%s (%s: %s)", topic, t.Path, t.Target.Template.Source))
			continue
		}
		if t.Target.String() == table || t.Target.Schema+"."+t.Target.Name == table {
			topics = append(topics, topic)
			if len(targets) == 0 {
				targets = append(targets, t.Target.TableName)
			}
		}
	}
	if len(topics) == 0 && len(perRecord) > 0 {
		return nil, nil, fmt.Errorf("no existing topic is configured for table %s by its name; the targets of %s are decided per record, "+
			"so a table they write has no topics of its own to replay, fill or rebuild from: replay such a topic with --topic "+
			"(it replays every table the topic writes)", table, strings.Join(perRecord, ", "))
	}
	if len(topics) == 0 {
		return nil, nil, fmt.Errorf("no existing topic is configured for table %s", table)
	}
	return topics, targets, nil
}

// rebuildTarget empties a target table and forgets its deletes and outbox
// events, so the replay rebuilds it from nothing.
func rebuildTarget(ctx context.Context, tx pgx.Tx, schema string, t config.TableName) error {
	ref := t.Schema + "." + t.Name
	if _, err := tx.Exec(ctx, "TRUNCATE "+pgx.Identifier{t.Schema, t.Name}.Sanitize()); err != nil {
		return fmt.Errorf("empty %s: %w", ref, err)
	}
	return dedup.NewLedgers(schema).Forget(ctx, tx, ref)
}

// waitReplay prints progress until every rewound partition's stored
// position reaches the high watermark it had at the rewind.
func waitReplay(ctx context.Context, conn *pgx.Conn, offsets dedup.Offsets, plan []rewind, total int64, timeout time.Duration, out io.Writer) error {
	start := time.Now()
	for {
		var done int64
		for _, r := range plan {
			c, err := offsets.Read(ctx, conn, r.id)
			if err != nil {
				return err
			}
			done += min(max(c.NextOffset-r.from, 0), r.to-r.from)
		}
		elapsed := time.Since(start)
		rate := float64(done) / max(elapsed.Seconds(), 0.001)
		eta := "?"
		if rate > 0 {
			eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
		}
		fmt.Fprintf(out, "\rreplayed %d/%d records (%.0f%%), %.0f records/s, lag %d, ETA %s   ",
			done, total, 100*float64(done)/float64(max(total, 1)), rate, total-done, eta)
		if done >= total {
			fmt.Fprintf(out, "\nreplay applied in %s\n", elapsed.Round(time.Millisecond))
			return nil
		}
		if timeout > 0 && elapsed > timeout {
			fmt.Fprintln(out)
			return fmt.Errorf("replay not applied within %s (is an instance running?)", timeout)
		}
		time.Sleep(time.Second)
	}
}
