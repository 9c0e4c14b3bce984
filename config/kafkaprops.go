package config

import (
	_ "embed"
	"sort"
	"strings"
)

//go:embed kafka_properties.txt
var kafkaPropertiesText string

// kafkaProperties are the librdkafka properties the bundled client knows,
// so that a misspelt key fails validate with its line instead of failing
// run with librdkafka's message and no line.
var kafkaProperties = func() map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(kafkaPropertiesText, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = true
		}
	}
	return m
}()

// KafkaProperties lists the librdkafka properties validate accepts.
func KafkaProperties() []string {
	names := make([]string, 0, len(kafkaProperties))
	for n := range kafkaProperties {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// closestKafkaProperty is the known property nearest to key by edit
// distance, if one is near enough to be a likely misspelling.
func closestKafkaProperty(key string) (string, bool) {
	best, bestDist := "", len(key)/3+1
	for _, name := range KafkaProperties() {
		if d := editDistance(key, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best, best != ""
}
