package upstream

import (
	"strings"

	"github.com/pgsink/pgsink/config"
)

// transactionMetadata checks, under apply.consistency: transaction, that
// the connector feeding the table marks its events with their transaction
// and writes the transaction topic the resolver reads. Without the
// metadata every event would be applied as a record of no transaction, so
// the guarantee would be gone without a sign.
func (c *checker) transactionMetadata(a config.Apply) {
	if a.Consistency != config.ConsistencyTransaction {
		return
	}
	if v, _ := c.feed.connector.setting("provide.transaction.metadata"); !strings.EqualFold(v, "true") {
		c.add(Error, "provide.transaction.metadata", nil,
			"events carry no transaction block and no transaction topic is written, so apply.consistency: transaction cannot keep source transactions whole",
			"set provide.transaction.metadata=true on the connector")
		return
	}
	suffix, _ := c.feed.connector.setting("topic.transaction")
	if want := c.feed.connector.Config["topic.prefix"] + "." + suffix; want != a.Transaction.Topic {
		c.addAt("apply.transaction.topic", Error, "topic.transaction", nil,
			"the connector writes its transaction metadata to "+want+", not to "+a.Transaction.Topic+", so the resolver would never see this table's transactions end",
			"set apply.transaction.topic: "+want)
	}
}
