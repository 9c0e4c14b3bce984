package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
)

// A replay of the transaction topic (apply.consistency: transaction) moves
// the resolver's position back: it reads the ENDs again from there and
// passes over those of transactions it applied (pgsink.tx_resolved), so
// the replay applies nothing twice. What it is for: a resolver to be taken
// again through ENDs whose transactions an operator made unapplied, or a
// check that nothing is left behind; a replay of the tables' topics is
// what applies data again (and, under this mode, only that of transactions
// not applied yet, docs/transactions.md).

// isResolverTopic reports whether topic is the transaction topic the
// resolver reads.
func isResolverTopic(cfg *config.Config, topic string) bool {
	return topic != "" && topic == connector.TransactionTopic(cfg)
}

// checkResolverRewind refuses a replay of the transaction topic that would
// lose or stall transactions. Moving the resolver forward would skip ENDs:
// their transactions would never be applied, their staged records left
// behind. Moving it back to an END written more than retention.tombstones
// ago may reach transactions whose tx_resolved rows were pruned: the
// resolver would take them for unapplied and wait for their events, which
// are not staged again, then stop. An END is recorded applied after it was
// written, so one written within the retention is still recorded.
func checkResolverRewind(ctx context.Context, cfg *config.Config, in *connector.Inspector, conn *pgx.Conn, r rewind) error {
	stored, err := dedup.NewOffsets(cfg.Postgres.Schema).Read(ctx, conn, r.id)
	if errors.Is(err, dedup.ErrNotClaimed) {
		// No resolver ran yet: it would start at --from, and every END
		// before it would be skipped while the data partitions stage
		// those transactions from the beginning.
		low, _, err := in.Watermarks(r.id.Topic, r.id.Partition)
		if err != nil {
			return fmt.Errorf("the transaction topic's earliest offset: %w", err)
		}
		if r.from > low {
			return fmt.Errorf("%s[%d]: no resolver has claimed the transaction topic yet, so it would start at offset %d and skip the ENDs from %d on: "+
				"their transactions would never be applied, or later ones applied before them; a replay of the transaction topic only moves a resolver back", r.id.Topic, r.id.Partition, r.from, low)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if r.from > stored.NextOffset {
		return fmt.Errorf("%s[%d]: offset %d is past the resolver's position %d: the ENDs between would be skipped and their transactions never applied; "+
			"a replay of the transaction topic only moves the resolver back", r.id.Topic, r.id.Partition, r.from, stored.NextOffset)
	}
	if r.from == stored.NextOffset {
		return nil
	}
	written, err := in.TimestampAt(r.id.Topic, r.id.Partition, r.from, waitingReadTimeout)
	if err != nil {
		return fmt.Errorf("the time the record at --from was written, to check it against retention.tombstones: %w", err)
	}
	var now time.Time
	if err := conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if retention := cfg.Retention.Tombstones.Std(); written.Before(now.Add(-retention)) {
		return fmt.Errorf("%s[%d]@%d was written at %s, more than retention.tombstones (%s) ago: transactions that old may no longer be recorded as applied "+
			"(pgsink.tx_resolved is pruned after that retention), and the resolver would wait for their events, which are not staged again, and stop; choose a later --from",
			r.id.Topic, r.id.Partition, r.from, written.UTC().Format(time.RFC3339), retention)
	}
	return nil
}
