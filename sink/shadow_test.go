package sink

import (
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
)

func TestShadowGolden(t *testing.T) {
	live := config.TableName{Schema: `App "Prod"`, Name: "Order; DROP TABLE x"}
	shadow := config.TableName{Schema: live.Schema, Name: live.Name + `__pgsink_"shadow`}
	old := config.TableName{Schema: live.Schema, Name: live.Name + "__pgsink_old"}
	checkGolden(t, "shadow_create_like.sql", createLikeStatement(shadow, live))
	indexes := swapIndexNames(live.Schema, []string{`Order; DROP TABLE x_pkey`}, []string{`Order; DROP TABLE x__pgsink_"shadow_pkey`}, []uint32{16384})
	checkGolden(t, "shadow_swap.sql", strings.Join(append(swapStatements(live, shadow, old), indexes...), ";\n"))
	checkGolden(t, "shadow_index_pairs.sql", indexPairsQuery)
	checkGolden(t, "shadow_drop.sql", dropStatement(old))
}
