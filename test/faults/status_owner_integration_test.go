//go:build integration

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestFaultsStatusShowsDeadOwner: `pgsink status` checks each owner in the
// offsets table against the consumer group's members (Kafka's admin API).
// While the instance runs its partitions' owner is live; after kill -9,
// once the group dropped the member (its session timed out), the owner is
// shown dead.
func TestFaultsStatusShowsDeadOwner(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	topic := st.TopicPrefix + ".public.items"
	if err := createTopic(ctx, st.Env.KafkaBootstrap, topic, 2); err != nil {
		t.Fatal(err)
	}
	targetURL := stacktest.OwnedTargetDatabase(t)
	path := filepath.Join(t.TempDir(), "pgsink.yaml")
	yaml := fmt.Sprintf("kafka:\n  bootstrap.servers: %s\n  group.id: %s\n  session.timeout.ms: 6000\n  heartbeat.interval.ms: 1000\npostgres:\n  url: ${TARGET_URL}\nmetrics:\n  listen: 127.0.0.1:0\ntables:\n  - topic: %s\n    target: public.items\n",
		st.Env.KafkaBootstrap, st.ID, topic)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"TARGET_URL=" + targetURL}
	p := startProc(t, "sink", path, env...)
	t.Cleanup(func() {
		if !p.exited() {
			p.signal(syscall.SIGKILL)
			<-p.done
		}
	})
	type line struct {
		Partition int32  `json:"partition"`
		Owner     string `json:"owner"`
		OwnerLive *bool  `json:"owner_live"`
	}
	status := func() ([]line, string) {
		out, err := runCommand(time.Minute, env, "status", "--config", path, "--json")
		if err != nil {
			// Before the instance migrated: no offsets table yet.
			return nil, fmt.Sprintf("pgsink status: %v\n%s", err, out)
		}
		var report struct {
			Partitions   []line `json:"partitions"`
			MembersError string `json:"members_error"`
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil {
			t.Fatalf("pgsink status --json: %v\n%s", err, out)
		}
		if report.MembersError != "" {
			t.Fatalf("status could not describe the group: %s", report.MembersError)
		}
		return report.Partitions, out
	}
	every := func(lines []line, live bool) bool {
		for _, l := range lines {
			if l.Owner == "" || l.OwnerLive == nil || *l.OwnerLive != live {
				return false
			}
		}
		return len(lines) == 2
	}
	poll(t, 60*time.Second, "status shows both partitions owned by a live member", func() (bool, string) {
		lines, out := status()
		return every(lines, true), out
	})
	p.signal(syscall.SIGKILL)
	<-p.done
	poll(t, 60*time.Second, "status shows the killed instance's partitions owned by a dead member", func() (bool, string) {
		lines, out := status()
		return every(lines, false), out
	})
	out, err := runCommand(time.Minute, env, "status", "--config", path)
	if err != nil {
		t.Fatalf("pgsink status: %v\n%s", err, out)
	}
	t.Logf("pgsink status after the member is gone:\n%s", out)
}
