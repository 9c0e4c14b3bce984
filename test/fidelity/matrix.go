package fidelity

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/template"
)

// Class is what became of one case in one run.
type Class string

const (
	// Exact: the target's value reads exactly as the source's.
	Exact Class = "exact"
	// Lost: the row was written with a different value.
	Lost Class = "lost"
	// Refused: the row was not written and pgsink said so (a dead letter).
	Refused Class = "refused"
	// Dropped: the row was not written and nothing says why. pgsink must
	// never do this (I5), so the test fails on it whatever the
	// expectations say.
	Dropped Class = "dropped"
)

// Outcome is a case's class in one run and, unless exact, how: what
// Debezium sent and what pgsink wrote, or why the row was refused.
type Outcome struct {
	Class Class
	How   string
}

// Run names one column of the matrix: a set of Debezium settings and the
// phase in which the row was read (snapshot or streaming).
type Run struct {
	Settings string
	Phase    string
}

func (r Run) String() string { return r.Settings + "/" + r.Phase }

// Matrix is every case's outcome in every run.
type Matrix struct {
	Runs     []Run
	Rows     []Row
	Outcomes map[Run]map[int]Outcome // by Row.ID
	// Settings describes each settings set: which connector settings it
	// had, as the test registered them.
	Settings map[string]string
}

// NewMatrix returns an empty matrix of rows.
func NewMatrix(rows []Row) *Matrix {
	return &Matrix{Rows: rows, Outcomes: map[Run]map[int]Outcome{}, Settings: map[string]string{}}
}

// Set records a row's outcome in run.
func (m *Matrix) Set(run Run, id int, o Outcome) {
	if m.Outcomes[run] == nil {
		m.Outcomes[run] = map[int]Outcome{}
		m.Runs = append(m.Runs, run)
	}
	m.Outcomes[run][id] = o
}

// key is how expectations name a case in a run; it survives renumbering.
func key(r Row, run Run) string {
	return r.Column + "\t" + r.Case.Name + "\t" + run.String()
}

// Expectations are the committed classes, by key.
type Expectations map[string]Class

// ReadExpectations reads a file WriteExpectations wrote: one line per case
// and run, tab-separated: column, case, settings/phase, class.
func ReadExpectations(path string) (Expectations, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fidelity: expectations: %w", err)
	}
	exp := Expectations{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, '\t')
		if i < 0 || strings.Count(line, "\t") != 3 {
			return nil, fmt.Errorf("fidelity: %s:%d: want column, case, run and class separated by tabs", path, n)
		}
		exp[line[:i]] = Class(line[i+1:])
	}
	return exp, sc.Err()
}

// WriteExpectations writes m's classes where ReadExpectations reads them.
func (m *Matrix) WriteExpectations(path string) error {
	var b strings.Builder
	b.WriteString("# Written by `make fidelity` (test/e2e TestE2EFidelity): column, case, settings/phase, class.\n")
	b.WriteString("# The test fails when a case listed here as exact is not.\n")
	for _, r := range m.Rows {
		for _, run := range m.Runs {
			fmt.Fprintf(&b, "%s\t%s\n", key(r, run), m.Outcomes[run][r.ID].Class)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// Regressions lists the cases that exp says are exact and that are not,
// and every dropped case, each with its outcome.
func (m *Matrix) Regressions(exp Expectations) []string {
	var out []string
	for _, r := range m.Rows {
		for _, run := range m.Runs {
			o := m.Outcomes[run][r.ID]
			switch {
			case o.Class == Dropped:
				out = append(out, fmt.Sprintf("%s %q under %s: dropped, which pgsink must never do (%s)", r.Column, r.Case.Name, run, o.How))
			case exp[key(r, run)] == Exact && o.Class != Exact:
				out = append(out, fmt.Sprintf("%s %q under %s: the committed matrix says exact, now %s (%s); if that is meant, run make fidelity and commit",
					r.Column, r.Case.Name, run, o.Class, o.How))
			}
		}
	}
	return out
}

// Counts returns, per run, how many cases fell in each class.
func (m *Matrix) Counts() map[Run]map[Class]int {
	out := map[Run]map[Class]int{}
	for _, run := range m.Runs {
		out[run] = map[Class]int{}
		for _, r := range m.Rows {
			out[run][m.Outcomes[run][r.ID].Class]++
		}
	}
	return out
}

//go:embed fidelity.md.tmpl
var docTemplate string

// Markdown renders docs/fidelity.md.
func (m *Matrix) Markdown() (string, error) {
	tmpl, err := template.New("fidelity").Delims("[[", "]]").Parse(docTemplate)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, struct {
		Settings, Summary, Table string
	}{m.settingsList(), m.summary(), m.table()})
	return b.String(), err
}

func (m *Matrix) settingsList() string {
	names := make([]string, 0, len(m.Settings))
	for n := range m.Settings {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "- **%s**: %s\n", n, m.Settings[n])
	}
	return b.String()
}

func (m *Matrix) summary() string {
	counts := m.Counts()
	var b strings.Builder
	b.WriteString("| settings / phase | exact | lost | refused | dropped |\n|---|---|---|---|---|\n")
	for _, run := range m.Runs {
		c := counts[run]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", run, c[Exact], c[Lost], c[Refused], c[Dropped])
	}
	return b.String()
}

// table is one row per case: each run's class, then how the case is not
// exact (once when every run says the same, else per run), then what fixes
// it.
func (m *Matrix) table() string {
	var b strings.Builder
	b.WriteString("| column type | case |")
	for _, run := range m.Runs {
		fmt.Fprintf(&b, " %s |", run)
	}
	b.WriteString(" how | what makes it exact |\n|---|---|")
	b.WriteString(strings.Repeat("---|", len(m.Runs)+2))
	b.WriteString("\n")
	for _, r := range m.Rows {
		fmt.Fprintf(&b, "| `%s` | %s |", cell(r.Type), cell(r.Case.Name))
		var hows []string
		runsOf := map[string][]string{}
		for _, run := range m.Runs {
			o := m.Outcomes[run][r.ID]
			if o.Class == Exact {
				b.WriteString(" exact |")
				continue
			}
			fmt.Fprintf(&b, " **%s** |", o.Class)
			if _, seen := runsOf[o.How]; !seen {
				hows = append(hows, o.How)
			}
			runsOf[o.How] = append(runsOf[o.How], run.String())
		}
		how := ""
		if len(hows) == 1 {
			how = hows[0]
		} else {
			for i, h := range hows {
				if i > 0 {
					how += "; "
				}
				how += strings.Join(runsOf[h], ", ") + ": " + h
			}
		}
		fix := ""
		if len(hows) > 0 {
			fix = r.Fix
		}
		fmt.Fprintf(&b, " %s | %s |\n", cell(how), cell(fix))
	}
	return b.String()
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// Show shortens a value for a cell: at most n runes, an ellipsis after.
func Show(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// severity orders classes from best to worst.
var severity = map[Class]int{Exact: 0, Lost: 1, Refused: 2, Dropped: 3}

// Merge combines a case's outcomes on pgsink's write paths (COPY, bound
// parameters) into one: the outcome when they agree, else the worst class
// with each path's outcome named.
func Merge(byPath map[string]Outcome) Outcome {
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var worst Outcome
	agree := true
	for i, p := range paths {
		o := byPath[p]
		if i == 0 || severity[o.Class] > severity[worst.Class] {
			worst.Class = o.Class
		}
		agree = agree && o == byPath[paths[0]]
	}
	if agree && len(paths) > 0 {
		return byPath[paths[0]]
	}
	var how []string
	for _, p := range paths {
		o := byPath[p]
		s := p + ": " + string(o.Class)
		if o.How != "" {
			s += ", " + o.How
		}
		how = append(how, s)
	}
	worst.How = strings.Join(how, "; ")
	return worst
}
