package sink

import (
	"testing"

	"github.com/pgsink/pgsink/config"
)

func TestShadowGolden(t *testing.T) {
	live := config.TableName{Schema: `App "Prod"`, Name: "Order; DROP TABLE x"}
	shadow := config.TableName{Schema: live.Schema, Name: live.Name + `__pgsink_"shadow`}
	checkGolden(t, "shadow_create_like.sql", createLikeStatement(shadow, live))
	checkGolden(t, "shadow_drop.sql", dropStatement(config.TableName{Schema: live.Schema, Name: live.Name + "__pgsink_old"}))
}
