// Command progress reads `go test -json` on stdin and prints what a person
// watching `make test` needs: one line when a package's tests start, go
// test's own closing line per package ("ok  \tpkg\t1.2s", "FAIL\tpkg …",
// "?   \tpkg\t[no test files]"), a line per test as it starts and ends in
// the packages named by -scenarios, and the whole output of every test or
// package that fails. It exits 1 when any test, package or build failed,
// or when the input ended inside a package that never finished.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
)

func main() {
	scenarios := flag.String("scenarios", "", "packages (regexp on the import path) whose tests get a line each as they start and end")
	flag.Parse()
	re, err := regexp.Compile(*scenarios)
	if err != nil {
		fmt.Fprintln(os.Stderr, "progress:", err)
		os.Exit(2)
	}
	if *scenarios == "" {
		re = nil
	}
	os.Exit(filter(os.Stdin, os.Stdout, re))
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events
	Test       string
	Elapsed    float64
	Output     string
}

type pkgState struct {
	announced, done bool
	out             strings.Builder             // output outside any test
	tests           map[string]*strings.Builder // output of tests not yet ended
}

func filter(in io.Reader, out io.Writer, scenarios *regexp.Regexp) int {
	failed := false
	pkgs := map[string]*pkgState{}
	state := func(name string) *pkgState {
		p := pkgs[name]
		if p == nil {
			p = &pkgState{tests: map[string]*strings.Builder{}}
			pkgs[name] = p
		}
		return p
	}
	announce := func(name string, p *pkgState) {
		if !p.announced {
			p.announced = true
			fmt.Fprintf(out, "=== package %s started\n", name)
		}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(out, "%s\n", line) // not go test's JSON: pass it on
			continue
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
			continue
		case "build-fail":
			failed = true
			continue
		}
		p := state(e.Package)
		scenario := scenarios != nil && scenarios.MatchString(e.Package)
		if e.Test != "" {
			announce(e.Package, p)
			buf := p.tests[e.Test]
			if buf == nil {
				buf = &strings.Builder{}
				p.tests[e.Test] = buf
			}
			switch e.Action {
			case "run":
				if scenario {
					fmt.Fprintf(out, "=== RUN   %s (%s)\n", e.Test, e.Package)
				}
			case "output":
				buf.WriteString(e.Output)
			case "pass", "skip":
				if scenario {
					fmt.Fprintf(out, "--- %s: %s (%.2fs)\n", strings.ToUpper(e.Action), e.Test, e.Elapsed)
				}
				delete(p.tests, e.Test)
			case "fail":
				failed = true
				fmt.Fprint(out, buf.String())
				delete(p.tests, e.Test)
			}
			continue
		}
		switch e.Action {
		case "output":
			p.out.WriteString(e.Output)
			if !strings.HasPrefix(e.Output, "?   \t") && !strings.HasPrefix(e.Output, "ok  \t") {
				announce(e.Package, p)
			}
			if strings.HasPrefix(e.Output, "ok  \t") || strings.HasPrefix(e.Output, "?   \t") {
				fmt.Fprint(out, e.Output) // go test's closing line
			}
		case "pass", "skip":
			p.done = true
		case "fail":
			failed = true
			p.done = true
			// Tests cut short (a panic, a timeout) have no end event of
			// their own: their output explains the failure.
			for _, name := range slices.Sorted(maps.Keys(p.tests)) {
				fmt.Fprint(out, p.tests[name].String())
			}
			fmt.Fprint(out, p.out.String())
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "progress: reading go test's output:", err)
		failed = true
	}
	for _, name := range slices.Sorted(maps.Keys(pkgs)) {
		if p := pkgs[name]; !p.done && name != "" {
			fmt.Fprintf(out, "progress: %s never finished (go test interrupted?)\n", name)
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}
