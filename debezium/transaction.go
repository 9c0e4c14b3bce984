package debezium

// transactionMarker decodes a record of the transaction metadata topic,
// {status, id, event_count, data_collections, ts_ms}.
func (d *Decoder) transactionMarker(rec *Record, ch *Change) error {
	s := &scanner{data: rec.Value}
	if !d.opts.Schemaless {
		var err error
		if _, s, err = d.unwrap(rec.Topic, rec.Value, false, d.compileValue); err != nil {
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
			}
		case string(key) == "event_count":
			m.EventCount, err = s.int(64)
		case string(key) == "ts_ms":
			tsMs, err = s.int(64)
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
