//go:build integration

package txapply_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/sink/pgcopy"
	"github.com/pgsink/pgsink/txapply"
)

// unansweredCommit is a TCP proxy in front of PostgreSQL that, once armed,
// withholds from the client the answers of the first pipeline (the
// messages up to a ReadyForQuery) holding a COMMIT's CommandComplete, and
// closes that connection: the transaction committed, and the client read
// no result of it.
type unansweredCommit struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	fired  atomic.Bool
	wg     sync.WaitGroup
}

func newUnansweredCommit(t *testing.T, target string) *unansweredCommit {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &unansweredCommit{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *unansweredCommit) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(server, client); server.Close() }()
	// Server to client, a pipeline's answers at a time. The startup
	// packet is the client's; every server message is a type byte and a
	// length.
	var pending []byte
	header := make([]byte, 5)
	for {
		if _, err := io.ReadFull(server, header); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(header[1:])-4)
		if _, err := io.ReadFull(server, body); err != nil {
			return
		}
		pending = append(append(pending, header...), body...)
		if header[0] != 'Z' {
			continue
		}
		if p.armed.Load() && bytes.Contains(pending, []byte("C\x00\x00\x00\x0bCOMMIT\x00")) && p.fired.CompareAndSwap(false, true) {
			return // committed; the client is told nothing
		}
		if _, err := client.Write(pending); err != nil {
			return
		}
		pending = pending[:0]
	}
}

// TestIntegrationStagingUnansweredCommit: a batch re-staging records of
// applied transactions stages none of them, and says so
// (Stats.StagedShort), also when its COMMIT goes unanswered and the batch
// is found committed by reading its offsets row again: its statements'
// row counts were never read, so what it staged is not known, and the
// staging bound must not take its bytes for staged rows (it would then
// wait 30 s before counting again, connector/stagebound.go).
func TestIntegrationStagingUnansweredCommit(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	claim := tg.stageAll(t, b, 100)
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	resolve(t, resolver, &claim, ends(t, b))
	p := partitions(b)[0]
	part, err := tg.offsets.Claim(ctx, tg.pool, p, 0, "again")
	if err != nil {
		t.Fatal(err)
	}
	dec := tg.router.NewDecoder()
	var again []sink.Item
	for _, r := range b.records {
		if r.Topic != p.Topic || r.Partition != p.Partition || len(again) == 10 {
			continue
		}
		rec := toRecord(r)
		rec.Offset = part.NextOffset + int64(len(again)) // re-emitted after the partition's end
		it, ok, err := tg.router.Item(ctx, dec, rec)
		if err != nil {
			t.Fatal(err)
		}
		if ok && it.Change.Transaction != nil {
			again = append(again, it)
		}
	}
	if len(again) == 0 {
		t.Fatalf("no record of a source transaction in %s[%d]", p.Topic, p.Partition)
	}
	cfg, err := pgxpool.ParseConfig(tg.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	proxy := newUnansweredCommit(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	u, err := url.Parse(tg.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy.ln.Addr().String()
	pc, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		t.Fatal(err)
	}
	pc.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgcopy.RegisterTypes(conn.TypeMap(), 2)
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	stager := sink.NewApplier(pool, sink.Options{Schema: schema, StopOnError: true, StageTransactions: true})
	applyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	proxy.armed.Store(true)
	st, err := stager.Apply(applyCtx, &sink.Batch{Claim: &part, Items: again, Next: again[len(again)-1].Record.Offset + 1})
	if err != nil {
		t.Fatalf("Apply with its COMMIT unanswered: %v", err)
	}
	if !proxy.fired.Load() {
		t.Fatal("the proxy withheld no COMMIT's answer: the test did not run what it is for")
	}
	if st.Transactions != 1 || st.Staged != int64(len(again)) {
		t.Fatalf("stats %+v: want one transaction (found committed) staging %d records", st, len(again))
	}
	if !st.StagedShort {
		t.Errorf("a batch found committed after an unanswered COMMIT counted %d bytes of %d records it staged none of, without Stats.StagedShort", st.StagedBytes, st.Staged)
	}
}
