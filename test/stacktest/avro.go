package stacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
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

// RegistrySchema fetches the schema text of id from the registry's
// Confluent-compatible API.
func RegistrySchema(registryURL string, id uint32) (string, error) {
	resp, err := http.Get(fmt.Sprintf("%s/apis/ccompat/v7/schemas/ids/%d", registryURL, id))
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
