package docker

import (
	"fmt"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
	"go.yaml.in/yaml/v3"
)

// composeFile is the part of the compose specification these checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// service returns a service the demo needs, failing the test when it is missing.
func (c composeFile) service(t *testing.T, name string) composeService {
	t.Helper()
	s, ok := c.Services[name]
	if !ok {
		t.Fatalf("compose.yaml has no service %q; the demo needs it", name)
	}
	return s
}

// mounts maps a service's mount targets to their sources.
func (s composeService) mounts() map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

func TestComposeHasTheDemo(t *testing.T) {
	c := loadCompose(t)
	source := c.service(t, "source")
	if !strings.HasPrefix(source.Image, "postgres:15.") {
		t.Errorf("source image %q, want PostgreSQL 15 as the local stack runs", source.Image)
	}
	if !slices.Contains(source.Command, "wal_level=logical") {
		t.Errorf("source command %q does not set wal_level=logical; Debezium needs it", source.Command)
	}
	kafka := c.service(t, "kafka")
	if !strings.HasPrefix(kafka.Image, "apache/kafka:4.3.") || !strings.Contains(kafka.Environment["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("kafka: image %q, roles %q; want apache/kafka 4.3 in KRaft mode (a controller role, no ZooKeeper)",
			kafka.Image, kafka.Environment["KAFKA_PROCESS_ROLES"])
	}
	if connect := c.service(t, "connect"); connect.Image != "quay.io/debezium/connect:3.6.1.Final" {
		t.Errorf("connect image %q, want Debezium 3.6.1.Final as the local stack runs", connect.Image)
	}
	register := c.service(t, "register")
	if _, ok := register.DependsOn["connect"]; !ok {
		t.Error("register does not depend on connect")
	}
	pgsink := c.service(t, "pgsink")
	if pgsink.Deploy.Replicas < 2 {
		t.Errorf("pgsink has %d replica(s), want two in one group", pgsink.Deploy.Replicas)
	}
	if pgsink.Build == nil || path.Join(pgsink.Build.Context, pgsink.Build.Dockerfile) != "../docker/Dockerfile" {
		t.Errorf("pgsink is not built from docker/Dockerfile: %+v", pgsink.Build)
	}
	if dep := pgsink.DependsOn["register"]; dep.Condition != "service_completed_successfully" {
		t.Errorf("pgsink starts before the connectors are registered (depends_on register: %q)", dep.Condition)
	}
	if target := c.service(t, "target"); !strings.HasPrefix(target.Image, "postgres:15.") {
		t.Errorf("target image %q, want PostgreSQL 15", target.Image)
	}
	// The databases are healthy only once their init scripts ran: the
	// image's temporary init server does not listen on TCP.
	for _, name := range []string{"source", "target"} {
		if hc := c.Services[name].Healthcheck.Test; !slices.Contains(hc, "127.0.0.1") {
			t.Errorf("%s healthcheck %q does not probe over TCP; it would pass while the init scripts still run", name, hc)
		}
	}
	// Data lives in named volumes, declared at the top level.
	for name, s := range c.Services {
		for target, src := range s.mounts() {
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s mounts volume %q at %s, which is not declared under volumes:", name, src, target)
				}
			}
		}
	}
}

// pinned matches a tag that names a version: digits, not a moving name.
var pinned = regexp.MustCompile(`^[^:@]+(:[^:@]*[0-9][^:@]*)?(@sha256:[0-9a-f]{64})?$`)

func TestComposeImagesPinned(t *testing.T) {
	for name, s := range loadCompose(t).Services {
		if s.Image == "" && s.Build != nil {
			continue // built from docker/Dockerfile, whose FROM lines TestDockerfile checks
		}
		if err := checkPinned(s.Image); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
}

// checkPinned accepts an image reference with a version tag or a digest.
func checkPinned(image string) error {
	name, tag, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	switch {
	case image == "":
		return fmt.Errorf("no image")
	case tag == "" && !strings.Contains(image, "@sha256:"):
		return fmt.Errorf("image %q has no tag: it would pull whatever latest is", image)
	case strings.HasPrefix(tag, "latest") || strings.Contains(name, "latest"):
		return fmt.Errorf("image %q is not pinned to a version", image)
	case !pinned.MatchString(image):
		return fmt.Errorf("image %q: tag %q names no version", image, tag)
	}
	return nil
}

// TestComposePorts checks that only what a user reaches from the host is
// published, and only on the loopback interface.
func TestComposePorts(t *testing.T) {
	published := map[string]bool{}
	for name, s := range loadCompose(t).Services {
		for _, p := range s.Ports {
			published[name] = true
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %q on every interface; bind it to 127.0.0.1", name, p)
			}
		}
	}
	want := map[string]bool{"connect": true, "pgsink": true}
	if !reflect.DeepEqual(published, want) {
		t.Errorf("services publishing ports: %v, want %v (Connect's REST API and pgsink's metrics)", published, want)
	}
}

// TestComposeConnectorFiles checks that the register service mounts exactly
// the connector files the Go side embeds and loads (stacktest.ConnectorFile),
// and that those files point at compose's source database.
func TestComposeConnectorFiles(t *testing.T) {
	c := loadCompose(t)
	var mounted []string
	for target, src := range c.service(t, "register").mounts() {
		if !strings.HasPrefix(target, "/connectors/") {
			continue
		}
		name := strings.TrimSuffix(path.Base(target), ".json")
		if src != "./"+ConnectorDir+"/"+name+".json" {
			t.Errorf("register mounts %s at %s; register.sh names the connector after the file, so mount ./connectors/%s.json", src, target, name)
		}
		mounted = append(mounted, name)
	}
	slices.Sort(mounted)
	if want := []string{OutboxConnector, TablesConnector}; !slices.Equal(mounted, want) || !slices.Equal(Connectors(), want) {
		t.Errorf("register mounts %v, the Go side embeds %v; both must be %v", mounted, Connectors(), want)
	}
	source := c.service(t, "source")
	slots := map[string]string{}
	for _, name := range Connectors() {
		cfg, err := Connector(name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg["database.hostname"] != "source" || cfg["database.dbname"] != source.Environment["POSTGRES_DB"] {
			t.Errorf("%s: database %s/%s, want compose's source/%s", name, cfg["database.hostname"], cfg["database.dbname"], source.Environment["POSTGRES_DB"])
		}
		if other, dup := slots[cfg["slot.name"]]; dup {
			t.Errorf("%s and %s share the replication slot %s", name, other, cfg["slot.name"])
		}
		slots[cfg["slot.name"]] = name
	}
}

// TestComposeTopicsMirrorTheDemo checks that every topic pgsink consumes in
// compose is one the connector files produce, and that compose's pgsink maps
// the same tables as examples/demo.yaml.
func TestComposeTopicsMirrorTheDemo(t *testing.T) {
	cfg := loadPgsinkConfig(t)
	var produced []*regexp.Regexp
	for _, name := range Connectors() {
		c, err := Connector(name)
		if err != nil {
			t.Fatal(err)
		}
		if r := c["transforms.outbox.route.topic.replacement"]; r != "" {
			produced = append(produced, regexp.MustCompile("^"+strings.ReplaceAll(regexp.QuoteMeta(r), regexp.QuoteMeta("${routedByValue}"), `[^.]+`)+"$"))
			continue
		}
		for _, table := range strings.Split(c["table.include.list"], ",") {
			produced = append(produced, regexp.MustCompile("^"+regexp.QuoteMeta(c["topic.prefix"]+"."+table)+"$"))
		}
	}
	for _, table := range cfg.Tables {
		if !slices.ContainsFunc(produced, func(re *regexp.Regexp) bool { return re.MatchString(table.Topic) }) {
			t.Errorf("pgsink.yaml consumes %s, which no connector file produces (%v)", table.Topic, produced)
		}
	}
	data, err := os.ReadFile("../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	demo, err := config.Parse("examples/demo.yaml", data, lookup(map[string]string{
		"PGSINK_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "PGSINK_DATABASE_URL": "postgres://u@127.0.0.1/t",
		"PGSINK_CONNECT_URL": "http://127.0.0.1:8083", "PGSINK_ENCODING": "json", "PGSINK_SCHEMA_REGISTRY_URL": ""}))
	if err != nil {
		t.Fatalf("examples/demo.yaml: %v", err)
	}
	if !reflect.DeepEqual(cfg.Tables, demo.Tables) {
		t.Errorf("docker/pgsink.yaml's tables differ from examples/demo.yaml's:\n%+v\n%+v", cfg.Tables, demo.Tables)
	}
}
