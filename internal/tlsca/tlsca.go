// Package tlsca builds the HTTP transports of pgsink's REST clients (Kafka
// Connect, the schema registry): the default transport, trusting a PEM file
// of certificate authorities when one is configured.
package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
)

// Transport returns a clone of the default transport that trusts the CAs of
// the PEM file caFile, or the system's when caFile is empty. key names the
// configuration key in errors.
func Transport(caFile, key string) (*http.Transport, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if caFile == "" {
		return transport, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", key, caFile)
	}
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return transport, nil
}
