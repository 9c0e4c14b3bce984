package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
)

// checkModeSwitch refuses to start a pipeline whose stored state belongs to
// the other apply.consistency (docs/transactions.md, "Switching modes"),
// and records the mode it starts in:
//   - partition after transaction, with records still staged: nothing
//     would ever apply them;
//   - transaction for a group with positions made in partition mode (or
//     before modes were recorded): the transactions it applied per
//     partition were never staged, so the resolver would wait for them.
func checkModeSwitch(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config) error {
	group := cfg.Kafka["group.id"]
	tx := dedup.NewTransactions(cfg.Postgres.Schema)
	mode, err := tx.Mode(ctx, pool, group)
	if err != nil {
		return err
	}
	want := string(cfg.Apply.Consistency)
	switch {
	case want == mode:
	case cfg.Apply.Consistency == config.ConsistencyTransaction:
		stored, err := dedup.NewOffsets(cfg.Postgres.Schema).List(ctx, pool, group)
		if err != nil {
			return err
		}
		if len(stored) > 0 {
			return fmt.Errorf("apply.consistency is transaction, but group %s has positions from a run in partition mode: "+
				"the transactions it applied per partition were never staged, so the resolver would wait for them; "+
				"switching a running pipeline is not supported yet: start transaction mode under a new group.id (with a rebuilt target) instead", group)
		}
	default:
		_, staged, ok, err := tx.OldestUnresolved(ctx, pool, group)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("apply.consistency is partition, but %d records of source transactions are staged for group %s by a run in transaction mode, "+
				"and nothing would apply them: run in transaction mode until pgsink status shows the transaction topic caught up and none staged, then switch", staged, group)
		}
	}
	return tx.SetMode(ctx, pool, group, want)
}

// checkTransactionTopic is validate's check of apply.transaction.topic in
// Kafka: it exists with one partition.
func checkTransactionTopic(cfg *config.Config) config.Problems {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return nil
	}
	in, err := connector.NewInspector(cfg)
	if err == nil {
		defer in.Close()
		err = in.CheckTransactionTopic(cfg)
	}
	if err != nil {
		return config.Problems{cfg.Problem("apply.transaction.topic", "%s", oneLine(err))}
	}
	return nil
}
