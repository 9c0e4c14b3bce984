package config

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Router resolves a Kafka topic to the table configuration that claims it.
// It is built once per configuration and safe for concurrent use.
//
// Patterns are Go regular expressions: match them here against the topics
// of the cluster's metadata rather than handing them to librdkafka, whose
// subscription regex dialect is not Go's.
//
// Precedence, highest first: a table naming the topic (topic, topics); a
// topic_pattern with a fixed target; a topic_pattern with a templated
// target. Two matches of equal precedence are an error, never a guess.
type Router struct {
	named     map[string]*Table // topic and topics entries
	patterns  []*Table          // topic_pattern entries with a fixed target, in file order
	templates []*Table          // topic_pattern entries with a templated target, in file order

	// resolved caches Resolve per topic: a templated route costs its
	// regular expression and derivation once per topic, not per record.
	resolved sync.Map // topic → *resolution
	// last is the resolution Resolve returned last: every record asks for
	// its topic's several times, and a partition's records share one
	// topic, where sync.Map hashed the topic on each call.
	last atomic.Pointer[resolution]

	mu sync.Mutex
	// owners is the table entry each target belongs to, fixed targets
	// first: one target written under two entries' options is refused.
	owners map[TableName]string
}

type resolution struct {
	topic string
	table *Table
	err   error
}

// Router builds the topic resolver of a loaded configuration.
func (c *Config) Router() *Router {
	r := &Router{named: map[string]*Table{}, owners: map[TableName]string{}}
	for i := range c.Tables {
		t := &c.Tables[i]
		if t.Topic != "" {
			r.named[t.Topic] = t
		}
		for _, topic := range t.Topics {
			r.named[topic] = t
		}
		switch {
		case t.TopicPattern.IsZero():
		case t.Target.Template != nil:
			r.templates = append(r.templates, t)
		default:
			r.patterns = append(r.patterns, t)
		}
		if t.Target.Template == nil {
			if _, taken := r.owners[t.Target.TableName]; !taken {
				r.owners[t.Target.TableName] = t.Path
			}
		}
	}
	return r
}

// ErrNoTable is returned by Resolve for a topic no table claims.
var ErrNoTable = errors.New("no table is configured for this topic")

// AmbiguousTopicError is returned by Resolve when a topic named by no table
// matches the patterns of several of equal precedence: pgsink refuses to
// guess which target gets the data.
type AmbiguousTopicError struct {
	Topic  string
	Tables []string // key paths of the matching tables ("tables[2]")
}

func (e *AmbiguousTopicError) Error() string {
	return fmt.Sprintf("topic %q matches the topic_pattern of %s", e.Topic, strings.Join(e.Tables, " and "))
}

// AmbiguousTargetError is returned when a template derives a target that
// another table entry also writes: which entry's options (deletes, key,
// columns…) apply would be a guess.
type AmbiguousTargetError struct {
	Topic  string
	Target TableName
	Tables []string // the entry that has the target, then the one deriving it
}

func (e *AmbiguousTargetError) Error() string {
	return fmt.Sprintf("topic %q: target %s is derived by %s but already belongs to %s", e.Topic, e.Target, e.Tables[1], e.Tables[0])
}

// Resolve returns the table for topic: a table naming it in topic or topics
// first, else the one topic_pattern table with a fixed target that matches
// it, else the one with a templated target. A templated table comes back
// derived for the topic: Target names the table, unless the template needs
// the record (Target.TableName is zero; see ForRecord). The error wraps
// ErrNoTable or is an *AmbiguousTopicError, *AmbiguousTargetError or
// *TemplateError.
func (r *Router) Resolve(topic string) (*Table, error) {
	if res := r.last.Load(); res != nil && res.topic == topic {
		return res.table, res.err
	}
	if v, ok := r.resolved.Load(topic); ok {
		res := v.(*resolution)
		r.last.Store(res)
		return res.table, res.err
	}
	t, err := r.resolve(topic)
	res := &resolution{topic: topic, table: t, err: err}
	// A concurrent first Resolve of the topic may have stored its own:
	// the same answer, derived from the same configuration.
	r.resolved.Store(topic, res)
	r.last.Store(res)
	return t, err
}

func (r *Router) resolve(topic string) (*Table, error) {
	if t, ok := r.named[topic]; ok {
		return r.derive(t, topic)
	}
	for _, level := range [][]*Table{r.patterns, r.templates} {
		var match *Table
		var all []string
		for _, t := range level {
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
		case match != nil:
			return r.derive(match, topic)
		}
	}
	return nil, fmt.Errorf("topic %q: %w", topic, ErrNoTable)
}

// derive returns rule itself for a fixed target, else a copy bound to the
// topic's variables and, when the record is not needed, its target.
func (r *Router) derive(rule *Table, topic string) (*Table, error) {
	tpl := rule.Target.Template
	if tpl == nil {
		return rule, nil
	}
	vars := map[string]string{varTopic: topic}
	if re := rule.TopicPattern.re; re != nil {
		m := re.FindStringSubmatch(topic)
		for i, name := range re.SubexpNames() {
			if name != "" && i < len(m) {
				vars[name] = m[i]
			}
		}
	}
	out := *rule
	out.topicVars = vars
	if tpl.NeedsRecord() {
		return &out, nil
	}
	return r.bind(&out, topic, nil)
}

// ForRecord derives the target of a table Resolve returned for topic from
// one record's values; a table whose target is already known comes back
// as it is. The caller caches the result per distinct values.
func (r *Router) ForRecord(t *Table, topic string, rec RecordValues) (*Table, error) {
	if t.Target.Template == nil || !t.Target.TableName.IsZero() {
		return t, nil
	}
	out := *t
	return r.bind(&out, topic, &rec)
}

func (r *Router) bind(t *Table, topic string, rec *RecordValues) (*Table, error) {
	name, why := t.Target.Template.expand(t.topicVars, rec)
	if why != "" {
		return nil, &TemplateError{Table: t.Path, Template: t.Target.Template.Source, Topic: topic, Reason: why}
	}
	r.mu.Lock()
	owner, taken := r.owners[name]
	if !taken {
		r.owners[name] = t.Path
	}
	r.mu.Unlock()
	if taken && owner != t.Path {
		return nil, &AmbiguousTargetError{Topic: topic, Target: name, Tables: []string{owner, t.Path}}
	}
	t.Target.TableName = name
	return t, nil
}

// NamedTopics lists the topics named by topic and topics entries; topics
// matching a pattern are found with Resolve over the cluster's topic list.
func (r *Router) NamedTopics() []string { return sortedKeys(r.named) }
