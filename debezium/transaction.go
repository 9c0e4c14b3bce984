package debezium

import "strings"

// transactionMarker decodes a record of the transaction metadata topic,
// {status, id, event_count, data_collections, ts_ms}.
func (d *Decoder) transactionMarker(rec *Record, ch *Change) error {
	s := &scanner{data: rec.Value}
	if !d.opts.Schemaless {
		var err error
		if _, s, err = d.unwrap(rec.Topic, rec.Value, nil, false, d.compileValue); err != nil {
			return err
		}
	}
	m := &TransactionMarker{}
	if err := s.objectStart(); err != nil {
		return at("payload", mismatch("want a transaction marker object"))
	}
	var tsMs int64
	for first := true; ; first = false {
		key, _, ok, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch {
		case s.null():
		case string(key) == "status":
			var raw []byte
			if raw, err = s.stringBytes(); err == nil {
				switch string(raw) { // the two statuses without allocating
				case "BEGIN":
					m.Status = "BEGIN"
				case "END":
					m.Status = "END"
				default:
					m.Status = string(raw)
				}
			}
		case string(key) == "id":
			if m.ID, err = s.string(); err == nil {
				m.TxID, err = txIDOf(m.ID)
				m.CommitLSN = lsnOf(m.ID)
			}
		case string(key) == "event_count":
			m.EventCount, err = s.int(64)
		case string(key) == "ts_ms":
			tsMs, err = s.int(64)
		case string(key) == "data_collections":
			m.DataCollections, err = dataCollections(s)
		default:
			_, err = s.skip()
		}
		if err != nil {
			return at("payload."+string(key), err)
		}
	}
	if m.Status != "BEGIN" && m.Status != "END" {
		return at("payload.status", mismatch("status %q, want BEGIN or END", m.Status))
	}
	if m.ID == "" {
		return at("payload.id", mismatch("transaction marker without an id"))
	}
	ch.Kind, ch.TxMark, ch.TxID = KindTransaction, m, m.TxID
	ch.EventTs = micros(0, tsMs)
	if !d.opts.Schemaless {
		if err := s.expect('}'); err != nil {
			return err
		}
	}
	return s.end()
}

// dataCollections reads an END marker's [{data_collection, event_count}]:
// how many of the transaction's events each captured table sent.
func dataCollections(s *scanner) ([]CollectionCount, error) {
	if err := s.arrayStart(); err != nil {
		return nil, mismatch("want an array of data collections")
	}
	var out []CollectionCount
	for first := true; ; first = false {
		more, err := s.nextElem(first)
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
		if err := s.objectStart(); err != nil {
			return nil, mismatch("want a data collection object")
		}
		var c CollectionCount
		for firstKey := true; ; firstKey = false {
			key, _, ok, err := s.nextKey(firstKey)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			switch string(key) {
			case "data_collection":
				c.DataCollection, err = s.string()
			case "event_count":
				c.EventCount, err = s.int(64)
			default:
				_, err = s.skip()
			}
			if err != nil {
				return nil, at(string(key), err)
			}
		}
		if c.DataCollection == "" {
			return nil, mismatch("data collection without a name")
		}
		out = append(out, c)
	}
}

// MessageCollection is the data collection pgsink counts logical decoding
// messages under: Debezium's END names theirs after a Java object
// ("io.debezium.connector.postgresql.LogicalDecodingMessageMonitor$LogicalDecodingMessageId@3e7bb012"),
// which no event carries.
const MessageCollection = "(logical decoding messages)"

// messageCollectionPrefix starts the data collection Debezium 3.6.1's END
// gives logical decoding messages.
const messageCollectionPrefix = "io.debezium.connector.postgresql.LogicalDecodingMessageMonitor"

// Collection is the name a transaction's END counts this collection's
// events under, as CollectionOf names an event's.
func (c CollectionCount) Collection() string {
	if strings.HasPrefix(c.DataCollection, messageCollectionPrefix) {
		return MessageCollection
	}
	return c.DataCollection
}

// CollectionOf names the data collection a transactional event counts
// under in its transaction's END: "schema.table", or MessageCollection.
func CollectionOf(ch *Change) string {
	if ch.Kind == KindMessage {
		return MessageCollection
	}
	return ch.Schema + "." + ch.Table
}
