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
// the other apply.consistency (docs/transactions.md, "Switching modes"):
//   - partition after transaction, with records still staged: nothing
//     would ever apply them;
//   - transaction after partition, with data positions and none for the
//     transaction topic: the transactions applied per partition were never
//     staged, so the resolver would wait for them until it stops.
func checkModeSwitch(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config) error {
	group := cfg.Kafka["group.id"]
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		_, staged, ok, err := dedup.NewTransactions(cfg.Postgres.Schema).OldestUnresolved(ctx, pool, group)
		if err != nil || !ok {
			return err
		}
		return fmt.Errorf("apply.consistency is partition, but %d records of source transactions are staged for group %s by an earlier run in transaction mode, "+
			"and nothing would apply them: run in transaction mode until pgsink status shows none staged, then switch", staged, group)
	}
	stored, err := dedup.NewOffsets(cfg.Postgres.Schema).List(ctx, pool, group)
	if err != nil || len(stored) == 0 {
		return err
	}
	for _, s := range stored {
		if s.Topic == cfg.Apply.Transaction.Topic {
			return nil
		}
	}
	return fmt.Errorf("apply.consistency is transaction, but group %s has positions from an earlier run in partition mode and none for %s: "+
		"the transactions it applied per partition were never staged, so the resolver would wait for them; "+
		"switching a running pipeline is not supported yet: start transaction mode under a new group.id (with a rebuilt target) instead",
		group, cfg.Apply.Transaction.Topic)
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
