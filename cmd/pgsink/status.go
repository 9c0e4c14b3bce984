package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/txapply"
)

const statusUsage = `Usage: pgsink status --config FILE [--json]

Prints one line per partition of the configured topics: the position stored
in PostgreSQL, Kafka's high watermark, the lag between them, the owner and
epoch, when the position last moved, and how far the target is behind
the source (from Debezium's source commit time: with records waiting,
the time since the oldest of them reached Kafka; caught up, the lag the
newest applied change had when it was applied). Under apply.consistency:
transaction, LAG also shows the records past the position still staged for
their transaction ("+N staged"): the target does not show them yet; then
where the resolver stands and what it waits for, and the data partitions
waiting at apply.transaction.max_staged_bytes. Then the progress of fills
(replay --into, replay --rebuild --online), running or killed; then the dead
letters per table and topic.

Flags:
`

// partitionStatus is one line of the report.
type partitionStatus struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	NextOffset    *int64 `json:"next_offset"` // nil: never claimed
	HighWatermark int64  `json:"high_watermark"`
	Lag           *int64 `json:"lag"`
	Owner         string `json:"owner,omitempty"`
	// OwnerLive says whether the owner is a member of the consumer group;
	// false: it died (or left) and its partition waits for the group to
	// move it. Absent when the group could not be described, or for a
	// replay's row.
	OwnerLive *bool      `json:"owner_live,omitempty"`
	Epoch     int64      `json:"epoch,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	// Stopped says why the owner stopped applying the partition (it needs
	// an operator); empty while it applies.
	Stopped   string     `json:"stopped,omitempty"`
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	// SourceTs is the source commit time of the newest change applied;
	// BehindSource is dedup.Stored.BehindSource in seconds, CaughtUp
	// whether no record was waiting (position = high watermark).
	SourceTs     *time.Time `json:"source_ts,omitempty"`
	BehindSource *float64   `json:"behind_source_seconds,omitempty"`
	CaughtUp     bool       `json:"caught_up"`
	// Staged, under apply.consistency: transaction, counts the records
	// past the position that wait in staging for their transaction to be
	// applied whole: the target does not show them yet, so a partition
	// with any is not caught up, whatever its lag.
	Staged int64 `json:"staged,omitempty"`
	// StagedAheadBytes, under apply.consistency: transaction, is what the
	// data partition staged above the resolver's frontier
	// (ResolverFrontier: the highest offset of its records the resolver
	// applied, -1 when none), which it counts against
	// apply.transaction.max_staged_bytes. AtStagingBound: it waits there
	// (it has records to stage, has reached the bound, and the resolver
	// publishes no wait that would let it stage on).
	StagedAheadBytes int64  `json:"staged_ahead_bytes,omitempty"`
	ResolverFrontier *int64 `json:"resolver_frontier,omitempty"`
	AtStagingBound   bool   `json:"waiting_at_staging_bound,omitempty"`
}

// resolverStatus is where the resolver of apply.consistency: transaction
// stands and what it waits for.
type resolverStatus struct {
	Topic         string `json:"topic"`
	NextOffset    *int64 `json:"next_offset"` // nil: never claimed
	HighWatermark int64  `json:"high_watermark"`
	Stopped       bool   `json:"stopped,omitempty"` // the reason is its partition's
	// MaxStagedBytes is apply.transaction.max_staged_bytes.
	MaxStagedBytes int64 `json:"max_staged_bytes"`
	// WaitingAt is the offset of the END the resolver waits at with its
	// wait published (pgsink.tx_resolver_waits) since WaitingSince: its
	// events are not all staged, and every data partition stages past its
	// bound meanwhile. Waiting says what it waits for (the staged counts
	// short of END's), or why that could not be read.
	WaitingAt    *int64     `json:"waiting_at,omitempty"`
	WaitingSince *time.Time `json:"waiting_since,omitempty"`
	Waiting      string     `json:"waiting,omitempty"`
}

type deadLetterStatus struct {
	Target string    `json:"target"`
	Topic  string    `json:"topic"`
	Count  int64     `json:"count"`
	Last   time.Time `json:"last_failed_at"`
}

type statusReport struct {
	Group string `json:"group"`
	// MembersError says why owners could not be checked against the
	// group's members.
	MembersError string             `json:"members_error,omitempty"`
	Partitions   []partitionStatus  `json:"partitions"`
	DeadLetters  []deadLetterStatus `json:"dead_letters"`
	Fills        []fillStatus       `json:"fills"`
	// Resolver, under apply.consistency: transaction.
	Resolver *resolverStatus `json:"resolver,omitempty"`
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), statusUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "pgsink status: --config FILE is required and no arguments are taken")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink status: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	report, err := status(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return 1
		}
		return 0
	}
	printStatus(stdout, report)
	return 0
}

func status(ctx context.Context, cfg *config.Config) (*statusReport, error) {
	in, err := connector.NewInspector(cfg)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	group := cfg.Kafka["group.id"]
	stored, err := dedup.NewOffsets(cfg.Postgres.Schema).List(ctx, conn, group)
	if err != nil {
		return nil, err
	}
	byPartition := map[dedup.PartitionID]dedup.Stored{}
	for _, s := range stored {
		byPartition[s.PartitionID] = s
	}
	topics, err := in.Topics(cfg)
	if err != nil {
		return nil, err
	}
	// The resolver's partition, under apply.consistency: transaction:
	// where it stands, and why it stopped.
	if t := cfg.Apply.Transaction.Topic; cfg.Apply.Consistency == config.ConsistencyTransaction && !slices.Contains(topics, t) {
		topics = append(topics, t)
	}
	report := &statusReport{Group: group, Partitions: []partitionStatus{}, DeadLetters: []deadLetterStatus{}}
	members, membersErr := in.GroupMembers(ctx, group)
	if membersErr != nil {
		report.MembersError = membersErr.Error()
	}
	// The database's clock, which stamped the applied times: the lag
	// does not depend on this machine's clock.
	var now time.Time
	if err := conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	staged, err := stagedByPartition(ctx, cfg, conn, group)
	if err != nil {
		return nil, err
	}
	ahead, err := stagedAhead(ctx, cfg, conn, group)
	if err != nil {
		return nil, err
	}
	if report.Resolver, err = resolver(ctx, cfg, conn, in); err != nil {
		return nil, err
	}
	for _, topic := range topics {
		parts, err := in.Partitions(topic)
		if err != nil {
			continue // a named topic Debezium has not created yet
		}
		for _, p := range parts {
			_, high, err := in.Watermarks(topic, p)
			if err != nil {
				return nil, err
			}
			line := partitionStatus{Topic: topic, Partition: p, HighWatermark: high}
			if s, ok := byPartition[dedup.PartitionID{Group: group, Topic: topic, Partition: p}]; ok {
				next, lag, at := s.NextOffset, high-s.NextOffset, s.UpdatedAt
				line.NextOffset, line.Lag, line.UpdatedAt = &next, &lag, &at
				line.Owner, line.Epoch = s.Owner, s.Epoch
				if membersErr == nil && !strings.HasPrefix(s.Owner, dedup.ReplayOwnerPrefix) {
					live := members.Has(s.Owner)
					line.OwnerLive = &live
				}
				line.Stopped, line.StoppedAt = s.StoppedReason, s.StoppedAt
				st := staged[dedup.PartitionID{Group: group, Topic: topic, Partition: p}]
				line.Staged = st.Records
				line.CaughtUp = lag <= 0 && st.Records == 0
				var waiting time.Time
				if lag > 0 && s.SourceTs != nil {
					// Unknown (a read that fails) leaves the upper bound.
					waiting, _ = in.TimestampAt(topic, p, next, waitingReadTimeout)
				}
				if behind, ok := s.BehindSource(now, line.CaughtUp, waiting); ok {
					secs := behind.Seconds()
					line.SourceTs, line.BehindSource = s.SourceTs, &secs
				}
				if r := report.Resolver; r != nil && topic != r.Topic {
					a, ok := ahead[dedup.PartitionID{Group: group, Topic: topic, Partition: p}]
					if !ok {
						// Nothing staged above it: its frontier is not read.
						a.Frontier = -1
					}
					line.StagedAheadBytes, line.ResolverFrontier = a.Bytes, &a.Frontier
					line.AtStagingBound = lag > 0 && s.StoppedReason == "" && r.WaitingAt == nil && a.Bytes >= r.MaxStagedBytes
				}
				if st.Records > 0 && !st.Oldest.IsZero() {
					// The stored source time is the newest change staged,
					// not applied: the target is behind by at least the
					// time since the oldest staged record reached Kafka,
					// older than any record past the position.
					secs := max(now.Sub(st.Oldest), 0).Seconds()
					line.BehindSource = &secs
				}
			}
			report.Partitions = append(report.Partitions, line)
			if r := report.Resolver; r != nil && topic == r.Topic {
				r.NextOffset, r.HighWatermark, r.Stopped = line.NextOffset, high, line.Stopped != ""
			}
		}
	}
	counts, err := dedup.NewDeadLetters(cfg.Postgres.Schema).Count(ctx, conn, group)
	if err != nil {
		return nil, err
	}
	for _, c := range counts {
		report.DeadLetters = append(report.DeadLetters, deadLetterStatus{Target: c.Target, Topic: c.Topic, Count: c.Count, Last: c.Last})
	}
	if report.Fills, err = fills(ctx, cfg, conn, in); err != nil {
		return nil, err
	}
	return report, nil
}

func printStatus(w io.Writer, r *statusReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TOPIC\tPARTITION\tPOSITION\tHIGH WATERMARK\tLAG\tOWNER\tEPOCH\tLAST APPLIED\tBEHIND SOURCE\n")
	for _, p := range r.Partitions {
		if p.NextOffset == nil {
			fmt.Fprintf(tw, "%s\t%d\t-\t%d\t-\t(never claimed)\t-\t-\t-\n", p.Topic, p.Partition, p.HighWatermark)
			continue
		}
		owner := p.Owner
		if p.OwnerLive != nil && !*p.OwnerLive {
			owner += " (dead)"
		}
		lag := fmt.Sprint(*p.Lag)
		if p.Staged > 0 {
			lag += fmt.Sprintf(" (+%d staged)", p.Staged)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t%s ago\t%s\n", p.Topic, p.Partition, *p.NextOffset, p.HighWatermark, lag,
			owner, p.Epoch, time.Since(*p.UpdatedAt).Round(time.Second), behindSource(p))
	}
	tw.Flush()
	if r.MembersError != "" {
		fmt.Fprintf(w, "\nowners not checked against the group's members: %s\n", r.MembersError)
	}
	printResolver(w, r)
	printStopped(w, r.Partitions)
	printFills(w, r.Fills)
	if len(r.DeadLetters) == 0 {
		fmt.Fprintln(w, "\nno dead letters")
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TABLE\tTOPIC\tDEAD LETTERS\tLAST\n")
	for _, d := range r.DeadLetters {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", d.Target, d.Topic, d.Count, d.Last.Format(time.RFC3339))
	}
	tw.Flush()
}

// stagedByPartition reads, under apply.consistency: transaction, what each
// data partition has staged and the resolver not applied; nil otherwise.
func stagedByPartition(ctx context.Context, cfg *config.Config, conn *pgx.Conn, group string) (map[dedup.PartitionID]dedup.StagedPartition, error) {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return nil, nil
	}
	list, err := dedup.NewTransactions(cfg.Postgres.Schema).StagedByPartition(ctx, conn, group)
	if err != nil {
		return nil, err
	}
	out := make(map[dedup.PartitionID]dedup.StagedPartition, len(list))
	for _, p := range list {
		out[dedup.PartitionID{Group: group, Topic: p.Topic, Partition: p.Partition}] = p
	}
	return out, nil
}

// waitingReadTimeout bounds reading the oldest waiting record of a
// partition that is behind, for its Kafka time.
const waitingReadTimeout = 5 * time.Second

// behindSource is the BEHIND SOURCE column: "3.2 s behind source" while
// records wait, "caught up (0.1 s at apply)" when none does, "-" before any
// applied change carried a source time.
func behindSource(p partitionStatus) string {
	if p.BehindSource == nil {
		return "-"
	}
	if p.CaughtUp {
		return fmt.Sprintf("caught up (%.1f s at apply)", *p.BehindSource)
	}
	return fmt.Sprintf("%.1f s behind source", *p.BehindSource)
}

// printStopped lists the partitions whose owner stopped applying them, with
// the reason: each needs an operator.
func printStopped(w io.Writer, parts []partitionStatus) {
	header := false
	for _, p := range parts {
		if p.Stopped == "" {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nstopped partitions (fix the cause as each reason says, then `pgsink replay` them, which the running owner takes, or restart the owner):")
			header = true
		}
		since := ""
		if p.StoppedAt != nil {
			since = " since " + p.StoppedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  %s[%d] at offset %d%s: stopped: %s\n", p.Topic, p.Partition, *p.NextOffset, since, p.Stopped)
	}
}

// stagedAhead reads, under apply.consistency: transaction, what each data
// partition staged above the resolver's frontier; nil otherwise.
func stagedAhead(ctx context.Context, cfg *config.Config, conn *pgx.Conn, group string) (map[dedup.PartitionID]dedup.StagedAhead, error) {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return nil, nil
	}
	list, err := dedup.NewTransactions(cfg.Postgres.Schema).StagedAheadByPartition(ctx, conn, group)
	if err != nil {
		return nil, err
	}
	out := make(map[dedup.PartitionID]dedup.StagedAhead, len(list))
	for _, a := range list {
		out[dedup.PartitionID{Group: group, Topic: a.Topic, Partition: a.Partition}] = a
	}
	return out, nil
}

// resolver reads, under apply.consistency: transaction, the resolver's
// published wait and what it waits for (the END it waits at, read from the
// transaction topic, against the staged counts); nil otherwise. Its
// position is filled in with its partition's line.
func resolver(ctx context.Context, cfg *config.Config, conn *pgx.Conn, in *connector.Inspector) (*resolverStatus, error) {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return nil, nil
	}
	group, topic := cfg.Kafka["group.id"], cfg.Apply.Transaction.Topic
	r := &resolverStatus{Topic: topic, MaxStagedBytes: int64(cfg.Apply.Transaction.MaxStagedBytes)}
	w, ok, err := dedup.NewTransactions(cfg.Postgres.Schema).ResolverWaitOf(ctx, conn, group)
	if err != nil || !ok {
		return r, err
	}
	r.WaitingAt, r.WaitingSince = &w.EndOffset, &w.Since
	end, err := in.TransactionEnd(topic, w.EndOffset, waitingReadTimeout)
	if err != nil {
		r.Waiting = fmt.Sprintf("(its END could not be read: %v)", err)
		return r, nil
	}
	switch applied, err := txapply.Staged(ctx, conn, cfg.Postgres.Schema, group, end); {
	case err == nil && applied:
		// A mark left by a resolver that lost its partition: the next
		// apply transaction deletes it.
		r.Waiting = fmt.Sprintf("transaction %s: applied already; the mark is a former resolver's, and the next apply ends it", end.Marker.ID)
	case err == nil:
		r.Waiting = fmt.Sprintf("transaction %s: its events are all staged now; it applies at its next look", end.Marker.ID)
	case errors.As(err, new(*txapply.IncompleteError)), errors.As(err, new(*txapply.OverstagedError)):
		r.Waiting = err.Error()
	default:
		return nil, err
	}
	return r, nil
}

// printResolver prints where the resolver stands and what it waits for,
// and the data partitions waiting at apply.transaction.max_staged_bytes.
func printResolver(w io.Writer, r *statusReport) {
	res := r.Resolver
	if res == nil {
		return
	}
	fmt.Fprintln(w)
	switch {
	case res.NextOffset == nil:
		fmt.Fprintf(w, "resolver: %s[0] never claimed (high watermark %d)\n", res.Topic, res.HighWatermark)
	default:
		state := "caught up"
		if n := res.HighWatermark - *res.NextOffset; n > 0 {
			state = fmt.Sprintf("%d markers to read", n)
		}
		fmt.Fprintf(w, "resolver: %s[0] at offset %d (high watermark %d, %s)", res.Topic, *res.NextOffset, res.HighWatermark, state)
		if res.Stopped {
			fmt.Fprint(w, ", stopped (see the stopped partitions below)")
		}
		fmt.Fprintln(w)
	}
	if res.WaitingAt != nil {
		fmt.Fprintf(w, "  waits since %s at the END at offset %d for events not all staged: %s; meanwhile every data partition stages past apply.transaction.max_staged_bytes\n",
			res.WaitingSince.Format(time.RFC3339), *res.WaitingAt, res.Waiting)
	}
	header := false
	for _, p := range r.Partitions {
		if !p.AtStagingBound {
			continue
		}
		if !header {
			fmt.Fprintf(w, "data partitions waiting at the staging bound (apply.transaction.max_staged_bytes %s) for the resolver to apply what they staged:\n", config.ByteSize(res.MaxStagedBytes))
			header = true
		}
		frontier := "none of its records applied yet"
		if p.ResolverFrontier != nil && *p.ResolverFrontier >= 0 {
			frontier = fmt.Sprintf("offset %d", *p.ResolverFrontier)
		}
		fmt.Fprintf(w, "  %s[%d]: waiting at the staging bound: %s staged ahead of the resolver's frontier (%s)\n", p.Topic, p.Partition, humanBytes(p.StagedAheadBytes), frontier)
	}
}

// humanBytes prints a size in the largest binary unit it reaches.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
