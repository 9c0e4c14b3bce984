package docker

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper-cased: FROM, RUN, USER, …
	args string
}

// stage is one FROM and the instructions after it.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile is enough of a parser for the checks below: comments and
// parser directives dropped, backslash continuations joined.
func parseDockerfile(t *testing.T, file string) []stage {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var line string
	for _, raw := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" && line == "" {
			continue
		}
		if cont, ok := strings.CutSuffix(trimmed, "\\"); ok {
			line += cont + " "
			continue
		}
		line += trimmed
		cmd, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		line = ""
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.Join(strings.Fields(args), " ")}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{image: f[len(f)-1]}
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				s.image, s.name = f[len(f)-3], f[len(f)-1]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before any FROM", file, in.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	return stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// debianRelease maps the Debian code names of image tags to release numbers.
var debianRelease = map[string]string{"bookworm": "12", "trixie": "13"}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a build stage and a runtime stage", len(stages))
	}
	for _, s := range stages {
		if err := checkPinned(s.image); err != nil {
			t.Errorf("FROM: %v", err)
		}
	}
	build, runtime := stages[0], stages[len(stages)-1]

	// The build stage runs the developer's command, so the image's binary has
	// the flags of `make build` (TestMakeBuildFlags pins those).
	wantBuild := `make build VERSION="${VERSION}" COMMIT="${COMMIT}"`
	if !slices.ContainsFunc(build.all("RUN"), func(run string) bool { return strings.Contains(run, wantBuild) }) {
		t.Errorf("the build stage never runs %s: %q", wantBuild, build.all("RUN"))
	}
	if !strings.HasPrefix(build.image, "golang:1.26") {
		t.Errorf("build stage FROM %s, want golang:1.26 as go.mod asks", build.image)
	}

	// The bundled librdkafka is linked against glibc: the runtime must be the
	// Debian release the builder is, not musl or a glibc older than the build's.
	var codename string
	for name := range debianRelease {
		if strings.HasSuffix(build.image, "-"+name) {
			codename = name
		}
	}
	if codename == "" || !strings.HasPrefix(runtime.image, "debian:"+debianRelease[codename]) || !strings.HasSuffix(runtime.image, "-slim") {
		t.Errorf("build on %s, run on %s: want Debian-slim of the same release", build.image, runtime.image)
	}

	users := runtime.all("USER")
	if len(users) == 0 || regexp.MustCompile(`^(root|0)(:|$)`).MatchString(users[len(users)-1]) {
		t.Errorf("the runtime stage runs as root (USER %q); want a non-root user", users)
	}
	if hc := runtime.all("HEALTHCHECK"); len(hc) != 1 || !strings.Contains(hc[0], `CMD ["pgsink", "healthcheck", "--url", "http://127.0.0.1:9187/readyz"]`) {
		t.Errorf("HEALTHCHECK %q, want one probing /readyz with pgsink healthcheck", hc)
	}
	if ep := runtime.all("ENTRYPOINT"); len(ep) != 1 || ep[0] != `["pgsink", "run", "--config", "`+configPath+`"]` {
		t.Errorf("ENTRYPOINT %q, want pgsink run --config %s", ep, configPath)
	}
	labels := strings.Join(runtime.all("LABEL"), " ")
	for _, want := range []string{`org.opencontainers.image.version="${VERSION}"`, `org.opencontainers.image.revision="${COMMIT}"`} {
		if !strings.Contains(labels, want) {
			t.Errorf("runtime LABELs lack %s", want)
		}
	}
}

// TestMakeBuildFlags pins what the Dockerfile inherits by running `make
// build`: cgo on, -trimpath, stripped, version and commit stamped.
func TestMakeBuildFlags(t *testing.T) {
	data, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	makefile := string(data)
	for _, want := range []string{
		"LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)\n",
		"GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'\n",
		"build: ## build bin/pgsink (cgo, librdkafka bundled)\n\tCGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -o bin/pgsink ./cmd/pgsink\n",
	} {
		if !strings.Contains(makefile, want) {
			t.Errorf("Makefile lacks %q; the image's build stage runs make build and inherits these flags", want)
		}
	}
}
