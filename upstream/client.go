package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/internal/tlsca"
)

// Connector is one connector as Kafka Connect stores it: only the settings
// it was given, Debezium's defaults are not in Config.
type Connector struct {
	Name   string
	Config map[string]string
}

// Client reads connectors from one Kafka Connect worker.
type Client struct {
	base           string
	user, password string
	http           *http.Client
}

// requestTimeout bounds one call to Connect, so that a firewalled worker
// fails the check instead of hanging validate or run's start.
const requestTimeout = 15 * time.Second

// maxBody bounds what is read of a response: a worker with thousands of
// connectors stays well below it.
const maxBody = 64 << 20

// NewClient returns a client for the worker of d.ConnectURL, trusting the
// CAs of d.TLSCA when set.
func NewClient(d config.Debezium) (*Client, error) {
	transport, err := tlsca.Transport(d.TLSCA, "debezium.tls_ca")
	if err != nil {
		return nil, err
	}
	return &Client{
		base:     strings.TrimRight(d.ConnectURL, "/"),
		user:     d.User,
		password: d.Password,
		http:     &http.Client{Timeout: requestTimeout, Transport: transport},
	}, nil
}

// connectorsInfo is GET /connectors?expand=info: each connector's name,
// configuration, tasks and type, by name.
type connectorsInfo map[string]struct {
	Info struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	} `json:"info"`
}

// Connectors lists every connector of the worker, in name order.
func (c *Client) Connectors(ctx context.Context) ([]Connector, error) {
	body, err := c.get(ctx, "/connectors?expand=info")
	if err != nil {
		return nil, err
	}
	return ParseConnectors(body)
}

func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The URL carries no credentials (config refuses them), so the
		// client's error may be shown as it is.
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("connect: GET %s%s: %w", c.base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("connect: GET %s%s: HTTP %d: %s", c.base, path, resp.StatusCode, excerpt(body))
	}
	return body, nil
}

// ParseConnectors decodes a GET /connectors?expand=info response.
func ParseConnectors(body []byte) ([]Connector, error) {
	var info connectorsInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("connect: GET /connectors?expand=info: not the expected JSON: %w", err)
	}
	out := make([]Connector, 0, len(info))
	for name, c := range info {
		out = append(out, Connector{Name: name, Config: c.Info.Config})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// excerpt is the start of an error body, on one line.
func excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
