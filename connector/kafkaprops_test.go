package connector

import (
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
)

// TestKafkaPropertiesKnownToTheBundledLibrary holds config's list of Kafka
// client properties (what validate accepts) to the librdkafka this binary
// links: every librdkafka name on it must be one the library knows, and a
// name off it must be refused by the library too. A client is built with
// no bootstrap servers, so nothing connects; an invalid value is refused
// with another message than an unknown name.
func TestKafkaPropertiesKnownToTheBundledLibrary(t *testing.T) {
	unknown := func(name string) bool {
		c, err := kafka.NewConsumer(&kafka.ConfigMap{"group.id": "propcheck", name: "?"})
		if err == nil {
			c.Close()
			return false
		}
		return strings.Contains(err.Error(), "No such configuration property")
	}
	for _, name := range config.KafkaProperties() {
		if strings.HasPrefix(name, "go.") {
			continue // the Go client's own keys, read before librdkafka sees the map
		}
		if unknown(name) {
			t.Errorf("%s: on config's list, unknown to the bundled librdkafka", name)
		}
	}
	if !unknown("fetch.max.bytez") {
		t.Fatal("the bundled librdkafka accepted a misspelt property: this check proves nothing")
	}
}
