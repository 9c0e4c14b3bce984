package dedup

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"sync"

	"github.com/pgsink/pgsink/internal/jsonenvelope"
)

// A JsonConverter key or value with schemas is {"schema": S, "payload": P},
// S the same few kilobytes on every record of a table version. Staging
// stores S once in tx_schemas and only P per record (see migration 0008):
// staging the whole record wrote, WAL-logged, compressed, read back and
// deleted S for every event. The layout is jsonenvelope's.

// maxSplitSchemas bounds the schemas a stager compares a record against;
// maxJoinSchemas those a reader keeps. Debezium sends one per table
// version, key and value: a stream of ever new ones empties the cache.
const (
	maxSplitSchemas = 16
	maxJoinSchemas  = 4096
)

// envelopes splits records for staging and joins them back on reading,
// caching the schemas it saw. Safe for concurrent use: the partitions of
// an Applier share it.
type envelopes struct {
	mu sync.Mutex
	// recent are the schemas split lately, the last one used first.
	recent []schemaPart
	// known maps a digest to its schema, for joining.
	known map[string][]byte
}

// schemaPart is one distinct schema, S of {"schema": S, "payload": P}.
type schemaPart struct {
	digest []byte // SHA-256 of raw
	raw    []byte
}

func newEnvelopes() *envelopes { return &envelopes{known: map[string][]byte{}} }

// split returns the schema and payload of data when it is a JsonConverter
// envelope written as JsonConverter writes it (schema first, no blanks
// between the members): head+S+mid+P+tail is then data, byte for byte, so
// the decoder sees on reading what it would have seen. ok is false for
// anything else (Avro, no schemas, another layout), which is staged whole.
func (e *envelopes) split(data []byte) (schema schemaPart, payload []byte, ok bool) {
	if !bytes.HasPrefix(data, jsonenvelope.Head) || !bytes.HasSuffix(data, jsonenvelope.Tail) {
		return schemaPart{}, nil, false
	}
	rest := data[len(jsonenvelope.Head) : len(data)-len(jsonenvelope.Tail)]
	e.mu.Lock()
	for i, s := range e.recent {
		// The payload's marker where this schema would end first: a
		// record's key and value schemas share long prefixes, and the
		// other one's is tried first every other record.
		if len(rest) >= len(s.raw) && bytes.HasPrefix(rest[len(s.raw):], jsonenvelope.Mid) && bytes.Equal(rest[:len(s.raw)], s.raw) {
			copy(e.recent[1:i+1], e.recent[:i])
			e.recent[0] = s
			e.mu.Unlock()
			return s, rest[len(s.raw)+len(jsonenvelope.Mid):], true
		}
	}
	e.mu.Unlock()
	// A schema not seen lately: find where it ends.
	dec := json.NewDecoder(bytes.NewReader(rest))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return schemaPart{}, nil, false
	}
	end := int(dec.InputOffset())
	if end <= 0 || end > len(rest) || !bytes.HasPrefix(rest[end:], jsonenvelope.Mid) {
		return schemaPart{}, nil, false
	}
	sum := sha256.Sum256(rest[:end])
	s := schemaPart{digest: sum[:], raw: bytes.Clone(rest[:end])}
	e.mu.Lock()
	if len(e.recent) < maxSplitSchemas {
		e.recent = append(e.recent, schemaPart{})
	}
	copy(e.recent[1:], e.recent[:len(e.recent)-1])
	e.recent[0] = s
	e.remember(s)
	e.mu.Unlock()
	return s, rest[end+len(jsonenvelope.Mid):], true
}

// remember adds s to the schemas known for joining; e.mu is held.
func (e *envelopes) remember(s schemaPart) {
	if _, ok := e.known[string(s.digest)]; ok {
		return
	}
	if len(e.known) >= maxJoinSchemas {
		clear(e.known)
	}
	e.known[string(s.digest)] = s.raw
}

// schema returns the schema of digest if known.
func (e *envelopes) schema(digest []byte) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	raw, ok := e.known[string(digest)]
	return raw, ok
}

// learn adds schemas read from tx_schemas.
func (e *envelopes) learn(schemas []schemaPart) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range schemas {
		e.remember(s)
	}
}
