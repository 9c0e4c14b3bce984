package connector

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pgsink/pgsink/sink"
)

// A dead letter on the topic names the stage it failed at as Kafka Connect
// would: a record that does not decode at the converter, one whose schema
// the target cannot take at the task's put.
func TestErrorStage(t *testing.T) {
	if stage, class := errorStage(errors.New("truncated JSON")); stage != "VALUE_CONVERTER" || class != "pgsink.connector.debezium.Decoder" {
		t.Errorf("an undecodable record: stage %s, class %s; want VALUE_CONVERTER at the decoder", stage, class)
	}
	typeErr := fmt.Errorf("route: %w", &sink.TypeError{Table: "public.t", Column: "c", Err: errors.New("bad")})
	if stage, class := errorStage(typeErr); stage != "TASK_PUT" || class != "pgsink.sink.Router" {
		t.Errorf("a type no DDL may name: stage %s, class %s; want TASK_PUT at the router", stage, class)
	}
}
