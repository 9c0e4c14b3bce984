//go:build integration

package sink

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/test/stacktest"
)

const routerFleetConfig = `kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
tables:
  - topic_pattern: 'app\.public\.(?P<table>t[0-9]+)'
    target: 'public.${table}'
`

// fleetRouter is a Router over a fresh target database holding tables
// public.t0 … t<n-1>, with a pool of maxConns connections.
func fleetRouter(t *testing.T, n int, maxConns int32) (*Router, *pgxpool.Pool) {
	t.Helper()
	var setup []string
	for i := range n {
		setup = append(setup, fmt.Sprintf(`CREATE TABLE public.t%d (id int PRIMARY KEY, note text)`, i),
			fmt.Sprintf(`GRANT SELECT, INSERT, UPDATE, DELETE ON public.t%d TO pgsink`, i))
	}
	url := stacktest.TargetDatabase(t, setup...)
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg, err := config.Parse("test.yaml", []byte(routerFleetConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return NewRouter(cfg, pool), pool
}

func routeTopic(ctx context.Context, r *Router, table int) (*Table, error) {
	ch := debezium.Change{Topic: fmt.Sprintf("app.public.t%d", table), Kind: debezium.KindChange}
	return r.resolve(ctx, &ch, nil)
}

// TestIntegrationRouterConcurrentCatalogReads: records of many tables
// routed from many goroutines at once each get their own table, the same
// *Table for every record of a table, each read from the catalog.
func TestIntegrationRouterConcurrentCatalogReads(t *testing.T) {
	const tables, routers = 30, 8
	r, _ := fleetRouter(t, tables, 4)
	ctx := context.Background()
	got := make([][]*Table, routers)
	var wg sync.WaitGroup
	errs := make(chan error, routers*tables)
	for g := range routers {
		got[g] = make([]*Table, tables)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range tables {
				i := (k + g*7) % tables // each goroutine in its own order
				tbl, err := routeTopic(ctx, r, i)
				if err != nil {
					errs <- err
					return
				}
				got[g][i] = tbl
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range tables {
		want := fmt.Sprintf("public.t%d", i)
		if got[0][i] == nil || got[0][i].Ref() != want || len(got[0][i].Columns) != 2 {
			t.Fatalf("t%d routed to %+v, want %s with its 2 columns", i, got[0][i], want)
		}
		for g := 1; g < routers; g++ {
			if got[g][i] != got[0][i] {
				t.Errorf("t%d: goroutine %d got another *Table than goroutine 0", i, g)
			}
		}
	}
	if len(r.reading) != 0 {
		t.Errorf("reads still marked in progress: %v", r.reading)
	}
}

// TestIntegrationRouterRoutesWhileReadingCatalog: while a new table's
// catalog read waits for a pool connection (the appliers hold them all),
// records of a table already read are routed without waiting for it.
func TestIntegrationRouterRoutesWhileReadingCatalog(t *testing.T) {
	r, pool := fleetRouter(t, 2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := routeTopic(ctx, r, 0); err != nil {
		t.Fatal(err)
	}
	held, err := pool.Acquire(ctx) // the pool's only connection
	if err != nil {
		t.Fatal(err)
	}
	newTable := make(chan error, 1)
	go func() {
		_, err := routeTopic(ctx, r, 1)
		newTable <- err
	}()
	// Wait until the read of t1 has begun (and released the lock).
	for {
		r.mu.Lock()
		_, busy := r.reading["public.t1"]
		r.mu.Unlock()
		if busy {
			break
		}
		select {
		case err := <-newTable:
			t.Fatalf("t1 routed while the pool's only connection was held: %v", err)
		case <-ctx.Done():
			t.Fatal("the read of t1 never began")
		case <-time.After(time.Millisecond):
		}
	}
	known := make(chan error, 1)
	go func() {
		tbl, err := routeTopic(ctx, r, 0)
		if err == nil && tbl.Ref() != "public.t0" {
			err = fmt.Errorf("routed to %s", tbl.Ref())
		}
		known <- err
	}()
	select {
	case err := <-known:
		if err != nil {
			t.Fatalf("t0: %v", err)
		}
	case err := <-newTable:
		t.Fatalf("t1 routed before its connection was given back: %v", err)
	case <-ctx.Done():
		t.Fatal("routing to t0, already read, waited for t1's catalog read")
	}
	held.Release()
	if err := <-newTable; err != nil {
		t.Fatalf("t1 once the connection was back: %v", err)
	}
}
