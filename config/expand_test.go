package config

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  string
	}{
		{in: "plain", want: "plain"},
		{in: "${PGSINK_DATABASE_URL}", want: testEnv["PGSINK_DATABASE_URL"]},
		{in: "pw=${KAFKA_PASSWORD}!", want: "pw=kafka-s3cret!"},
		{in: "a${EMPTY}b", want: "ab"},
		{in: "$${NOT_EXPANDED}", want: "${NOT_EXPANDED}"},
		{in: "pa$$word$", want: "pa$$word$"},
		{in: `^app\.\d+$`, want: `^app\.\d+$`},
		{in: "${NOPE} ${NOR}", wantErr: "environment variable NOPE, NOR is not set"},
		{in: "${UNCLOSED", wantErr: "unterminated ${"},
		{in: "${1BAD}", wantErr: "${1BAD} is not a valid environment variable reference"},
		{in: "${}", wantErr: "${} is not a valid environment variable reference"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, lookupTestEnv)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("expand(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
