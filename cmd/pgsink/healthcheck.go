package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const healthcheckUsage = `Usage: pgsink healthcheck [--url URL] [--timeout DURATION]

GETs URL and exits 0 on a 2xx answer, 1 otherwise. It is the container
image's HEALTHCHECK, so the image needs no curl: point it at /readyz of the
pgsink run in the same container.

Flags:
`

func runHealthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:9187/readyz", "the `URL` to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), healthcheckUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "pgsink healthcheck: no arguments are taken")
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(*url)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	// The body says why /readyz is not ready; a line of it is enough for
	// `docker inspect`'s health log.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "pgsink healthcheck: %s: HTTP %d: %s\n", *url, resp.StatusCode, msg)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", *url, msg)
	return 0
}
