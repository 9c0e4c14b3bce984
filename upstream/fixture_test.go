package upstream

import (
	"os"
	"testing"
)

// loadFixture reads testdata/connectors.json, a GET /connectors?expand=info
// recorded from the stack's Connect (TestIntegrationConnectFixtures).
func loadFixture(t *testing.T) []Connector {
	t.Helper()
	body, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ParseConnectors(body)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// fixturePath holds a GET /connectors?expand=info recorded from the stack's Connect.
const fixturePath = "testdata/connectors.json"
