package docker

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// The connector files are the bodies of Connect's PUT /connectors/<name>/config,
// written for compose (host "source", prefix TopicPrefix). Go code loads them
// from here and overrides only the per-run values.
//
//go:embed connectors/*.json
var connectorFiles embed.FS

const (
	// TablesConnector streams the demo's customers and orders tables.
	TablesConnector = "demo-tables"
	// OutboxConnector streams the demo's outbox through the Outbox Event Router.
	OutboxConnector = "demo-outbox"
	// TopicPrefix is the topic prefix the connector files are written with;
	// the demo uses it as it is, tests replace it with their own.
	TopicPrefix = "demo"
)

// ConnectorDir is where the connector files are, relative to this folder
// (and to compose.yaml).
const ConnectorDir = "connectors"

// Connector returns the configuration in connectors/<name>.json. Every value
// must be a JSON string, as Connect's REST API stores them.
func Connector(name string) (map[string]string, error) {
	data, err := connectorFiles.ReadFile(path.Join(ConnectorDir, name+".json"))
	if err != nil {
		return nil, fmt.Errorf("docker: connector %s: %w", name, err)
	}
	var cfg map[string]string
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("docker: connector %s: %w", name, err)
	}
	return cfg, nil
}

// Connectors lists the names of the embedded connector files, sorted.
func Connectors() []string {
	entries, _ := fs.ReadDir(connectorFiles, ConnectorDir)
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}
