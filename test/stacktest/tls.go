package stacktest

import (
	"fmt"
	"os"
)

// TLSEnv holds the stack's TLS endpoints: the CA that signed the server
// certificate PostgreSQL and the broker's TLS listeners present, and the
// broker's SSL and SASL_SSL (SCRAM-SHA-256) listeners.
type TLSEnv struct {
	CA                 string // PEM file
	KafkaSSLBootstrap  string
	KafkaSASLBootstrap string
}

// LoadTLSEnv reads the TLS endpoints as LoadEnv reads the others. A stack
// started before stack.sh had TLS listeners lacks them: restart it.
func LoadTLSEnv() (TLSEnv, error) {
	fromFile, fileErr := readEnvFile(envFilePath())
	get := func(key string) (string, error) {
		if v := os.Getenv(key); v != "" {
			return v, nil
		}
		if v := fromFile[key]; v != "" {
			return v, nil
		}
		if fileErr != nil {
			return "", fmt.Errorf("%s is not set and %w; %s", key, fileErr, startHint)
		}
		return "", fmt.Errorf("%s is not set: the running stack predates its TLS listeners; restart it with `make stack-down stack-up`", key)
	}
	var e TLSEnv
	var err error
	if e.CA, err = get("PGSINK_TLS_CA"); err != nil {
		return e, err
	}
	if e.KafkaSSLBootstrap, err = get("PGSINK_KAFKA_SSL_BOOTSTRAP"); err != nil {
		return e, err
	}
	if e.KafkaSASLBootstrap, err = get("PGSINK_KAFKA_SASL_SSL_BOOTSTRAP"); err != nil {
		return e, err
	}
	return e, nil
}
