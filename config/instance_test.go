package config

import (
	"errors"
	"slices"
	"testing"
)

// TestInstanceName checks where the instance name comes from: the
// environment over the file over kafka.group.instance.id, none by default.
func TestInstanceName(t *testing.T) {
	const table = "tables:\n  - topic: app.public.t\n    target: public.t\n"
	tests := []struct {
		name, body, env, want string
	}{
		{name: "none by default", body: table},
		{name: "from the file", body: table + "instance: { name: sink-a }\n", want: "sink-a"},
		{name: "environment wins", body: table + "instance: { name: sink-a }\n", env: "sink-b", want: "sink-b"},
		{name: "empty environment ignored", body: table + "instance: { name: sink-a }\n", env: "", want: "sink-a"},
		{name: "environment alone", body: table, env: "web-0", want: "web-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(name string) (string, bool) {
				if name == InstanceNameEnv && tt.env != "" {
					return tt.env, true
				}
				return lookupTestEnv(name)
			}
			cfg, err := Parse("test.yaml", []byte(minimalHeader+tt.body), lookup)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Instance.Name != tt.want {
				t.Fatalf("instance name %q, want %q", cfg.Instance.Name, tt.want)
			}
		})
	}
	t.Run("group.instance.id alone", func(t *testing.T) {
		src := "kafka: { bootstrap.servers: k, group.id: g, group.instance.id: sink-c }\npostgres: { url: u }\n" + table
		cfg, err := Parse("test.yaml", []byte(src), lookupTestEnv)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Instance.Name != "sink-c" {
			t.Fatalf("instance name %q, want sink-c", cfg.Instance.Name)
		}
	})
	t.Run("invalid name from the environment", func(t *testing.T) {
		lookup := func(name string) (string, bool) {
			if name == InstanceNameEnv {
				return "pod/0", true
			}
			return lookupTestEnv(name)
		}
		_, err := Parse("test.yaml", []byte(minimalHeader+table), lookup)
		var problems Problems
		if !errors.As(err, &problems) {
			t.Fatalf("got %v, want a problem", err)
		}
		want := []string{`instance.name: (from PGSINK_INSTANCE_NAME) is not a valid Kafka group.instance.id (only letters, digits, '.', '_' and '-'): "pod/0"`}
		if got := problemTexts(problems); !slices.Equal(got, want) {
			t.Fatalf("problems %q, want %q", got, want)
		}
	})
}
