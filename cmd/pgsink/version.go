package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// version and commit are set at build time by the Makefile
// (-ldflags "-X main.version=... -X main.commit=..."); a plain `go build`
// falls back to the VCS stamp Go embeds.
var (
	version = "dev"
	commit  = ""
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: pgsink version\n\nPrints the version, commit and library versions.")
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	_, librdkafka := kafka.LibraryVersion()
	fmt.Fprintf(stdout, "pgsink %s (commit %s, %s, librdkafka %s)\n", version, buildCommit(), runtime.Version(), librdkafka)
	return 0
}

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
