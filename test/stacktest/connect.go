package stacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Connect is a small client for Kafka Connect's REST API.
type Connect struct {
	URL  string
	HTTP *http.Client
}

// NewConnect returns a client for the worker at baseURL.
func NewConnect(baseURL string) *Connect {
	return &Connect{URL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// ConnectorStatus is GET /connectors/{name}/status.
type ConnectorStatus struct {
	Name      string `json:"name"`
	Connector struct {
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"connector"`
	Tasks []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"tasks"`
}

func (c *Connect) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// Put creates or updates connector name with config (PUT /connectors/{name}/config).
func (c *Connect) Put(ctx context.Context, name string, config map[string]string) error {
	code, body, err := c.do(ctx, http.MethodPut, "/connectors/"+url.PathEscape(name)+"/config", config)
	if err != nil {
		return fmt.Errorf("connect: put %s: %w", name, err)
	}
	if code != http.StatusOK && code != http.StatusCreated {
		return fmt.Errorf("connect: put %s: HTTP %d: %s", name, code, body)
	}
	return nil
}

// Status returns the connector's and its tasks' states.
func (c *Connect) Status(ctx context.Context, name string) (ConnectorStatus, error) {
	var st ConnectorStatus
	code, body, err := c.do(ctx, http.MethodGet, "/connectors/"+url.PathEscape(name)+"/status", nil)
	if err != nil {
		return st, fmt.Errorf("connect: status %s: %w", name, err)
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("connect: status %s: HTTP %d: %s", name, code, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("connect: status %s: %w", name, err)
	}
	return st, nil
}

// WaitRunning polls until the connector and all its tasks are RUNNING. A
// FAILED state ends the wait at once with the worker's stack trace.
func (c *Connect) WaitRunning(ctx context.Context, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		st, err := c.Status(ctx, name)
		if err == nil {
			if st.Connector.State == "FAILED" {
				return fmt.Errorf("connect: connector %s FAILED: %s", name, st.Connector.Trace)
			}
			running := st.Connector.State == "RUNNING" && len(st.Tasks) > 0
			for _, task := range st.Tasks {
				if task.State == "FAILED" {
					return fmt.Errorf("connect: connector %s task %d FAILED: %s", name, task.ID, task.Trace)
				}
				running = running && task.State == "RUNNING"
			}
			if running {
				return nil
			}
			last = fmt.Sprintf("connector %s, %d task(s)", st.Connector.State, len(st.Tasks))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect: connector %s not RUNNING after %s (last: %s)", name, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Delete removes a connector; a connector that does not exist is not an error.
func (c *Connect) Delete(ctx context.Context, name string) error {
	code, body, err := c.do(ctx, http.MethodDelete, "/connectors/"+url.PathEscape(name), nil)
	if err != nil {
		return fmt.Errorf("connect: delete %s: %w", name, err)
	}
	if code != http.StatusNoContent && code != http.StatusOK && code != http.StatusNotFound {
		return fmt.Errorf("connect: delete %s: HTTP %d: %s", name, code, body)
	}
	return nil
}

// List returns the names of the worker's connectors.
func (c *Connect) List(ctx context.Context) ([]string, error) {
	code, body, err := c.do(ctx, http.MethodGet, "/connectors", nil)
	if err != nil {
		return nil, fmt.Errorf("connect: list: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("connect: list: HTTP %d: %s", code, body)
	}
	var names []string
	if err := json.Unmarshal(body, &names); err != nil {
		return nil, fmt.Errorf("connect: list: %w", err)
	}
	return names, nil
}
