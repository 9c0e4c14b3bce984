package stacktest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LoseSlots drops every replication slot of the sandbox's database, ending
// the walsenders that hold them: what a lost slot looks like to Debezium
// (a failover, max_slot_wal_keep_size, an operator). Delete the connectors
// first, or Connect restarts them onto new slots.
func (s *Sandbox) LoseSlots(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.Env.AdminURL)
	if err != nil {
		return fmt.Errorf("stacktest: connect as admin: %w", err)
	}
	defer conn.Close(ctx)
	return dropSlots(ctx, conn, s.SourceDB)
}
