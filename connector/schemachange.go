package connector

import (
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// reportSchemaChange logs and counts one schema difference or one change
// pgsink made to a target (sink.Router.OnSchemaChange).
func reportSchemaChange(log *zap.Logger, m *Metrics, c sink.SchemaChange) {
	m.SchemaChanges.WithLabelValues(c.Table, string(c.Kind)).Inc()
	fields := []zap.Field{zap.String("table", c.Table), zap.String("change", string(c.Kind)), zap.String("column", c.Column)}
	if c.Type != "" {
		fields = append(fields, zap.String("type", c.Type))
	}
	switch c.Kind {
	case sink.ChangeLikelyRename:
		log.Warn("source schema change: a column was likely renamed; the new column starts empty, the old values stay in the old one: carry them over",
			append(fields, zap.String("new_column", c.NewColumn), zap.String("fix", c.Fix))...)
	case sink.ChangeNewField:
		log.Warn("source schema change: the events carry a field the target has no column for (schema.evolve decides: add_columns and follow add it, none does not write it)", fields...)
	case sink.ChangeMissingField:
		log.Warn("source schema change: the events no longer carry a target column (dropped or renamed at the source, or the target's own): new rows take its default, stored rows keep their value", fields...)
	case sink.ChangeAddColumn:
		log.Info("schema.evolve: added a column to the target", fields...)
	case sink.ChangeDropNotNull:
		log.Info("schema.evolve: follow: dropped NOT NULL on a column the source no longer sends", fields...)
	}
}
