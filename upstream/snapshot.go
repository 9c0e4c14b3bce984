package upstream

// partialSnapshot reports a table that reconciles snapshots while the
// connector's snapshot of its source table reads only the rows of a SELECT
// (snapshot.select.statement.overrides). Nothing in a snapshot's records
// tells a partial snapshot from a whole one, so the sweep after it
// (snapshot.reconcile) would delete every target row the SELECT left out:
// the connector's settings are the only place to see it.
func (c *checker) partialSnapshot() {
	if !c.t.Snapshot.Reconcile {
		return
	}
	const key = "snapshot.select.statement.overrides"
	for _, source := range splitList(c.feed.connector.Config[key]) {
		if source != c.feed.source {
			continue
		}
		c.addAt(c.t.Path+".snapshot.reconcile", Error, key, nil,
			"the connector's snapshot of "+source+" reads only the rows its SELECT picks, which pgsink cannot tell from a whole snapshot: "+
				"the sweep after it (snapshot.reconcile) deletes every target row the SELECT left out",
			"set snapshot.reconcile: false on this table, or remove "+source+" from "+key+" on the connector")
		return
	}
}
