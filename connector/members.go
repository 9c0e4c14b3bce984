package connector

import (
	"context"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Members are the live members of a consumer group, as the group
// coordinator lists them.
type Members struct {
	clientIDs, instanceIDs map[string]bool
}

// Has reports whether the instance named owner in the offsets table is a
// member: a static member by its instance name, a dynamic one by the
// client.id the runner gives it (its owner name, unless client.id is
// configured, in which case a dynamic owner is never found).
func (m Members) Has(owner string) bool {
	return m.instanceIDs[owner] || m.clientIDs[owner]
}

// GroupMembers lists the group's members through the admin API.
func (in *Inspector) GroupMembers(ctx context.Context, group string) (Members, error) {
	admin, err := kafka.NewAdminClientFromConsumer(in.c)
	if err != nil {
		return Members{}, fmt.Errorf("kafka admin client: %w", err)
	}
	defer admin.Close()
	res, err := admin.DescribeConsumerGroups(ctx, []string{group})
	if err != nil {
		return Members{}, fmt.Errorf("describe consumer group %q: %w", group, err)
	}
	return membersOf(res.ConsumerGroupDescriptions, group)
}

func membersOf(groups []kafka.ConsumerGroupDescription, group string) (Members, error) {
	m := Members{clientIDs: map[string]bool{}, instanceIDs: map[string]bool{}}
	for _, g := range groups {
		if g.GroupID != group {
			continue
		}
		if g.Error.Code() != kafka.ErrNoError {
			return Members{}, fmt.Errorf("describe consumer group %q: %w", group, g.Error)
		}
		for _, mem := range g.Members {
			m.clientIDs[mem.ClientID] = true
			if mem.GroupInstanceID != "" {
				m.instanceIDs[mem.GroupInstanceID] = true
			}
		}
	}
	return m, nil
}
