// Package obstest checks a package's Prometheus metrics against their
// documentation: docs/metrics.md lists every series a daemon exports, one
// table per section, and each package's test compares its collector's
// descriptions with its section, names and label names both ways.
package obstest

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// DocMetrics returns the metrics the tables of one section of the markdown
// file at path list (the section runs from a "## " heading that starts
// with heading to the next "## "): metric name → its label names, in the
// order written. A table row names a metric in its first column, in
// backquotes, and its labels in the third, each in backquotes, with any
// values they take in parentheses.
func DocMetrics(t testing.TB, path, heading string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	in := false
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "## "); ok {
			in = strings.HasPrefix(rest, heading)
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(line, "|")
		if len(cols) < 5 {
			t.Fatalf("%s: a table row with %d columns: %q", path, len(cols)-2, line)
		}
		name := strings.Trim(strings.TrimSpace(cols[1]), "`")
		labels := []string{}
		for _, m := range backquoted.FindAllStringSubmatch(parens.ReplaceAllString(cols[3], ""), -1) {
			labels = append(labels, m[1])
		}
		if _, dup := out[name]; dup {
			t.Fatalf("%s: %s listed twice", path, name)
		}
		out[name] = labels
	}
	if len(out) == 0 {
		t.Fatalf("%s: no metrics under a heading %q", path, heading)
	}
	return out
}

var (
	backquoted = regexp.MustCompile("`([^`]+)`")
	parens     = regexp.MustCompile(`\([^)]*\)`)
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	descConst  = regexp.MustCompile(`constLabels: \{([^}]*)\}`)
	constName  = regexp.MustCompile(`(\w+)="`)
)

// Described returns what c's Describe sends: metric name → its label
// names, constant and variable.
func Described(t testing.TB, c prometheus.Collector) map[string][]string {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	out := map[string][]string{}
	for d := range ch {
		s := d.String()
		m := descName.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("cannot read a name from %s", s)
		}
		labels := []string{}
		if l := descConst.FindStringSubmatch(s); l != nil {
			for _, x := range constName.FindAllStringSubmatch(l[1], -1) {
				labels = append(labels, x[1])
			}
		}
		if l := descLabels.FindStringSubmatch(s); l != nil && strings.TrimSpace(l[1]) != "" {
			for _, x := range strings.Split(l[1], ",") {
				labels = append(labels, strings.TrimSpace(x))
			}
		}
		out[m[1]] = labels
	}
	return out
}

// MatchDoc fails t unless the collectors describe exactly the metrics the
// section of the markdown file at path lists, with the same label names
// (in any order).
func MatchDoc(t testing.TB, path, heading string, cs ...prometheus.Collector) {
	t.Helper()
	doc := DocMetrics(t, path, heading)
	code := map[string][]string{}
	for _, c := range cs {
		for name, labels := range Described(t, c) {
			code[name] = labels
		}
	}
	for name, labels := range code {
		dl, ok := doc[name]
		if !ok {
			t.Errorf("%s exported but not in %s under %q", name, path, heading)
			continue
		}
		slices.Sort(dl)
		slices.Sort(labels)
		if !slices.Equal(dl, labels) {
			t.Errorf("%s: labels %v in the code, %v in %s", name, labels, dl, path)
		}
	}
	for name := range doc {
		if _, ok := code[name]; !ok {
			t.Errorf("%s listed in %s under %q but not exported", name, path, heading)
		}
	}
}
