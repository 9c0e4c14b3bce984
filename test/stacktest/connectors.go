package stacktest

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/pgsink/pgsink/docker"
)

// Run is what one registration changes in a connector file of
// docker/connectors: the source database, the replication slot (which also
// names the publication) and the topic prefix.
type Run struct {
	SourceURL   string
	Slot        string
	TopicPrefix string
}

// ConnectorFile returns the connector configuration docker/connectors/<name>.json
// (the one compose registers) with run's database, slot and topic prefix.
// Every other setting is the file's, so the demo, the tests and compose
// cannot drift apart.
func ConnectorFile(name string, run Run) (map[string]string, error) {
	cfg, err := docker.Connector(name)
	if err != nil {
		return nil, fmt.Errorf("stacktest: %w", err)
	}
	if err := connectTo(cfg, run.SourceURL); err != nil {
		return nil, err
	}
	cfg["slot.name"], cfg["publication.name"] = run.Slot, run.Slot
	if err := retarget(cfg, run.TopicPrefix); err != nil {
		return nil, fmt.Errorf("stacktest: connector %s: %w", name, err)
	}
	return cfg, nil
}

// runKeys are the settings ConnectorFile replaces per run; OutboxRouter
// leaves them out so that they do not clobber the sandbox's own.
var runKeys = []string{"database.hostname", "database.port", "database.user", "database.password",
	"database.dbname", "slot.name", "publication.name"}

func connectTo(cfg map[string]string, sourceURL string) error {
	u, err := url.Parse(sourceURL)
	if err != nil {
		return fmt.Errorf("stacktest: source URL: %w", err)
	}
	password, _ := u.User.Password()
	cfg["database.hostname"] = u.Hostname()
	cfg["database.port"] = u.Port()
	cfg["database.user"] = u.User.Username()
	cfg["database.password"] = password
	cfg["database.dbname"] = strings.TrimPrefix(u.Path, "/")
	return nil
}

// retarget swaps the files' topic prefix for prefix wherever a topic name is
// built from it: topic.prefix itself and an Event Router's replacement
// pattern. A value that does not start with the files' prefix means the file
// changed in a way this code does not understand, so it is an error rather
// than a topic nobody consumes.
func retarget(cfg map[string]string, prefix string) error {
	for k, v := range cfg {
		if k != "topic.prefix" && !strings.HasSuffix(k, ".route.topic.replacement") {
			continue
		}
		rest, ok := strings.CutPrefix(v, docker.TopicPrefix)
		if !ok || rest != "" && rest[0] != '.' && rest[0] != '_' {
			return fmt.Errorf("%s = %q does not start with the prefix %q the connector files use", k, v, docker.TopicPrefix)
		}
		cfg[k] = prefix + rest
	}
	return nil
}
