package sink

import (
	"cmp"
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// sessionStages is the staging tables one session holds, each with when a
// committed transaction last used it. A session keeps a staging table for
// the next batch of its table (creating one is a round trip and catalog
// writes), but at most Options.StagingTablesPerConnection of them: since
// any connection applies any partition, each would otherwise end up with
// one per table the instance writes, tables × connections temporary tables
// on the server, each with its catalog rows, relcache entry and files.
//
// Evicted by least recent use, dropped before the COMMIT of the
// transaction that went over the bound (queueStageEvictions): by then
// every statement naming them has run, and a transaction that rolls back
// takes its drops back with its creates, so what the session holds and
// what it remembers agree at every commit.
type sessionStages struct {
	lastUse map[string]uint64 // staging table name -> use tick
	tick    uint64
}

// sessionStagesKey is where a connection keeps its sessionStages.
const sessionStagesKey = "pgsink staging tables"

func stagesOf(conn *pgx.Conn) *sessionStages {
	data := conn.PgConn().CustomData()
	s, ok := data[sessionStagesKey].(*sessionStages)
	if !ok {
		s = &sessionStages{lastUse: map[string]uint64{}}
		data[sessionStagesKey] = s
	}
	return s
}

// coldest returns which staging tables to drop so that at most limit stay
// once a transaction that used the staging tables used (those it created
// among them) commits: they count as the most recent, and the least
// recently used go first. A transaction that alone uses more than limit drops some of its
// own, after it is done with them.
func (s *sessionStages) coldest(used []string, limit int) []string {
	type entry struct {
		name string
		tick uint64
	}
	hot := map[string]bool{}
	for _, name := range used {
		hot[name] = true
	}
	all := make([]entry, 0, len(s.lastUse)+len(used))
	for name, tick := range s.lastUse {
		if !hot[name] {
			all = append(all, entry{name, tick})
		}
	}
	if len(all)+len(hot) <= limit {
		return nil
	}
	// The transaction's own, oldest use first, after every other.
	for i, name := range used {
		all = append(all, entry{name, s.tick + 1 + uint64(i)})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.tick, b.tick) })
	drop := make([]string, 0, len(all)-limit)
	for _, e := range all[:len(all)-limit] {
		drop = append(drop, e.name)
	}
	return drop
}

// committed records a committed transaction's use of the session's
// staging tables: its created and used ones are the most recent, its
// dropped ones gone.
func (s *sessionStages) committed(used, dropped []string) {
	for _, name := range used {
		s.tick++
		s.lastUse[name] = s.tick
	}
	for _, name := range dropped {
		delete(s.lastUse, name)
	}
}

// useStage makes sure the session holds the staging table name before a
// statement naming it is queued, creating it with createSQL if not.
func (x *txn) useStage(ctx context.Context, name, createSQL string) error {
	if !slices.Contains(x.usedStages, name) {
		x.usedStages = append(x.usedStages, name)
	}
	if _, ok := stagesOf(x.conn).lastUse[name]; ok || slices.Contains(x.created, name) {
		return nil
	}
	x.queue.Queue(createSQL)
	x.created = append(x.created, name)
	return x.flush(ctx)
}

// queueStageEvictions queues, last before COMMIT, the DROP of the staging
// tables beyond the session's bound.
func (x *txn) queueStageEvictions() {
	if x.maxStages <= 0 || len(x.usedStages) == 0 {
		return
	}
	x.dropped = stagesOf(x.conn).coldest(x.usedStages, x.maxStages)
	for _, name := range x.dropped {
		x.queue.Queue("DROP TABLE IF EXISTS " + pgx.Identifier{"pg_temp", name}.Sanitize())
	}
}

// keepStages records on the connection, once the transaction committed,
// the staging tables it created, used and dropped: a staging table created
// or dropped in a transaction that rolled back is as it was.
func (x *txn) keepStages() {
	stagesOf(x.conn).committed(x.usedStages, x.dropped)
	data := x.conn.PgConn().CustomData()
	for _, name := range x.dropped {
		delete(data, stageRowsKey(pgx.Identifier{"pg_temp", name}.Sanitize()))
	}
}
