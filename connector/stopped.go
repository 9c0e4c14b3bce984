package connector

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/pgsink/pgsink/dedup"
)

// stoppedPartitions are the owned partitions that stopped on an error that
// needs an operator, with why and where: while any is, the instance is not
// ready, so that an orchestrator's readiness check and an operator see it.
type stoppedPartitions struct {
	mu sync.Mutex
	by map[dedup.PartitionID]string
}

func (s *stoppedPartitions) add(id dedup.PartitionID, offset int64, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[dedup.PartitionID]string{}
	}
	s.by[id] = fmt.Sprintf("%s[%d] stopped at offset %d: %s", id.Topic, id.Partition, offset, reason)
}

// clear forgets a partition this instance no longer owns.
func (s *stoppedPartitions) clear(id dedup.PartitionID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by, id)
}

// err is nil while no owned partition is stopped; otherwise it names each,
// one a line.
func (s *stoppedPartitions) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.by) == 0 {
		return nil
	}
	lines := make([]string, 0, len(s.by))
	for _, l := range s.by {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return errors.New(fmt.Sprintf("%d partition(s) stopped:\n", len(lines)) + strings.Join(lines, "\n"))
}
