package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/sink/catalog"
)

// retryDeadLetters applies each dead letter again and removes it in the same
// transaction; it prints one line per record and returns how many failed.
func retryDeadLetters(ctx context.Context, cfg *config.Config, letters []deadLetter, out io.Writer) (failed int) {
	pool, err := newPool(ctx, cfg)
	if err != nil {
		fmt.Fprintf(out, "cannot connect: %v\n", err)
		return len(letters)
	}
	defer pool.Close()
	applier := sink.NewApplier(pool, sink.Options{Schema: cfg.Postgres.Schema})
	router := cfg.Router()
	dead := pgx.Identifier{cfg.Postgres.Schema, "dead_letters"}.Sanitize()
	for _, d := range letters {
		item, err := retryItem(ctx, cfg, router, pool, d)
		if err == nil {
			_, err = applier.ApplyDetached(ctx, []sink.Item{item}, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `DELETE FROM `+dead+` WHERE id = $1`, d.ID)
				return err
			})
		}
		if err != nil {
			failed++
			fmt.Fprintf(out, "dead letter %d (%s[%d]@%d): still fails: %v\n", d.ID, d.Topic, d.Partition, d.Offset, err)
			continue
		}
		fmt.Fprintf(out, "dead letter %d (%s[%d]@%d): applied and removed\n", d.ID, d.Topic, d.Partition, d.Offset)
	}
	return failed
}

// retryItem rebuilds the record of a dead letter, routes and decodes it as
// `pgsink run` would.
func retryItem(ctx context.Context, cfg *config.Config, router *config.Router, q catalog.Querier, d deadLetter) (sink.Item, error) {
	rec := debezium.Record{Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Key: d.Key, Value: d.Value}
	var headers []struct{ Key, Value string }
	if err := json.Unmarshal(d.Headers, &headers); err != nil {
		return sink.Item{}, fmt.Errorf("stored headers: %w", err)
	}
	for _, h := range headers {
		rec.Headers = append(rec.Headers, debezium.Header{Key: h.Key, Value: []byte(h.Value)})
	}
	tc, err := router.Resolve(d.Topic)
	if err != nil {
		return sink.Item{}, err
	}
	cat, err := catalog.Read(ctx, q, tc.Target.Schema, tc.Target.Name)
	if err != nil {
		return sink.Item{}, err
	}
	table, err := sink.Resolve(*tc, cat)
	if err != nil {
		return sink.Item{}, err
	}
	format := debezium.FormatTable
	if tc.Format == config.FormatOutbox {
		format = debezium.FormatOutbox
	}
	ch, err := debezium.NewDecoder(debezium.Options{Format: func(string) debezium.Format { return format }}).Decode(rec)
	if err != nil {
		return sink.Item{}, err
	}
	if ch.Kind != debezium.KindChange && ch.Kind != debezium.KindOutbox {
		return sink.Item{}, fmt.Errorf("the record decodes to nothing to apply (kind %d)", ch.Kind)
	}
	return sink.Item{Record: rec, Table: table, Change: ch}, nil
}
