package connector

import (
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestMembersFindOwners(t *testing.T) {
	groups := []kafka.ConsumerGroupDescription{
		{GroupID: "other", Members: []kafka.MemberDescription{{ClientID: "elsewhere:1"}}},
		{GroupID: "g", Members: []kafka.MemberDescription{
			{ClientID: "host-a:17"},
			{ClientID: "custom", GroupInstanceID: "sink-1"},
		}},
	}
	m, err := membersOf(groups, "g")
	if err != nil {
		t.Fatal(err)
	}
	for owner, want := range map[string]bool{
		"host-a:17":   true,  // dynamic, by client.id
		"sink-1":      true,  // static, by instance name
		"host-a:18":   false, // a restarted process's predecessor
		"elsewhere:1": false, // a member of another group
		"custom":      true,
	} {
		if got := m.Has(owner); got != want {
			t.Errorf("Has(%q) = %v, want %v", owner, got, want)
		}
	}
}

func TestMembersOfAFailedDescription(t *testing.T) {
	groups := []kafka.ConsumerGroupDescription{{GroupID: "g", Error: kafka.NewError(kafka.ErrGroupAuthorizationFailed, "denied", false)}}
	if _, err := membersOf(groups, "g"); err == nil {
		t.Fatal("a group the broker would not describe gave no error")
	}
}
