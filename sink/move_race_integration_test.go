//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// toastHistory is a source history of one table whose notes column is
// TOASTed: keys created, updated with and without their notes, moved to a
// new key (Debezium's primary-key change, the create carrying the
// placeholder) and deleted, each key on a partition of its own choosing,
// as the fault suite's workload does. Keys are never reused.
type toastHistory struct {
	rng     *rand.Rand
	parts   [][]sink.Item // each partition's records, in order
	partOf  map[int64]int
	live    map[int64]*toastRow
	order   []int64 // live keys, in creation order
	nextKey int64
	lo      int64 // the round's first key
	f       *fixture
	log     []string
}

type toastRow struct {
	status  string
	notes   any // string or nil
	version int64
}

func (h *toastHistory) emit(key int64, e ev, edit func(*debezium.Change)) {
	it := h.f.batch(e).Items[0]
	if edit != nil {
		edit(&it.Change)
	}
	p := h.partOf[key]
	h.parts[p] = append(h.parts[p], it)
}

func (h *toastHistory) create(version int64) {
	k := h.nextKey
	h.nextKey++
	h.partOf[k] = h.rng.IntN(len(h.parts))
	var notes any
	if h.rng.IntN(4) > 0 {
		notes = fmt.Sprintf("big%d.0", k)
	}
	st := "s" + strconv.FormatInt(version, 10)
	h.live[k] = &toastRow{st, notes, version}
	h.order = append(h.order, k)
	h.emit(k, ev{debezium.OpCreate, k, st, notes, version}, nil)
	h.log = append(h.log, fmt.Sprintf("v%d create %d(p%d) %v", version, k, h.partOf[k], notes))
}

// placeholder is what Debezium sends for a notes column the change left
// alone: the placeholder when it is TOASTed, null when it is null.
func placeholder(notes any) any {
	if notes == nil {
		return nil
	}
	return unchanged
}

func (h *toastHistory) remove(k int64) {
	delete(h.live, k)
	for i, o := range h.order {
		if o == k {
			h.order = append(h.order[:i], h.order[i+1:]...)
			return
		}
	}
}

func (h *toastHistory) step(version int64) {
	if len(h.order) == 0 {
		h.create(version)
		return
	}
	k := h.order[h.rng.IntN(len(h.order))]
	r := h.live[k]
	st := "s" + strconv.FormatInt(version, 10)
	switch op := h.rng.IntN(100); {
	case op < 30: // the notes themselves
		r.notes, r.status, r.version = fmt.Sprintf("big%d.%d", k, version), st, version
		h.emit(k, ev{debezium.OpUpdate, k, st, r.notes, version}, nil)
		h.log = append(h.log, fmt.Sprintf("v%d big %d", version, k))
	case op < 45: // notes unchanged
		r.status, r.version = st, version
		h.emit(k, ev{debezium.OpUpdate, k, st, placeholder(r.notes), version}, nil)
		h.log = append(h.log, fmt.Sprintf("v%d update %d", version, k))
	case op < 85: // primary-key change
		to := h.nextKey
		h.nextKey++
		h.partOf[to] = h.rng.IntN(len(h.parts))
		h.emit(k, ev{debezium.OpDelete, k, "", nil, version}, func(ch *debezium.Change) {
			ch.NewKey = debezium.Row{{Name: "id", Value: to}}
		})
		h.emit(to, ev{debezium.OpCreate, to, st, placeholder(r.notes), version}, func(ch *debezium.Change) {
			ch.OldKey = debezium.Row{{Name: "id", Value: k}}
		})
		h.remove(k)
		h.live[to] = &toastRow{st, r.notes, version}
		h.order = append(h.order, to)
		h.log = append(h.log, fmt.Sprintf("v%d move %d(p%d) -> %d(p%d)", version, k, h.partOf[k], to, h.partOf[to]))
	case op < 93:
		h.emit(k, ev{debezium.OpDelete, k, "", nil, version}, nil)
		h.remove(k)
		h.log = append(h.log, fmt.Sprintf("v%d delete %d", version, k))
	default:
		h.create(version)
	}
}

func (h *toastHistory) want() string {
	var out []string
	for k := h.lo; k < h.nextKey; k++ {
		if r, ok := h.live[k]; ok {
			notes := "∅"
			if r.notes != nil {
				notes = r.notes.(string)
			}
			out = append(out, fmt.Sprintf("%d:%s:%s@%d", k, r.status, notes, r.version))
		}
	}
	return strings.Join(out, " ")
}

func (h *toastHistory) got() string {
	// Rows a soft delete marked are not compared: an update folded into
	// its key's delete in one batch is not written to the marked row, and
	// a key created and deleted in one batch leaves none.
	rows, err := h.f.pool.Query(context.Background(), `SELECT "Order Id", status, coalesce(notes, '∅'), coalesce(_pgsink_lsn, -1)
		FROM "App ""x"""."Orders; DROP TABLE y" WHERE NOT deleted AND "Order Id" >= $1 AND "Order Id" < $2 ORDER BY 1`, h.lo, h.nextKey)
	if err != nil {
		h.f.t.Fatal(err)
	}
	var out []string
	var id, lsn int64
	var status, notes string
	if _, err := pgx.ForEachRow(rows, []any{&id, &status, &notes, &lsn}, func() error {
		out = append(out, fmt.Sprintf("%d:%s:%s@%d", id, status, notes, lsn))
		return nil
	}); err != nil {
		h.f.t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// TestIntegrationApplyToastRaces applies random histories of creates,
// updates with and without the TOASTed column, primary-key changes and
// deletes over two or three partitions, the partitions applied in a random
// interleaving with random batch boundaries (and, now and then, a fresh
// applier, as after pgsink's restart): the target must end as the source.
func TestIntegrationApplyToastRaces(t *testing.T) {
	rounds := 300
	if s := os.Getenv("PGSINK_TOAST_RACE_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil {
			t.Fatalf("PGSINK_TOAST_RACE_ROUNDS: %v", err)
		}
	}
	first := 0
	if s := os.Getenv("PGSINK_TOAST_RACE_FIRST"); s != "" {
		var err error
		if first, err = strconv.Atoi(s); err != nil {
			t.Fatalf("PGSINK_TOAST_RACE_FIRST: %v", err)
		}
	}
	t.Run("in order", func(t *testing.T) { toastRaces(t, first, rounds, sink.DeleteHard, false) })
	// Debezium re-sends the records after its last stored source offset
	// when Connect restarts: a partition meets records it applied again.
	t.Run("records sent again", func(t *testing.T) { toastRaces(t, first, rounds, sink.DeleteHard, true) })
	t.Run("soft deletes", func(t *testing.T) { toastRaces(t, first, rounds, sink.DeleteSoft, true) })
}

func toastRaces(t *testing.T, first, rounds int, deletes sink.DeleteMode, again bool) {
	f := newFixture(t, deletes, false)
	version := int64(10)
	for round := first; round < first+rounds; round++ {
		seed := uint64(round)
		rng := rand.New(rand.NewPCG(seed, 7))
		lo := int64(round+1) * 1000
		h := &toastHistory{rng: rng, parts: make([][]sink.Item, 2+rng.IntN(2)), partOf: map[int64]int{},
			live: map[int64]*toastRow{}, nextKey: lo, lo: lo, f: f}
		for range 1 + rng.IntN(3) {
			version++
			h.create(version)
		}
		for range 4 + rng.IntN(8) {
			version++
			h.step(version)
		}
		var applied []string
		for {
			var open []int
			for p, q := range h.parts {
				if len(q) > 0 {
					open = append(open, p)
				}
			}
			if len(open) == 0 {
				break
			}
			p := open[rng.IntN(len(open))]
			n := min(1+rng.IntN(3), len(h.parts[p]))
			b := &sink.Batch{Claim: f.claim, Items: append([]sink.Item(nil), h.parts[p][:n]...)}
			h.parts[p] = h.parts[p][n:]
			var desc []string
			for _, it := range b.Items {
				desc = append(desc, fmt.Sprintf("%c%d@%d", it.Change.Op, it.Change.Key[0].Value, it.Change.Version.LSN))
			}
			applied = append(applied, fmt.Sprintf("p%d[%s]", p, strings.Join(desc, " ")))
			f.applyBatch(b)
			if again && rng.IntN(8) == 0 {
				h.parts[p] = append(slices.Clone(b.Items), h.parts[p]...)
				applied = append(applied, "sent again")
			}
			if rng.IntN(10) == 0 {
				f.applier = sink.NewApplier(f.pool, sink.Options{Schema: schema})
				applied = append(applied, "restart")
			}
		}
		if got, want := h.got(), h.want(); got != want {
			t.Fatalf("round %d:\nhistory:\n  %s\napplied:\n  %s\n got %q\nwant %q", round,
				strings.Join(h.log, "\n  "), strings.Join(applied, "\n  "), got, want)
		}
	}
}
