package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink/catalog"
)

// route is where the records of one topic go.
type route struct {
	cfg   *config.Table
	table *Table
	// bySchema is the table each event schema met so far writes to (see
	// Router.drift), by the schema's first column: Changes decoded with
	// one schema share the slice. Cleared when the target changes.
	bySchema map[*debezium.Column]*Table
	// byRecord is set when the record decides the target (a template
	// naming ${source.table} or a header): the route of each distinct set
	// of values met so far, each with its own target and state.
	byRecord map[recordKey]*route
}

// recordKey is what a record-decided target depends on.
type recordKey struct {
	schema, table string
	values        string // the values of the template's headers and fields, joined
}

// Router resolves topics to target tables: the configuration names the
// table, the target catalog gives its columns. With schema.create it creates
// a missing target from the first event; it compares each new event schema
// with the target and acts as schema.evolve says (see drift.go). `pgsink
// run` and `pgsink dlq retry` route through it alike. It is safe for
// concurrent use.
type Router struct {
	cfg    *config.Router
	q      catalog.Querier
	db     Execer
	mu     sync.Mutex
	routes map[string]*route
	tables map[string]*Table // by target, so topics sharing a table share it
	// reading is each target whose catalog is being read with mu
	// released (readUnlocked), closed once the read is done.
	reading map[string]chan struct{}
	// views are the tables without the columns an event schema lacks, by
	// target and those columns, so that every schema alike shares one
	// (and the statements built for it).
	views map[string]*Table
	// reported holds each schema difference already reported, so that
	// it is logged and counted once per table.
	reported map[string]bool
	observe  func(SchemaChange)
	// encoding is the file's encoding, for topics no table claims; avro
	// says whether any topic may carry Avro at all.
	encoding config.Encoding
	avro     bool
	schemas  debezium.SchemaSource
	// sources is the first source met of each templated target that is
	// swept after snapshots (see checkSource); kafkaOffsets says there is
	// no sweep at all (apply.offsets: kafka).
	sources      map[string]string
	kafkaOffsets bool
}

// NewRouter returns a Router over the target pool. Its DDL runs one
// statement per call (oneStatement).
func NewRouter(cfg *config.Config, pool *pgxpool.Pool) *Router {
	avro := cfg.Encoding != config.EncodingJSON
	for _, t := range cfg.Tables {
		avro = avro || t.Encoding != config.EncodingJSON
	}
	return &Router{cfg: cfg.Router(), q: pool, db: oneStatement{pool}, routes: map[string]*route{}, tables: map[string]*Table{},
		reading: map[string]chan struct{}{}, views: map[string]*Table{}, reported: map[string]bool{}, observe: func(SchemaChange) {},
		encoding: cfg.Encoding, avro: avro, sources: map[string]string{}, kafkaOffsets: cfg.Apply.Offsets == config.OffsetsKafka}
}

// UseSchemas gives the decoders NewDecoder returns from now on the schema
// registry of encoding: avro.
func (r *Router) UseSchemas(s debezium.SchemaSource) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.schemas = s
}

// Encoding is how topic's records are serialised (encoding: of its table,
// or of the file for a topic no table claims).
func (r *Router) Encoding(topic string) debezium.Encoding {
	enc := r.encoding
	if tc, err := r.cfg.Resolve(topic); err == nil {
		enc = tc.Encoding
	}
	switch enc {
	case config.EncodingAvro:
		return debezium.EncodingAvro
	case config.EncodingAuto:
		return debezium.EncodingAuto
	}
	return debezium.EncodingJSON
}

// OnSchemaChange has fn called (under the Router's lock) with each schema
// difference and each change pgsink makes to a target, once per table and
// column: the caller logs and counts them.
func (r *Router) OnSchemaChange(fn func(SchemaChange)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observe = fn
}

// Format says how to decode a topic, from the configuration alone.
func (r *Router) Format(topic string) debezium.Format {
	tc, err := r.cfg.Resolve(topic)
	if err != nil {
		return debezium.DefaultFormat(topic)
	}
	if tc.Format == config.FormatOutbox {
		return debezium.FormatOutbox
	}
	return debezium.FormatTable
}

// resolve returns the table a change is written to, creating or extending
// the target first when the configuration asks for it.
func (r *Router) resolve(ctx context.Context, ch *debezium.Change, headers []debezium.Header) (*Table, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.routes[ch.Topic]
	if !ok {
		tc, err := r.cfg.Resolve(ch.Topic)
		if err != nil {
			return nil, err
		}
		rt = &route{cfg: tc, bySchema: map[*debezium.Column]*Table{}}
		if tc.Target.TableName.IsZero() {
			rt.byRecord = map[recordKey]*route{}
		} else if rt.table, err = r.table(ctx, tc, ch); err != nil {
			return nil, err
		}
		// r.table may release the lock while it reads the catalog: a
		// route another record stored meanwhile is the one kept.
		if first, ok := r.routes[ch.Topic]; ok {
			rt = first
		} else {
			r.routes[ch.Topic] = rt
		}
	}
	if rt.byRecord != nil {
		var err error
		if rt, err = r.recordRoute(ctx, rt, ch, headers); err != nil {
			return nil, err
		}
	}
	if rt.table.Outbox != nil || len(ch.Columns) == 0 {
		// No schema to compare (schemas.enable=false, outbox payloads):
		// fields the event lacks are kept as stored.
		return rt.table, nil
	}
	if t, ok := rt.bySchema[&ch.Columns[0]]; ok {
		return t, nil
	}
	t, err := r.drift(ctx, rt, ch)
	if err != nil {
		return nil, err
	}
	rt.bySchema[&ch.Columns[0]] = t
	return t, nil
}

// recordRoute returns the route of a record whose values decide its
// target, deriving it the first time those values are met.
func (r *Router) recordRoute(ctx context.Context, topicRoute *route, ch *debezium.Change, headers []debezium.Header) (*route, error) {
	tpl := topicRoute.cfg.Target.Template
	key := recordKey{schema: ch.Schema, table: ch.Table}
	if len(tpl.Headers())+len(tpl.Fields()) > 0 {
		key.values = recordValues(tpl, ch, headers)
	}
	if rt, ok := topicRoute.byRecord[key]; ok {
		return rt, nil
	}
	// The closure takes the outbox event, not ch: a closure holding ch
	// would move every record's Change to the heap in Item (escape
	// analysis cannot tell that this path is rare).
	outbox := ch.Outbox
	tc, err := r.cfg.ForRecord(topicRoute.cfg, ch.Topic, config.RecordValues{SourceSchema: ch.Schema, SourceTable: ch.Table,
		Header: func(name string) (string, bool) { return header(headers, name) },
		Field:  func(name string) (string, bool) { return outboxField(outbox, name) }})
	if err != nil {
		return nil, err
	}
	rt := &route{cfg: tc, bySchema: map[*debezium.Column]*Table{}}
	if rt.table, err = r.table(ctx, tc, ch); err != nil {
		return nil, err
	}
	if first, ok := topicRoute.byRecord[key]; ok { // stored while r.table read the catalog
		return first, nil
	}
	topicRoute.byRecord[key] = rt
	return rt, nil
}

// header returns the value of the last header called name, as Kafka
// clients read a repeated header.
func header(headers []debezium.Header, name string) (string, bool) {
	for i := len(headers) - 1; i >= 0; i-- {
		if headers[i].Key == name {
			return string(headers[i].Value), true
		}
	}
	return "", false
}

// outboxField returns an outbox envelope field's value when it is a string.
func outboxField(outbox *debezium.OutboxEvent, name string) (string, bool) {
	if outbox == nil {
		return "", false
	}
	v, ok := outbox.Fields[name].(string)
	return v, ok
}

// recordValues joins the values of the template's headers and fields into
// a cache key; a missing value and an empty one differ.
func recordValues(tpl *config.TargetTemplate, ch *debezium.Change, headers []debezium.Header) string {
	var b strings.Builder
	add := func(v string, ok bool) {
		if ok {
			b.WriteByte(1)
			b.WriteString(v)
		}
		b.WriteByte(0)
	}
	for _, name := range tpl.Headers() {
		add(header(headers, name))
	}
	for _, name := range tpl.Fields() {
		add(outboxField(ch.Outbox, name))
	}
	return b.String()
}

// table reads the target catalog of tc the first time it is met.
func (r *Router) table(ctx context.Context, tc *config.Table, ch *debezium.Change) (*Table, error) {
	if err := r.checkSource(tc, ch); err != nil {
		return nil, err
	}
	ref := tc.Target.String()
	if tbl, ok := r.tables[ref]; ok {
		return tbl, nil
	}
	tbl, err := r.readUnlocked(ctx, tc)
	if stored, ok := r.tables[ref]; ok {
		// Read, created or evolved by another record while the lock was
		// released: the stored one is the newer.
		return stored, nil
	}
	if errors.Is(err, ErrNoTarget) && tc.Schema.Create && ch.Kind == debezium.KindChange {
		var key []string
		for _, f := range ch.Key {
			key = append(key, f.Name)
		}
		if err := CreateTable(ctx, r.db, *tc, ch.Columns, key); err != nil {
			return nil, err
		}
		tbl, err = r.read(ctx, tc)
	}
	if err != nil {
		return nil, err
	}
	r.tables[ref] = tbl
	return tbl, nil
}

// readUnlocked reads tc's catalog with r.mu (held by the caller) released
// for the round trip, and holds it again on return: the catalog read waits
// for a connection of the pool, which the appliers keep busy, and routing
// to every table already read (and to the others' reads) goes on
// meanwhile instead of queueing behind it. One read per target at a time:
// a record for a target being read waits for that read, then finds the
// table stored, or reads again if that read failed.
func (r *Router) readUnlocked(ctx context.Context, tc *config.Table) (*Table, error) {
	ref := tc.Target.String()
	for {
		if tbl, ok := r.tables[ref]; ok {
			return tbl, nil
		}
		wait, busy := r.reading[ref]
		if !busy {
			break
		}
		r.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
		}
		r.mu.Lock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	done := make(chan struct{})
	r.reading[ref] = done
	r.mu.Unlock()
	tbl, err := r.read(ctx, tc)
	r.mu.Lock()
	delete(r.reading, ref)
	close(done)
	return tbl, err
}

func (r *Router) read(ctx context.Context, tc *config.Table) (*Table, error) {
	cat, err := catalog.Read(ctx, r.q, tc.Target.Schema, tc.Target.Name)
	if err != nil {
		return nil, fmt.Errorf("read target catalog of %s: %w", tc.Target, err)
	}
	return Resolve(*tc, cat)
}

// NewDecoder returns a decoder that reads each topic in the format its
// table entry names. A decoder is for one goroutine.
func (r *Router) NewDecoder() *debezium.Decoder {
	opts := debezium.Options{Format: r.Format}
	if r.avro {
		r.mu.Lock()
		opts.Encoding, opts.Schemas = r.Encoding, r.schemas
		r.mu.Unlock()
	}
	return debezium.NewDecoder(opts)
}

// Item decodes and routes one record. ok is false for records that write
// nothing: tombstones, transaction markers, logical messages. A record that
// does not decode is an Item with Err, for the dead letters; its Table names
// the configured target when there is one (only for the dead letter's target
// column, so a missing one is no reason to stop). So is a record whose
// schema asks for a column type no DDL may name (TypeError). An error means
// the record cannot be routed at all (no table for its topic, the target
// missing, its catalog unreadable, its Avro schema not fetchable from the
// registry — a *debezium.SchemaUnavailableError): no reason to dead-letter it.
func (r *Router) Item(ctx context.Context, dec *debezium.Decoder, rec debezium.Record) (Item, bool, error) {
	// A topic some entry claims but cannot route (a template that derives
	// no valid target, two patterns alike) is not decoded: its entry's
	// encoding is unknown here (Avro would fall back to the file's), and
	// a record failing to decode would be dead-lettered for what is the
	// configuration's fault. A topic no table claims still decodes: its
	// transaction markers write nothing.
	if _, err := r.cfg.Resolve(rec.Topic); err != nil && !errors.Is(err, config.ErrNoTable) {
		return Item{}, false, err
	}
	// errors.As only under err != nil: its target escapes, and would be
	// a heap allocation per record in the path every record takes.
	ch, err := dec.Decode(rec)
	if err != nil {
		if unavailable := (*debezium.SchemaUnavailableError)(nil); errors.As(err, &unavailable) {
			return Item{}, false, err
		}
		return r.failed(rec, err), true, nil
	}
	if ch.Kind != debezium.KindChange && ch.Kind != debezium.KindOutbox {
		return Item{}, false, nil
	}
	// A record of a source transaction that its partition stages raw
	// (debezium.Decoder.SkipTransactionalImages, Change.ImagesSkipped) is
	// routed all the same, from its schema: its target is created, evolved
	// or refused here, by the partition with its offset unmoved, and not
	// first by the resolver inside its open apply transaction, where an
	// ALTER TABLE of a table that transaction wrote would wait for it.
	t, err := r.resolve(ctx, &ch, rec.Headers)
	if err != nil {
		if typeErr := (*TypeError)(nil); errors.As(err, &typeErr) {
			return r.failed(rec, err), true, nil
		}
		return Item{}, false, err
	}
	return Item{Record: rec, Table: t, Change: ch}, true, nil
}

// DeletesApplied reports whether a Kafka tombstone on topic stands for a
// delete pgsink applies: a source table's topic (not an outbox's, whose
// tombstones are no deletes) whose deletes are not ignored. The connector
// asks it to tell a tombstone that follows its delete event, which it
// passes over, from one whose delete event log compaction removed.
func (r *Router) DeletesApplied(topic string) bool {
	tc, err := r.cfg.Resolve(topic)
	return err == nil && tc.Format == config.FormatTable && tc.Deletes != config.DeletesIgnore
}

// failed is the Item of a record that goes to the dead letters for err.
func (r *Router) failed(rec debezium.Record, err error) Item {
	var table *Table
	if tc, cerr := r.cfg.Resolve(rec.Topic); cerr == nil && !tc.Target.TableName.IsZero() {
		table = &Table{Schema: tc.Target.Schema, Name: tc.Target.Name}
	}
	return Item{Record: rec, Table: table, Err: err}
}
