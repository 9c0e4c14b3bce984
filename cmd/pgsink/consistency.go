package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
	"go.uber.org/zap"
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

// applyStaging makes tx_staged as apply.transaction.staging says, in
// transaction mode, before anything stages, and the staging marker as
// tx_staged (dedup/txgeneration.go). The table is the schema's, one for
// every group: it is altered only when no other group ran in transaction
// mode; otherwise a group whose setting differs from the table is refused,
// rather than the groups turning it back and forth at each start. Either
// persistence is safe for every group, whatever its own setting: the
// refusal is about the cost the operator chose, not correctness. The
// marker is matched to the table whatever the groups: that changes no
// group's choice, and a marker that is logged beside an unlogged table is
// the one unsafe state.
func applyStaging(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config, log *zap.Logger) error {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return nil
	}
	tx := dedup.NewTransactions(cfg.Postgres.Schema)
	if err := matchMarker(ctx, pool, tx, cfg.Postgres.Schema, log); err != nil {
		return err
	}
	p, err := tx.StagingPersistence(ctx, pool)
	if err != nil {
		return err
	}
	want := cfg.Apply.Transaction.Staging == config.StagingUnlogged
	if p.StagedUnlogged == want {
		return nil
	}
	group := cfg.Kafka["group.id"]
	others, err := tx.OtherTransactionGroups(ctx, pool, group)
	if err != nil {
		return err
	}
	is := map[bool]string{true: "unlogged", false: "logged"}
	if len(others) > 0 {
		// The statements are quoted as pgsink quotes them: an operator
		// pastes them.
		return fmt.Errorf("apply.transaction.staging is %s, but %s.tx_staged is %s and shared with the groups %v, which ran in transaction mode: "+
			"set the same apply.transaction.staging in every group of the schema, or, with every group stopped, run %s "+
			"(tx_staging_marker with tx_staged, in one transaction) and set it in every group",
			is[want], cfg.Postgres.Schema, is[p.StagedUnlogged], others, tx.SetPersistenceStatement(want))
	}
	log.Warn("making the staging table "+is[want]+" (apply.transaction.staging): ALTER TABLE rewrites it under an exclusive lock",
		zap.String("table", cfg.Postgres.Schema+".tx_staged"), zap.String("from", is[p.StagedUnlogged]), zap.String("to", is[want]))
	if err := tx.SetStagingPersistence(ctx, pool, want, stagingLockTimeout); err != nil {
		return fmt.Errorf("%w (another session holds tx_staged or tx_staging_marker; try again once it ends)", err)
	}
	log.Warn("staging table is now "+is[want], zap.String("table", cfg.Postgres.Schema+".tx_staged"))
	return nil
}

// matchMarker makes the staging marker as tx_staged. A marker left unlogged
// beside a logged table (as migration 0013 made it) only costs a rewind of
// every partition at a crash: a failure is told and the start goes on. A
// logged marker beside an unlogged table must not stay: the start fails
// rather than stage where a crash would lose records unseen.
func matchMarker(ctx context.Context, pool *pgxpool.Pool, tx dedup.Transactions, schema string, log *zap.Logger) error {
	p, err := tx.StagingPersistence(ctx, pool)
	if err != nil || p.StagedUnlogged == p.MarkerUnlogged {
		return err
	}
	change, err := tx.MatchMarkerPersistence(ctx, pool, stagingLockTimeout)
	switch {
	case err != nil && p.Safe():
		log.Warn("could not make the staging marker logged as the staging table is; a crash of the target rewinds every partition that staged until a start does",
			zap.String("table", schema+".tx_staging_marker"), zap.Error(err))
		return nil
	case err != nil:
		return fmt.Errorf("%s.tx_staged is unlogged and its marker logged, so a crash would lose staged records unseen; making the marker unlogged failed: %w "+
			"(another session holds tx_staging_marker; try again once it ends)", schema, err)
	case change == dedup.MarkerLogged:
		log.Info("the staging marker is now logged, as the staging table is: a crash of the target no longer rewinds the partitions",
			zap.String("table", schema+".tx_staging_marker"))
	case change == dedup.MarkerReset:
		log.Warn("the staging table was unlogged and its marker logged (tx_staged altered alone): a crash meanwhile would have lost staged records unseen, "+
			"so the marker is now unlogged and emptied, and every partition that staged reads again from past what the resolver applied of it",
			zap.String("table", schema+".tx_staging_marker"))
	}
	return nil
}

// stagingLockTimeout bounds applyStaging's wait for tx_staged's lock.
const stagingLockTimeout = "10s"

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
