package doclinks

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDocLinks fails on a relative link of README.md, BENCHMARKS.md or
// docs/*.md that names no file of the repository, or a heading its file
// does not have.
func TestDocLinks(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "BENCHMARKS.md"))
	checked := 0
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		for _, l := range links(string(text)) {
			checked++
			if problem := resolve(file, l.target); problem != "" {
				t.Errorf("%s:%d: link %q: %s", rel, l.line, l.target, problem)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d links found: the link pattern no longer matches the documents", checked)
	}
}

// TestResolveFindsDeadLinks keeps the checker able to fail.
func TestResolveFindsDeadLinks(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "a.md")
	if err := os.WriteFile(doc, []byte("# Title\n\n## `postgres`, the target\n\n```\n## not a heading\n```\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for target, wantOK := range map[string]bool{
		"a.md":                           true,
		"a.md#title":                     true,
		"#postgres-the-target":           true,
		"./":                             true,
		"b.md":                           false,
		"a.md#missing":                   false,
		"#not-a-heading":                 false,
		"https://example.com/nowhere.md": true,
	} {
		if got := resolve(doc, target) == ""; got != wantOK {
			t.Errorf("resolve(%q) ok = %v, want %v", target, got, wantOK)
		}
	}
	got := links("see [a](a.md) and `[b](b.md)`\n```\n[c](c.md)\n```\n[d](d.md#x)\n")
	if len(got) != 2 || got[0].target != "a.md" || got[1].target != "d.md#x" || got[1].line != 5 {
		t.Errorf("links = %+v, want a.md on line 1 and d.md#x on line 5 (none in code)", got)
	}
}

type link struct {
	target string
	line   int
}

var (
	linkPattern   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	inlineCode    = regexp.MustCompile("`[^`]*`")
	headingStrip  = regexp.MustCompile(`[^\p{L}\p{N}\s_-]`)
	headingPrefix = regexp.MustCompile(`^#{1,6}\s+`)
)

// links returns the Markdown link targets of text outside code.
func links(text string) []link {
	var out []link
	inFence := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range linkPattern.FindAllStringSubmatch(inlineCode.ReplaceAllString(line, ""), -1) {
			out = append(out, link{target: m[1], line: i + 1})
		}
	}
	return out
}

// resolve says what is wrong with target, a link in file, or "" when
// nothing is. Links with a scheme are not followed.
func resolve(file, target string) string {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return ""
	}
	path, fragment, _ := strings.Cut(target, "#")
	dest := file
	if path != "" {
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		if _, err := os.Stat(dest); err != nil {
			return "no such file or folder"
		}
	}
	if fragment == "" {
		return ""
	}
	if !strings.HasSuffix(dest, ".md") {
		return "a #fragment on a file that is not Markdown"
	}
	text, err := os.ReadFile(dest)
	if err != nil {
		return err.Error()
	}
	if !anchors(string(text))[fragment] {
		return "no heading with the anchor #" + fragment
	}
	return ""
}

// anchors are the heading anchors GitHub renders for a Markdown text:
// lower case, punctuation dropped, spaces as hyphens, -1, -2… on repeats.
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence || !headingPrefix.MatchString(line) {
			continue
		}
		title := strings.ToLower(strings.TrimSpace(headingPrefix.ReplaceAllString(line, "")))
		slug := strings.ReplaceAll(headingStrip.ReplaceAllString(title, ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}
