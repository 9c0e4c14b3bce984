//go:build integration

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// commitStall makes some COMMITs of the target slow, so the test can kill
// the connection while COMMIT is in flight and before anything is durable: a
// deferred constraint trigger on the offsets row runs at COMMIT time, and
// sleeps in one transaction of five.
const commitStall = `CREATE FUNCTION pgsink.faults_commit_stall() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF random() < 0.2 THEN PERFORM pg_sleep(2); END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER faults_commit_stall AFTER UPDATE ON pgsink.offsets
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pgsink.faults_commit_stall();`

// ambiguity counts the connections the killer ended during COMMIT, by what
// had become of the transaction.
type ambiguity struct {
	armed      atomic.Bool  // until then, every wait is released and nothing killed
	rolledBack atomic.Int64 // killed in the stall: the transaction never committed
	committed  atomic.Int64 // killed in the synchronous-replication wait: committed locally, the client never told
	released   atomic.Int64 // waits cancelled instead: the client got its answer
	flips      atomic.Int64 // standby requirement lifted for exiting backends
}

// syncRepOn makes every COMMIT of the target database wait for a
// synchronous standby that does not exist, while the rest of the server
// (the source, Debezium, other databases) commits locally as before. A COMMIT
// in that wait is the textbook ambiguous commit: durable here, but the
// client is told nothing if its connection dies. The returned function
// restores the server's settings (also run at cleanup).
func syncRepOn(t *testing.T, adminURL, targetDB string) func() {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	undo := func() {
		for _, sql := range []string{`ALTER SYSTEM RESET synchronous_standby_names`, `ALTER SYSTEM RESET synchronous_commit`, `SELECT pg_reload_conf()`} {
			if _, err := admin.Exec(ctx, sql); err != nil {
				t.Errorf("restoring the server's settings: %s: %v", sql, err)
			}
		}
	}
	done := false
	restore := func() {
		if !done {
			done = true
			undo()
			admin.Close(ctx)
		}
	}
	t.Cleanup(restore)
	for _, sql := range []string{
		`ALTER SYSTEM SET synchronous_commit = 'local'`,
		fmt.Sprintf(`ALTER DATABASE %s SET synchronous_commit = 'on'`, pgx.Identifier{targetDB}.Sanitize()),
		`ALTER SYSTEM SET synchronous_standby_names = 'faults_no_such_standby'`,
		`SELECT pg_reload_conf()`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the reload reaches every backend
	return restore
}

// killDuringCommit watches the target database's backends until stop is
// closed: a COMMIT stalled by commitStall is terminated (rolled back); a
// COMMIT waiting for the standby is terminated one time in two (committed,
// unacknowledged) and released otherwise; any other statement waiting for
// the standby (a partition claim, say) is released. Until a.armed, it only
// releases.
func killDuringCommit(t *testing.T, adminURL, targetDB string, stop <-chan struct{}, a *ambiguity) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close(ctx)
		// A terminated backend stays listed until it has exited: act on
		// each once.
		seen := map[int32]bool{}
		type backend struct {
			pid       int32
			waitEvent string
			commit    bool
		}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			rows, _ := admin.Query(ctx, `SELECT pid, wait_event, query ~* '^\s*commit' FROM pg_stat_activity
				WHERE datname = $1 AND wait_event IN ('SyncRep', 'PgSleep') AND pid <> pg_backend_pid()`, targetDB)
			list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (backend, error) {
				var b backend
				err := r.Scan(&b.pid, &b.waitEvent, &b.commit)
				return b, err
			})
			if err != nil {
				t.Errorf("pg_stat_activity: %v", err)
				return
			}
			exiting := false
			for _, b := range list {
				var fn string
				switch {
				case seen[b.pid] && b.waitEvent == "SyncRep":
					// Terminated, the backend drops pgsink's staging temp
					// tables on its way out, in a transaction that waits
					// for the standby too and ignores every signal: only
					// dropping the standby requirement lets it exit (and
					// close the socket pgsink's COMMIT waits on).
					exiting = true
					continue
				case seen[b.pid]:
					continue
				case !a.armed.Load() && b.waitEvent == "SyncRep":
					fn = "pg_cancel_backend"
				case !a.armed.Load():
					continue
				case b.waitEvent == "PgSleep" && b.commit:
					fn = "pg_terminate_backend"
					a.rolledBack.Add(1)
				case b.waitEvent == "SyncRep" && b.commit && rand.IntN(2) == 0:
					fn = "pg_terminate_backend"
					a.committed.Add(1)
				case b.waitEvent == "SyncRep":
					fn = "pg_cancel_backend"
					a.released.Add(1)
				default:
					continue // a claim in the stall: it goes on after the sleep
				}
				if fn == "pg_terminate_backend" {
					seen[b.pid] = true
				}
				if _, err := admin.Exec(ctx, `SELECT `+fn+`($1)`, b.pid); err != nil {
					t.Errorf("%s(%d): %v", fn, b.pid, err)
				}
			}
			if exiting {
				releaseExiting(t, admin, targetDB, seen)
				a.flips.Add(1)
			}
		}
	}()
	return done
}

// Scenario 2: the apply connection is killed (pg_terminate_backend) while
// its COMMIT is in flight — both before the commit is durable and after, with
// the client never told which. pgsink must settle each by re-reading its
// offsets row (dedup.Offsets.ResolveCommit) and neither lose nor repeat a
// batch.
func TestFaults2AmbiguousCommit(t *testing.T) {
	long(t)
	s := newScenario(t, "2 connection killed during COMMIT", scenarioOptions{})
	s.result.FaultKinds = "pg_terminate_backend during COMMIT"
	s.exec(commitStall)
	u, err := url.Parse(s.targetURL)
	if err != nil {
		t.Fatal(err)
	}
	targetDB := strings.TrimPrefix(u.Path, "/")
	restore := syncRepOn(t, s.st.Env.AdminURL, targetDB)
	var amb ambiguity
	stop := make(chan struct{})
	killer := killDuringCommit(t, s.st.Env.AdminURL, targetDB, stop, &amb)
	s.start("a")
	s.start("b")
	// The instances' start-up (the test audit table) is not under test:
	// the killer kills once they apply.
	s.waitOwned(6, 90*time.Second)
	amb.armed.Store(true)
	s.load.run(0, 3*time.Millisecond)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && (amb.committed.Load() < 10 || amb.rolledBack.Load() < 10 || time.Since(s.started) < 40*time.Second) {
		time.Sleep(time.Second)
		if int(time.Since(s.started).Seconds())%10 == 0 {
			t.Logf("killed during COMMIT so far: %d rolled back, %d committed; %d waits released, %d lifts; target %d rows",
				amb.rolledBack.Load(), amb.committed.Load(), amb.released.Load(), amb.flips.Load(), s.count("public.accounts"))
		}
	}
	s.load.halt()
	close(stop)
	<-killer
	// The standby wait ends for everyone; what is left of the stream applies.
	restore()
	quiet := s.waitQuiet(3 * time.Minute)
	s.stopAll()
	s.result.Faults = int(amb.committed.Load() + amb.rolledBack.Load())
	s.result.FaultKinds = fmt.Sprintf("pg_terminate_backend during COMMIT: %d before durable (rolled back), %d after (committed, unacknowledged); %d standby waits released, %d lifts for exiting backends",
		amb.rolledBack.Load(), amb.committed.Load(), amb.released.Load(), amb.flips.Load())
	t.Log(s.result.FaultKinds)
	s.checkAll(quiet, 0)
	if amb.committed.Load() == 0 || amb.rolledBack.Load() == 0 {
		t.Errorf("a side of the ambiguity was never exercised: %s", s.result.FaultKinds)
	}
	if s.result.Applied == 0 {
		t.Errorf("nothing applied")
	}
}

// count is a target table's row count, -1 when it cannot be read.
func (s *scenario) count(table string) int {
	n := -1
	_ = s.target.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n)
	return n
}

// releaseExiting lifts the standby requirement until the terminated
// backends stuck in their exit have gone (at most 10 s), then restores it.
// Live sessions commit normally meanwhile, which changes nothing for the
// scenario.
func releaseExiting(t *testing.T, admin *pgx.Conn, targetDB string, seen map[int32]bool) {
	ctx := context.Background()
	set := func(value string) {
		for _, sql := range []string{`ALTER SYSTEM SET synchronous_standby_names = ` + value, `SELECT pg_reload_conf()`} {
			if _, err := admin.Exec(ctx, sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	}
	set("''")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rows, _ := admin.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'SyncRep'`, targetDB)
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			t.Errorf("pg_stat_activity: %v", err)
			break
		}
		stuck := false
		for _, pid := range pids {
			stuck = stuck || seen[pid]
		}
		if !stuck {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	set("'faults_no_such_standby'")
}
