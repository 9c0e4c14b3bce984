package main

import (
	"regexp"
	"strings"
	"testing"
)

// A stream as go test -json writes it for three packages run at once: one
// passing, one without tests, one whose test fails.
const stream = `{"Action":"start","Package":"m/a"}
{"Action":"start","Package":"m/e2e"}
{"Action":"start","Package":"m/none"}
{"Action":"output","Package":"m/none","Output":"?   \tm/none\t[no test files]\n"}
{"Action":"skip","Package":"m/none","Elapsed":0}
{"Action":"run","Package":"m/a","Test":"TestA"}
{"Action":"run","Package":"m/e2e","Test":"TestSlow"}
{"Action":"output","Package":"m/a","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"m/a","Test":"TestA","Output":"    a_test.go:9: quiet when it passes\n"}
{"Action":"output","Package":"m/a","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"m/a","Test":"TestA","Elapsed":0}
{"Action":"output","Package":"m/a","Output":"PASS\n"}
{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t0.012s\n"}
{"Action":"pass","Package":"m/a","Elapsed":0.013}
{"Action":"output","Package":"m/e2e","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}
{"Action":"output","Package":"m/e2e","Test":"TestSlow","Output":"    slow_test.go:12: target has 3 rows, want 4\n"}
{"Action":"output","Package":"m/e2e","Test":"TestSlow","Output":"--- FAIL: TestSlow (12.30s)\n"}
{"Action":"fail","Package":"m/e2e","Test":"TestSlow","Elapsed":12.3}
{"Action":"output","Package":"m/e2e","Output":"FAIL\n"}
{"Action":"output","Package":"m/e2e","Output":"FAIL\tm/e2e\t12.345s\n"}
{"Action":"fail","Package":"m/e2e","Elapsed":12.345}
`

func TestFilter(t *testing.T) {
	var out strings.Builder
	code := filter(strings.NewReader(stream), &out, regexp.MustCompile(`/e2e$`))
	if code != 1 {
		t.Errorf("exit code %d, want 1: a test failed", code)
	}
	want := `?   	m/none	[no test files]
=== package m/a started
=== package m/e2e started
=== RUN   TestSlow (m/e2e)
ok  	m/a	0.012s
=== RUN   TestSlow
    slow_test.go:12: target has 3 rows, want 4
--- FAIL: TestSlow (12.30s)
FAIL
FAIL	m/e2e	12.345s
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestFilterPassing(t *testing.T) {
	var passing []string
	for line := range strings.SplitSeq(stream, "\n") {
		if !strings.Contains(line, `"m/e2e"`) {
			passing = append(passing, line)
		}
	}
	var out strings.Builder
	if code := filter(strings.NewReader(strings.Join(passing, "\n")), &out, nil); code != 0 {
		t.Errorf("exit code %d, want 0; output:\n%s", code, out.String())
	}
	if strings.Contains(out.String(), "quiet when it passes") {
		t.Errorf("a passing test's log was printed:\n%s", out.String())
	}
}

// A test binary that dies (a panic, the -timeout) leaves its running test
// without an end event: its output must still be printed, and a stream cut
// before its package ended must fail.
func TestFilterCutShort(t *testing.T) {
	for name, tc := range map[string]struct {
		stream, want string
	}{
		"panic": {`{"Action":"run","Package":"m/p","Test":"TestP"}
{"Action":"output","Package":"m/p","Test":"TestP","Output":"panic: test timed out after 25m0s\n"}
{"Action":"output","Package":"m/p","Output":"FAIL\tm/p\t1500.001s\n"}
{"Action":"fail","Package":"m/p","Elapsed":1500}
`, "panic: test timed out after 25m0s\nFAIL\tm/p\t1500.001s\n"},
		"interrupted": {`{"Action":"run","Package":"m/p","Test":"TestP"}
`, "m/p never finished"},
		"build": {`{"ImportPath":"m/b","Action":"build-output","Output":"b.go:3:1: syntax error\n"}
{"ImportPath":"m/b","Action":"build-fail"}
{"Action":"output","Package":"m/b","Output":"FAIL\tm/b [build failed]\n"}
{"Action":"fail","Package":"m/b","Elapsed":0}
`, "b.go:3:1: syntax error\n"},
	} {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			if code := filter(strings.NewReader(tc.stream), &out, nil); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output:\n%s\ndoes not contain %q", out.String(), tc.want)
			}
		})
	}
}
