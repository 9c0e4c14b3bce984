// Package schemaregistry reads Avro schemas by id from a schema registry's
// Confluent-compatible API (Confluent Schema Registry, Apicurio Registry's
// /apis/ccompat/v7), for encoding: avro. It implements
// debezium.SchemaSource.
package schemaregistry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/internal/tlsca"
)

// Client fetches schemas by id and keeps every schema it fetched for the
// life of the process: a schema id's text never changes, so a registry that
// goes away later does not stop records whose ids were seen. It is safe for
// concurrent use; concurrent asks for one id make one request.
type Client struct {
	base           string
	user, password string
	http           *http.Client

	mu      sync.Mutex
	schemas map[uint32]string
	// inflight is the request under way per id, for callers to wait on.
	inflight map[uint32]*fetch
	// Fetched counts requests that returned a schema, for tests and metrics.
	fetched int
}

type fetch struct {
	done chan struct{}
	text string
	err  error
}

// requestTimeout bounds one request: a registry that does not answer is an
// outage, retried by the caller with its backoff.
const requestTimeout = 10 * time.Second

// maxBody bounds a response: a table's schema is kilobytes.
const maxBody = 16 << 20

// New returns a client of r.URL with r's credentials and CAs.
func New(r config.SchemaRegistry) (*Client, error) {
	transport, err := tlsca.Transport(r.TLSCA, "schema_registry.tls_ca")
	if err != nil {
		return nil, err
	}
	return &Client{
		base:     strings.TrimRight(r.URL, "/"),
		user:     r.User,
		password: r.Password,
		http:     &http.Client{Timeout: requestTimeout, Transport: transport},
		schemas:  map[uint32]string{},
		inflight: map[uint32]*fetch{},
	}, nil
}

// Schema returns the schema text of id. An id the registry says it does not
// have is debezium.ErrUnknownSchemaID; a registry that cannot be reached or
// fails is a *debezium.SchemaUnavailableError, retried on the next call.
func (c *Client) Schema(id uint32) (string, error) {
	c.mu.Lock()
	if text, ok := c.schemas[id]; ok {
		c.mu.Unlock()
		return text, nil
	}
	if f, ok := c.inflight[id]; ok {
		c.mu.Unlock()
		<-f.done
		return f.text, f.err
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[id] = f
	c.mu.Unlock()

	f.text, f.err = c.get(id)
	c.mu.Lock()
	delete(c.inflight, id)
	if f.err == nil {
		c.schemas[id] = f.text
		c.fetched++
	}
	c.mu.Unlock()
	close(f.done)
	return f.text, f.err
}

// Fetched reports how many schemas were fetched from the registry.
func (c *Client) Fetched() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetched
}

func (c *Client) get(id uint32) (string, error) {
	unavailable := func(err error) error { return &debezium.SchemaUnavailableError{ID: id, Err: err} }
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	url := fmt.Sprintf("%s/schemas/ids/%d", c.base, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("schema registry: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The URL carries no credentials (config refuses them): the
		// client's error may be shown as it is.
		return "", unavailable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", unavailable(fmt.Errorf("GET %s: %w", url, err))
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		// 40403 is "schema not found"; another 404 (a wrong base path)
		// is the configuration's fault, not the record's.
		var e struct {
			Code int `json:"error_code"`
		}
		if json.Unmarshal(body, &e) == nil && e.Code == 40403 {
			return "", debezium.ErrUnknownSchemaID
		}
		return "", unavailable(fmt.Errorf("GET %s: HTTP 404 (is schema_registry.url the Confluent-compatible API's base?): %s", url, excerpt(body)))
	case resp.StatusCode != http.StatusOK:
		return "", unavailable(fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, excerpt(body)))
	}
	var s struct {
		Schema     string `json:"schema"`
		SchemaType string `json:"schemaType"`
	}
	if err := json.Unmarshal(body, &s); err != nil || s.Schema == "" {
		return "", unavailable(fmt.Errorf("GET %s: not a schema registry answer: %s", url, excerpt(body)))
	}
	if s.SchemaType != "" && s.SchemaType != "AVRO" {
		return "", fmt.Errorf("schema id %d is a %s schema, not Avro", id, s.SchemaType)
	}
	return s.Schema, nil
}

// excerpt shortens a response body for an error message.
func excerpt(b []byte) string {
	const n = 300
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

var _ debezium.SchemaSource = (*Client)(nil)
