package dedup

import (
	"context"

	"github.com/golang-migrate/migrate/v4"
)

// MaxJoinSchemas is how many schemas a reader of staged records caches.
const MaxJoinSchemas = maxJoinSchemas

// UpTo applies the migrations up to version v: a test of a later one's
// effect on a running fleet starts from the schema before it.
func (m *Migrator) UpTo(ctx context.Context, v uint) error {
	return m.run(ctx, func(mg *migrate.Migrate) error { return mg.Migrate(v) })
}
