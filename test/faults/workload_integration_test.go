//go:build integration

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// workload writes the source table: inserts, updates that increment seq and
// leave the TOASTed big text unchanged, rare updates of big, deletes and
// primary-key changes, in small transactions. It keeps the live key set so
// deletes and key changes hit existing rows, and counts row changes (each
// one Debezium event, tombstones aside).
type workload struct {
	t      *testing.T
	url    string
	rng    *rand.Rand
	mu     sync.Mutex
	keys   []int // live keys
	index  map[int]int
	nextID int
	events int
	dels   int // deletes, each followed by a tombstone record
	outbox int // outbox events written
	// extraSet, once a scenario added columns to the source, is the SET
	// clause updates also run, so the new columns carry data.
	extraSet string
	// bank, in the transaction-consistent scenarios, adds to each
	// transaction a transfer between two bank accounts and, to some, an
	// order with its lines, writes no outbox event, and records each
	// transaction's id (txbank_integration_test.go).
	bank *bankLoad
	// ignoreErrors ends the workload quietly on an error (a server restart
	// scenario expects them) instead of failing the test.
	ignoreErrors atomic.Bool
	stop         chan struct{}
	done         chan struct{}
}

func newWorkload(t *testing.T, url string) *workload {
	return &workload{t: t, url: url, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11)), index: map[int]int{}, nextID: 1}
}

// bigText is over 2 kB and incompressible enough to leave the row.
func bigText(id, version int) string {
	return fmt.Sprintf("%d/%d:", id, version) + randomHex(id*31+version, 48)
}

// randomHex returns n*64 pseudo-random hex digits from seed: ~3 kB for 48,
// which pglz cannot shrink below the TOAST threshold.
func randomHex(seed, n int) string {
	r := rand.New(rand.NewPCG(uint64(seed), 3))
	b := make([]byte, 0, n*64)
	for range n * 64 {
		b = append(b, "0123456789abcdef"[r.IntN(16)])
	}
	return string(b)
}

func (w *workload) addKey(id int) {
	w.index[id] = len(w.keys)
	w.keys = append(w.keys, id)
}

func (w *workload) removeKey(id int) {
	i, ok := w.index[id]
	if !ok {
		return
	}
	last := w.keys[len(w.keys)-1]
	w.keys[i] = last
	w.index[last] = i
	w.keys = w.keys[:len(w.keys)-1]
	delete(w.index, id)
}

// seed inserts n rows in one statement, before Debezium is registered: they
// arrive as snapshot events.
func (w *workload) seed(n int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, w.url)
	if err != nil {
		w.t.Fatal(err)
	}
	defer conn.Close(ctx)
	batch := &pgx.Batch{}
	for i := 0; i < n; i++ {
		id := w.nextID
		w.nextID++
		var big *string
		if id%4 == 0 {
			s := bigText(id, 0)
			big = &s
		}
		batch.Queue(`INSERT INTO public.accounts VALUES ($1::int, 1, $2::numeric, '2026-01-01T00:00:00Z'::timestamptz + $1::int * interval '1 second', $3::text)`,
			id, fmt.Sprintf("%d.%02d", id*3, id%100), big)
		w.addKey(id)
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		w.t.Fatalf("seed: %v", err)
	}
	w.events += n
}

// run starts the workload: transactions until stop, or until max
// transactions when count > 0; pause between transactions.
func (w *workload) run(count int, pause time.Duration) {
	if w.bank != nil {
		// One resolver applies every source transaction in order, behind
		// Debezium's transaction markers: the transaction-consistent
		// scenarios write at a pace they catch up with after a fault on a
		// shared machine, not at the pace of the partitions.
		pause = max(pause, txPause)
	}
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, w.url)
		if err != nil {
			w.t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for i := 0; count <= 0 || i < count; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(pause):
			}
			if err := w.transaction(ctx, conn); err != nil {
				if w.ignoreErrors.Load() {
					w.t.Logf("workload ends on an expected error: %v", err)
					return
				}
				w.t.Errorf("workload: %v", err)
				return
			}
		}
	}()
}

// finished reports whether the workload ended (its transaction count reached).
func (w *workload) finished() bool {
	if w.done == nil {
		return true
	}
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// wait waits for a bounded workload to finish.
func (w *workload) wait() {
	if w.done != nil {
		<-w.done
	}
}

func (w *workload) deletes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dels
}

// halt stops the workload and waits for its last transaction.
func (w *workload) halt() {
	if w.stop == nil {
		return
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *workload) Events() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bank != nil {
		return w.events + w.bank.events
	}
	return w.events
}

func (w *workload) transaction(ctx context.Context, conn *pgx.Conn) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	n := 1 + w.rng.IntN(4)
	events, pendingOutbox := 0, 0
	for range n {
		pick := func() int { return w.keys[w.rng.IntN(len(w.keys))] }
		op := w.rng.IntN(100)
		if len(w.keys) < 100 {
			op = 0 // keep a population to update
		}
		switch {
		case op < 20: // insert
			id := w.nextID
			w.nextID++
			var big *string
			if id%4 == 0 {
				s := bigText(id, 0)
				big = &s
			}
			_, err = tx.Exec(ctx, `INSERT INTO public.accounts VALUES ($1::int, 1, $2::numeric, now(), $3::text)`, id, fmt.Sprintf("%d.%02d", w.rng.IntN(100000), w.rng.IntN(100)), big)
			w.addKey(id)
		case op < 80: // update: big unchanged; half of them also write an outbox event
			id := pick()
			_, err = tx.Exec(ctx, `UPDATE public.accounts SET seq = seq + 1, balance = balance + $2::numeric, updated_at = now()`+w.extraSet+` WHERE id = $1`,
				id, fmt.Sprintf("%d.%02d", w.rng.IntN(50), w.rng.IntN(100)))
			if err == nil && op%2 == 0 && w.bank == nil {
				_, err = tx.Exec(ctx, outboxInsert, id, w.rng.IntN(1000)-500)
				pendingOutbox++
			}
		case op < 85: // update of big itself
			id := pick()
			_, err = tx.Exec(ctx, `UPDATE public.accounts SET seq = seq + 1, big = $2 WHERE id = $1`, id, bigText(id, w.rng.IntN(1000)))
		case op < 95: // delete
			id := pick()
			_, err = tx.Exec(ctx, `DELETE FROM public.accounts WHERE id = $1`, id)
			w.removeKey(id)
			w.dels++
		default: // primary-key change: delete + create in Debezium
			id := pick()
			to := w.nextID
			w.nextID++
			// big is left unchanged: the create Debezium emits for the
			// new key carries the unchanged-TOAST placeholder, whose value
			// pgsink takes from the old key's row (issue 28), in whichever
			// order the two partitions apply the halves.
			_, err = tx.Exec(ctx, `UPDATE public.accounts SET id = $2, seq = seq + 1 WHERE id = $1`, id, to)
			w.removeKey(id)
			w.addKey(to)
			events++ // two events: a delete (and its tombstone) and a create
			w.dels++
		}
		if err != nil {
			return err
		}
		events++
	}
	var bank bankTx
	if w.bank != nil {
		if bank, err = w.bank.write(ctx, tx, w.rng); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		if w.bank != nil {
			// An error on COMMIT is ambiguous: settle asks the server.
			bank.accountEvents = events
			w.bank.uncertain = &bank
		}
		return err
	}
	w.events += events
	w.outbox += pendingOutbox
	if w.bank != nil {
		w.bank.committed(bank)
	}
	return nil
}

// accountEvents counts the accounts table's row changes alone (Events
// counts the bank's too).
func (w *workload) accountEvents() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events
}

func (w *workload) outboxEvents() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.outbox
}

// alter runs DDL on the source between two workload transactions, and from
// then on updates also run set (", col = expr", or "" for none).
func (w *workload) alter(ddl, set string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, w.url)
	if err != nil {
		w.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, ddl); err != nil {
		w.t.Fatalf("source DDL: %v\n%s", err, ddl)
	}
	w.extraSet = set
}
