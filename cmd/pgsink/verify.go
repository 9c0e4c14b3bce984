package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/verify"
)

const verifyUsage = `Usage: pgsink verify --config FILE [--table T [--source-table S]] [--json] [--repair]

Compares each table's source rows with its target, without stopping anything:
key-ordered chunks are hashed on both servers, differing chunks drilled down
to keys, and each differing key is checked again once pgsink has applied
everything the source had committed, so changes in flight are not drift.
The source comes from verify.source_url; docs/recovery.md has the runbook.

--repair asks Debezium to send the differing rows again (an incremental
snapshot signal into verify.signal_table) and deletes the rows the source no
longer has through pgsink's own delete path (version-guarded, with their
tombstones), lowers a version ahead of the source's position to that
position (no event carries one) and has those rows sent again too, waits for
them to be applied, and checks those keys again (docs/recovery.md).

Exit status: 0 clean, 1 drift, 2 error.

Flags:
`

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (required)")
	table := fs.String("table", "", "verify this target `table` only (as in the configuration); default every table")
	sourceTable := fs.String("source-table", "", "with --table, the source `schema.table` (default: from the topic name <prefix>.<schema>.<table>)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	repair := fs.Bool("repair", false, "heal the drift through Debezium, then check the keys again")
	repairTimeout := fs.Duration("repair-timeout", 5*time.Minute, "with --repair, how long to wait for the keys to heal")
	maxKeys := fs.Int("max-keys", 20, "list at most `N` differing keys per table (all are counted)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), verifyUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if *path == "" || fs.NArg() > 0 || (*sourceTable != "" && *table == "") {
		fmt.Fprintln(stderr, "pgsink verify: --config is required, and --source-table needs --table")
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink verify: %v\n", err)
		return 2
	}
	req := verifyRequest{table: *table, sourceTable: *sourceTable, repair: *repair, repairTimeout: *repairTimeout, maxKeys: *maxKeys}
	progress := stderr
	results, err := runVerification(context.Background(), cfg, req, progress)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink verify: %v\n", err)
		return 2
	}
	clean := true
	for _, r := range results {
		clean = clean && r.Clean()
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"clean": clean, "tables": results}); err != nil {
			fmt.Fprintf(stderr, "pgsink verify: %v\n", err)
			return 2
		}
	} else {
		for _, r := range results {
			r.Print(stdout)
		}
	}
	if !clean {
		return 1
	}
	return 0
}

type verifyRequest struct {
	table, sourceTable string
	repair             bool
	repairTimeout      time.Duration
	maxKeys            int
}

func runVerification(ctx context.Context, cfg *config.Config, req verifyRequest, progress io.Writer) ([]*verify.TableResult, error) {
	vc := cfg.Verify
	switch {
	case vc.SourceURL == "":
		return nil, errors.New("verify.source_url is not configured: verify reads the source database")
	case vc.Slot == "":
		return nil, errors.New("verify.slot is not configured: verify waits on the connector's replication slot")
	case req.repair && vc.SignalTable.IsZero():
		return nil, errors.New("verify.signal_table is not configured: --repair signals Debezium through it")
	case cfg.Apply.Offsets == config.OffsetsKafka:
		return nil, errors.New("apply.offsets is kafka: verify tells what pgsink applied from pgsink.offsets")
	}
	in, err := connector.NewInspector(cfg)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	opts := verify.OptionsFrom(vc)
	opts.MaxKeys = req.maxKeys
	src, dst, err := verify.Connect(ctx, vc.SourceURL, cfg.Postgres.URL, opts, req.repair)
	if err != nil {
		return nil, err
	}
	defer src.Close(ctx)
	defer dst.Close(ctx)
	settler := &verify.PositionSettler{Source: src, Target: dst, Slot: vc.Slot, Group: cfg.Kafka["group.id"],
		Offsets: dedup.NewOffsets(cfg.Postgres.Schema), Marks: inspectorMarks(in), Timeout: opts.SettleTimeout,
		TransactionTopic: connector.TransactionTopic(cfg)}
	v := verify.New(src, dst, opts, settler, progress)
	var pool *pgxpool.Pool
	if req.repair {
		// pgsink's own sessions, for the deletes --repair applies
		// through the sink.
		if pool, err = pgxpool.New(ctx, cfg.Postgres.URL); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		defer pool.Close()
	}

	tables, err := verifyTables(cfg, in, progress)
	if err != nil {
		return nil, err
	}
	var results []*verify.TableResult
	for _, tc := range tables {
		if tc.Format != config.FormatTable || (req.table != "" && tc.Target.String() != req.table && tc.Target.Schema+"."+tc.Target.Name != req.table) {
			continue
		}
		topics, _, err := replayTopics(cfg, in, replayRequest{table: tc.Target.String()})
		if err != nil {
			return nil, err
		}
		source, err := verifySource(req.sourceTable, topics)
		if err != nil {
			return nil, err
		}
		t, err := verify.Describe(ctx, src, dst, tc, source)
		if err != nil {
			return nil, err
		}
		t.Topics = topics
		res, err := v.Table(ctx, t)
		if err != nil {
			return nil, err
		}
		if req.repair && !res.Clean() {
			fmt.Fprintf(progress, "%s: %d differing key(s); signalling Debezium to send them again\n", res.Target, res.Drift)
			if res, err = v.Repair(ctx, t, res, verify.RepairTarget{SignalTable: vc.SignalTable, Pool: pool, Config: cfg, Timeout: req.repairTimeout}); err != nil {
				return nil, err
			}
		}
		results = append(results, res)
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("no table of format table matches %q", req.table)
	}
	return results, nil
}

// verifySource is the source table: --source-table, or the one the topic
// names (all of a table's topics must name the same).
func verifySource(flagValue string, topics []string) (config.TableName, error) {
	if flagValue != "" {
		return config.ParseTableName(flagValue)
	}
	var source config.TableName
	for i, topic := range topics {
		s, err := verify.SourceOf(topic)
		if err != nil {
			return s, err
		}
		if i > 0 && s != source {
			return s, fmt.Errorf("topics %s and %s name different source tables: verify one with --table and --source-table", topics[0], topic)
		}
		source = s
	}
	return source, nil
}

func inspectorMarks(in *connector.Inspector) func(context.Context, []string) ([]verify.Mark, error) {
	return func(_ context.Context, topics []string) ([]verify.Mark, error) {
		var marks []verify.Mark
		for _, topic := range topics {
			parts, err := in.Partitions(topic)
			if err != nil {
				return nil, err
			}
			for _, p := range parts {
				_, high, err := in.Watermarks(topic, p)
				if err != nil {
					return nil, err
				}
				marks = append(marks, verify.Mark{Topic: topic, Partition: p, Offset: high})
			}
		}
		return marks, nil
	}
}

// verifyTables lists the tables to verify: each fixed target, and each
// target a template derives for the cluster's topics. A target the record
// decides cannot be listed from topics; verify says so and goes on.
func verifyTables(cfg *config.Config, in *connector.Inspector, progress io.Writer) ([]*config.Table, error) {
	var out []*config.Table
	for i := range cfg.Tables {
		if cfg.Tables[i].Target.Template == nil {
			out = append(out, &cfg.Tables[i])
		}
	}
	if !hasTemplates(cfg) {
		return out, nil
	}
	topics, err := in.Topics(cfg)
	if err != nil {
		return nil, err
	}
	router := cfg.Router()
	seen := map[config.TableName]bool{}
	perRecord := map[string]bool{}
	for _, topic := range topics {
		t, err := router.Resolve(topic)
		if err != nil || t.Target.Template == nil {
			continue // fixed targets are listed above; routing errors are validate's
		}
		if t.Target.TableName.IsZero() {
			if !perRecord[t.Path] {
				perRecord[t.Path] = true
				fmt.Fprintf(progress, "%s: target %s is decided per record: not verified (verify lists tables from topics)\n", t.Path, t.Target.Template.Source)
			}
			continue
		}
		if !seen[t.Target.TableName] {
			seen[t.Target.TableName] = true
			out = append(out, t)
		}
	}
	return out, nil
}
