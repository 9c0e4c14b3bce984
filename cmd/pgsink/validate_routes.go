package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
)

// routes is what the configuration's templated targets resolve to for a
// list of topics: a line per topic, the derived tables (to check against
// the catalog), and a problem for each topic a rule claims but cannot
// route.
type routes struct {
	lines    []string
	derived  []*config.Table
	problems config.Problems
}

func hasTemplates(cfg *config.Config) bool {
	return slices.ContainsFunc(cfg.Tables, func(t config.Table) bool { return t.Target.Template != nil })
}

// splitTopics reads --topics: names separated by commas.
func splitTopics(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// clusterTopics lists the topics that exist which a table claims, from
// Kafka's metadata.
func clusterTopics(cfg *config.Config) ([]string, error) {
	in, err := connector.NewInspector(cfg)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	return in.Topics(cfg)
}

// resolveRoutes routes each topic as pgsink run would.
func resolveRoutes(cfg *config.Config, topics []string) routes {
	var out routes
	router := cfg.Router()
	seen := map[config.TableName]bool{}
	topics = slices.Clone(topics)
	slices.Sort(topics)
	for _, topic := range slices.Compact(topics) {
		t, err := router.Resolve(topic)
		if errors.Is(err, config.ErrNoTable) {
			out.lines = append(out.lines, fmt.Sprintf("%s: topic %s: no table claims it", cfg.File(), topic))
			continue
		}
		if err != nil {
			out.problems = append(out.problems, routeProblem(cfg, err))
			continue
		}
		at := cfg.Position(t.Path+".target").String() + ": " + t.Path
		if t.Target.Template == nil {
			out.lines = append(out.lines, fmt.Sprintf("%s: topic %s → %s", at, topic, t.Target.TableName))
			continue
		}
		if t.Target.TableName.IsZero() {
			out.lines = append(out.lines, fmt.Sprintf("%s: topic %s → %s, decided per record", at, topic, t.Target.Template.Source))
			continue
		}
		out.lines = append(out.lines, fmt.Sprintf("%s: topic %s → %s", at, topic, t.Target.TableName))
		if !seen[t.Target.TableName] {
			seen[t.Target.TableName] = true
			out.derived = append(out.derived, t)
		}
	}
	return out
}

// routeProblem places a routing error at the key that causes it.
func routeProblem(cfg *config.Config, err error) config.Problem {
	var (
		amb    *config.AmbiguousTopicError
		target *config.AmbiguousTargetError
		tmpl   *config.TemplateError
	)
	switch {
	case errors.As(err, &amb):
		first := amb.Tables[0] + ".topic_pattern"
		return cfg.Problem(amb.Tables[1]+".topic_pattern", "topic %q also matches the topic_pattern of %s (line %d), with equal precedence: name the topic in one table, or make the patterns exclusive",
			amb.Topic, amb.Tables[0], cfg.Position(first).Line)
	case errors.As(err, &target):
		return cfg.Problem(target.Tables[1]+".target", "topic %q derives target %s, which %s (line %d) already writes with its own options",
			target.Topic, target.Target, target.Tables[0], cfg.Position(target.Tables[0]).Line)
	case errors.As(err, &tmpl):
		return cfg.Problem(tmpl.Table+".target", "topic %q: %s", tmpl.Topic, tmpl.Reason)
	}
	return cfg.Problem("tables", "%s", err)
}
