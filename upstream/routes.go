package upstream

import (
	"regexp"
	"strings"
)

// Transform classes that change a record's topic.
const (
	eventRouterClass = "io.debezium.transforms.outbox.EventRouter"
	logicalRouter    = "io.debezium.transforms.ByLogicalTableRouter"
	regexRouter      = "org.apache.kafka.connect.transforms.RegexRouter"
	// defaultOutboxTopic is the Event Router's route.topic.replacement default.
	defaultOutboxTopic = "outbox.event.${routedByValue}"
)

// route is one topic-changing transform of a connector, in chain order.
type route struct {
	outbox      bool           // an Event Router: the topic comes from a column's value
	regex       *regexp.Regexp // a regex router: the whole topic matched...
	replacement string         // ...and replaced (Go syntax); for outbox the Java pattern
}

// routes lists the connector's topic-changing transforms. A router whose
// regular expression Go cannot compile is left out: its topics are then
// not recognised and the table is reported as matched by no connector.
func (c Connector) routes() []route {
	var out []route
	for _, name := range splitList(c.Config["transforms"]) {
		prefix := "transforms." + name + "."
		switch c.Config[prefix+"type"] {
		case eventRouterClass:
			repl, ok := c.Config[prefix+"route.topic.replacement"]
			if !ok {
				repl = defaultOutboxTopic
			}
			out = append(out, route{outbox: true, replacement: repl})
		case logicalRouter:
			out = append(out, regexRoute(c.Config[prefix+"topic.regex"], c.Config[prefix+"topic.replacement"])...)
		case regexRouter:
			out = append(out, regexRoute(c.Config[prefix+"regex"], c.Config[prefix+"replacement"])...)
		}
	}
	return out
}

var javaGroupRef = regexp.MustCompile(`\$(\d+)`)

func regexRoute(expr, replacement string) []route {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil
	}
	// Java's $1 is Go's ${1}: "$1x" would otherwise name group "1x".
	return []route{{regex: re, replacement: javaGroupRef.ReplaceAllString(replacement, "$${$1}")}}
}

// apply returns the topic a record of topic ends up on. An Event Router's
// topic depends on each event's value, so it is not followed here.
func (r route) apply(topic string) (string, bool) {
	if r.outbox {
		return "", false
	}
	if !r.regex.MatchString(topic) {
		return topic, true
	}
	return r.regex.ReplaceAllString(topic, r.replacement), true
}

// outboxTopics is a regular expression of the topics an Event Router
// writes: its replacement with ${routedByValue} standing for any name.
func (r route) outboxTopics() *regexp.Regexp {
	parts := strings.Split(r.replacement, "${routedByValue}")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `.+`) + `$`)
}
