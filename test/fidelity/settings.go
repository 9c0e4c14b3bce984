package fidelity

// RepresentationKeys are the Debezium PostgreSQL connector settings that
// change how a value is represented in the event. The "Debezium defaults"
// run is the shipped connector file without them.
var RepresentationKeys = []string{
	"decimal.handling.mode",
	"interval.handling.mode",
	"time.precision.mode",
	"binary.handling.mode",
	"hstore.handling.mode",
	"money.fraction.digits",
	"include.unknown.datatypes",
	"unavailable.value.placeholder",
	"column.propagate.source.type",
	"datatype.propagate.source.type",
	"converters",
}

// Settings sets and phases: the matrix's columns.
const (
	Shipped   = "shipped"
	Defaults  = "defaults"
	Snapshot  = "snapshot"
	Streaming = "streaming"
)
