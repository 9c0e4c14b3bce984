package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/schemaregistry"
	"github.com/pgsink/pgsink/sink"
)

// retryDeadLetters applies each dead letter again and removes it in the same
// transaction; it prints one line per record and returns how many failed.
func retryDeadLetters(ctx context.Context, cfg *config.Config, letters []dedup.DeadLetter, out io.Writer) (failed int) {
	pool, err := newPool(ctx, cfg)
	if err != nil {
		fmt.Fprintf(out, "cannot connect: %v\n", err)
		return len(letters)
	}
	defer pool.Close()
	applier := sink.NewApplier(pool, sink.Options{Schema: cfg.Postgres.Schema, StagingTablesPerConnection: cfg.Postgres.StagingTablesPerConnection})
	router := sink.NewRouter(cfg, pool)
	if cfg.SchemaRegistry.URL != "" {
		client, err := schemaregistry.New(cfg.SchemaRegistry)
		if err != nil {
			fmt.Fprintf(out, "schema registry: %v\n", err)
			return len(letters)
		}
		router.UseSchemas(client)
	}
	decoder := router.NewDecoder()
	dead := dedup.NewDeadLetters(cfg.Postgres.Schema)
	for _, d := range letters {
		if strings.HasPrefix(d.Group, dedup.FillGroupPrefix) {
			failed++
			fmt.Fprintf(out, "dead letter %d (%s[%d]@%d): not retried: written by the fill into %s (%s), and retry applies through the configured routes, which do not lead there; fix the cause and run the fill again from its start, or, after an online rebuild's swap, mend the live table with pgsink verify --repair\n",
				d.ID, d.Topic, d.Partition, d.Offset, d.Target, d.Group)
			continue
		}
		item, err := retryItem(ctx, router, decoder, d)
		if err == nil {
			_, err = applier.ApplyDetached(ctx, []sink.Item{item}, func(ctx context.Context, tx pgx.Tx) error {
				return dead.Delete(ctx, tx, d.ID)
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

// retryItem rebuilds the record of a dead letter, decodes and routes it
// as `pgsink run` would (sink.Router: schema.create and schema.evolve too).
func retryItem(ctx context.Context, router *sink.Router, decoder *debezium.Decoder, d dedup.DeadLetter) (sink.Item, error) {
	rec := debezium.Record{Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Key: d.Key, Value: d.Value}
	for _, h := range d.Headers {
		rec.Headers = append(rec.Headers, debezium.Header{Key: h.Key, Value: []byte(h.Value)})
	}
	item, ok, err := router.Item(ctx, decoder, rec)
	switch {
	case err != nil:
		return sink.Item{}, err
	case item.Err != nil:
		return sink.Item{}, item.Err
	case !ok:
		return sink.Item{}, errors.New("the record decodes to nothing to apply")
	}
	return item, nil
}
