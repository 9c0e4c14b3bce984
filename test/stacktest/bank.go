package stacktest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The bank workload of apply.consistency: transaction (docs/transactions.md)
// has two source invariants a reader of the target can check in any one
// snapshot: a set of accounts whose balances always sum to a constant
// (transfers move money between two accounts in one source transaction), and
// orders inserted with their lines in one source transaction (order n has
// n%4+1 lines). The end-to-end tests and the fault suite write it; BankReader
// checks what the target shows.

// Bank names the target tables of the bank workload and its constants.
type Bank struct {
	Accounts, Orders, Lines string // target tables, schema-qualified and quoted
	N                       int64  // accounts
	Balance                 int64  // each account's opening balance
}

// OrderLines is how many lines the bank workload writes with order id.
func OrderLines(id int) int { return id%4 + 1 }

// BankReader polls the target in REPEATABLE READ until finished and records
// every snapshot that shows what the source never committed: a total other
// than the constant, an order without all its lines, lines without their
// order.
type BankReader struct {
	Pool       *pgxpool.Pool
	bank       Bank
	mu         sync.Mutex
	snapshots  int // with every account present
	violations []string
	// outage is set while the target server is down on purpose (a
	// restart): the reader's errors then are the outage's, counted in
	// outageErrors, not violations, until a look succeeds after
	// EndOutage.
	outage, ending bool
	outageErrors   int
	stop           chan struct{}
	done           chan struct{}
}

// StartBankReader starts a reader of the target at url polling every
// interval.
func StartBankReader(t testing.TB, url string, bank Bank, interval time.Duration) *BankReader {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	r := &BankReader{Pool: pool, bank: bank, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(interval):
			}
			full, v, err := r.look(context.Background())
			r.mu.Lock()
			switch {
			case err != nil && r.outage:
				r.outageErrors++
			case err != nil:
				r.violations = append(r.violations, "reader: "+err.Error())
			case r.ending:
				r.outage, r.ending = false, false
			}
			if full {
				r.snapshots++
			}
			if v != "" {
				r.violations = append(r.violations, v)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// look reads one snapshot: full says every account was there.
func (r *BankReader) look(ctx context.Context) (full bool, violation string, err error) {
	tx, err := r.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, "", err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	b := r.bank
	var n, total int64
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(balance), 0) FROM `+b.Accounts).Scan(&n, &total); err != nil {
		return false, "", err
	}
	full = n == b.N
	if full && total != b.N*b.Balance {
		return full, fmt.Sprintf("the accounts total %d, the source's is always %d", total, b.N*b.Balance), nil
	}
	var order, lines int64
	err = tx.QueryRow(ctx, `SELECT o.id, (SELECT count(*) FROM `+b.Lines+` l WHERE l.order_id = o.id) AS n FROM `+b.Orders+` o
		WHERE (SELECT count(*) FROM `+b.Lines+` l WHERE l.order_id = o.id) <> o.id % 4 + 1 LIMIT 1`).Scan(&order, &lines)
	if err == nil {
		return full, fmt.Sprintf("order %d is visible with %d of its %d lines", order, lines, OrderLines(int(order))), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return full, "", err
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+b.Lines+` l WHERE NOT EXISTS (SELECT 1 FROM `+b.Orders+` o WHERE o.id = l.order_id)`).Scan(&lines); err != nil {
		return full, "", err
	}
	if lines > 0 {
		return full, fmt.Sprintf("%d order lines are visible without their order", lines), nil
	}
	return full, "", nil
}

// Seen returns how many snapshots with every account the reader has
// checked so far.
func (r *BankReader) Seen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshots
}

// Outage tells the reader the target server is about to go down: its
// errors are expected until EndOutage. The pool reconnects by itself.
func (r *BankReader) Outage() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outage, r.ending = true, false
}

// EndOutage tells the reader the server is back: its first look that
// succeeds ends the outage (a connection the crash broke may fail once
// more), and errors are violations again from then on.
func (r *BankReader) EndOutage() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outage {
		r.ending = true
	}
}

// OutageErrors returns how many looks failed during outages, and whether
// one is still going on (no look succeeded since EndOutage).
func (r *BankReader) OutageErrors() (n int, ongoing bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outageErrors, r.outage
}

// Finish stops the reader and returns the snapshots it saw with every
// account present and the violations it recorded, in order. It may be
// called more than once.
func (r *BankReader) Finish() (snapshots int, violations []string) {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshots, r.violations
}
