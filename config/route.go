package config

import (
	"errors"
	"fmt"
	"strings"
)

// Router resolves a Kafka topic to the table configuration that claims it.
// It is built once per configuration and safe for concurrent use.
//
// Patterns are Go regular expressions: match them here against the topics
// of the cluster's metadata rather than handing them to librdkafka, whose
// subscription regex dialect is not Go's.
type Router struct {
	named    map[string]*Table // topic and topics entries
	patterns []*Table          // topic_pattern entries, in file order
}

// Router builds the topic resolver of a loaded configuration.
func (c *Config) Router() *Router {
	r := &Router{named: map[string]*Table{}}
	for i := range c.Tables {
		t := &c.Tables[i]
		if t.Topic != "" {
			r.named[t.Topic] = t
		}
		for _, topic := range t.Topics {
			r.named[topic] = t
		}
		if !t.TopicPattern.IsZero() {
			r.patterns = append(r.patterns, t)
		}
	}
	return r
}

// ErrNoTable is returned by Resolve for a topic no table claims.
var ErrNoTable = errors.New("no table is configured for this topic")

// AmbiguousTopicError is returned by Resolve when a topic named by no table
// matches the patterns of several: pgsink refuses to guess which target
// gets the data.
type AmbiguousTopicError struct {
	Topic  string
	Tables []string // key paths of the matching tables ("tables[2]")
}

func (e *AmbiguousTopicError) Error() string {
	return fmt.Sprintf("topic %q matches the topic_pattern of %s", e.Topic, strings.Join(e.Tables, " and "))
}

// Resolve returns the table for topic: a table naming it in topic or topics
// first, else the one table whose topic_pattern matches it. The error wraps
// ErrNoTable or is an *AmbiguousTopicError.
func (r *Router) Resolve(topic string) (*Table, error) {
	if t, ok := r.named[topic]; ok {
		return t, nil
	}
	var match *Table
	var all []string
	for _, t := range r.patterns {
		if t.TopicPattern.Match(topic) {
			if match == nil {
				match = t
			}
			all = append(all, t.Path)
		}
	}
	switch {
	case len(all) > 1:
		return nil, &AmbiguousTopicError{Topic: topic, Tables: all}
	case match == nil:
		return nil, fmt.Errorf("topic %q: %w", topic, ErrNoTable)
	}
	return match, nil
}

// NamedTopics lists the topics named by topic and topics entries; topics
// matching a pattern are found with Resolve over the cluster's topic list.
func (r *Router) NamedTopics() []string { return sortedKeys(r.named) }
