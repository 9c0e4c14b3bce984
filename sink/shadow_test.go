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
	checkGolden(t, "shadow_swappable.sql", swappableQuery)
	checkGolden(t, "shadow_grants.sql", grantsQuery)
	grants, err := grantStatements(shadow, []string{`reader"; DROP TABLE x; --`, ""}, []string{"SELECT", "UPDATE"}, []bool{false, true})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "shadow_grant.sql", strings.Join(grants, ";\n"))
	if _, err := grantStatements(shadow, []string{"r"}, []string{"SELECT; DROP TABLE x"}, []bool{false}); err == nil {
		t.Error("a privilege that is no table privilege was accepted")
	}
	checkGolden(t, "shadow_drop.sql", dropStatement(old))
}
