package stacktest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
)

// AvroConverter returns the connector settings that make Debezium write key
// and value through Apicurio's Avro converter in the Confluent wire format
// (magic byte 0, a 4-byte schema id, the Avro body) against the registry at
// registryURL (the stack's PGSINK_REGISTRY_URL). The ids are contentIds, the
// ids Apicurio's Confluent-compatible API serves; with headers enabled the
// converter would put the id in record headers instead of the body.
func AvroConverter(registryURL string) map[string]string {
	cfg := map[string]string{}
	for _, side := range []string{"key", "value"} {
		p := side + ".converter"
		cfg[p] = "io.apicurio.registry.utils.converter.AvroConverter"
		cfg[p+".apicurio.registry.url"] = registryURL + "/apis/registry/v2"
		cfg[p+".apicurio.registry.auto-register"] = "true"
		cfg[p+".apicurio.registry.as-confluent"] = "true"
		cfg[p+".apicurio.registry.use-id"] = "contentId"
		cfg[p+".apicurio.registry.headers.enabled"] = "false"
	}
	return cfg
}

// UseAvro switches connector settings written for Kafka Connect's
// JsonConverter (the demo's connector files, OutboxRouter) to AvroConverter's
// against registryURL. The settings only the JSON converter reads go: its
// schemas.enable, and the Outbox Event Router's delegate converter, which
// infers a schema from the expanded JSON payload.
func UseAvro(cfg map[string]string, registryURL string) {
	for k := range cfg {
		if strings.HasSuffix(k, ".converter.schemas.enable") || k == "value.converter.delegate.converter.type" {
			delete(cfg, k)
		}
	}
	maps.Copy(cfg, AvroConverter(registryURL))
}

// ConfluentAPI is the address of the registry's Confluent-compatible API,
// the schema_registry.url pgsink reads Avro schemas from.
func ConfluentAPI(registryURL string) string { return registryURL + "/apis/ccompat/v7" }

// RegistrySchema fetches the schema text of id from the registry's
// Confluent-compatible API.
func RegistrySchema(registryURL string, id uint32) (string, error) {
	resp, err := http.Get(fmt.Sprintf("%s/schemas/ids/%d", ConfluentAPI(registryURL), id))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET schemas/ids/%d: %s", id, resp.Status)
	}
	var body struct {
		Schema string `json:"schema"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.Schema, nil
}
