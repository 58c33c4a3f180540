// Command promql-check checks the operator's monitoring files with Prometheus's own code:
// alerting rules with the rule-file loader Prometheus itself uses (model/rulefmt: YAML
// shape, durations, label names, annotation templates and every PromQL expression), and
// the expressions of a Grafana dashboard with the PromQL parser. For every expression it
// prints the metric names it selects, so a test can compare them with what the operator
// exports.
//
// It also evaluates rules over synthetic series with Prometheus's rule manager and PromQL
// engine (unittest.go), from a test file in the format of `promtool test rules`.
//
// Usage:
//
//	promql-check rules FILE             a rule file: the `groups:` of a PrometheusRule spec
//	promql-check dashboard FILE         a Grafana dashboard (JSON)
//	promql-check test FILE [RULES...]   the tests of FILE against RULES (default: the
//	                                    file's rule_files)
//
// Output on stdout, when everything parses:
//
//	{"expressions": [{"where": "...", "expr": "...", "metrics": ["name", ...],
//	                  "selectors": [{"metric": "name", "labels": ["label", ...]}]}]}
//
// `labels` are the label names a selector matches on (besides the metric name). For
// `test`, when every check passes:
//
//	{"tests": [{"name": "...", "alert_checks": N, "expr_checks": N}]}
//
// Otherwise each problem goes to stderr and the exit status is 1 (2 for bad usage).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

type expression struct {
	Where     string     `json:"where"`
	Expr      string     `json:"expr"`
	Metrics   []string   `json:"metrics"`
	Selectors []selector `json:"selectors"`
}

type selector struct {
	Metric string   `json:"metric"`
	Labels []string `json:"labels"`
}

type report struct {
	Expressions []expression `json:"expressions"`
}

var promql = parser.NewParser(parser.Options{})

const usage = "usage: promql-check rules|dashboard FILE, or promql-check test FILE [RULES...]"

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "test" {
		outcomes, errs := runTests(os.Args[2], os.Args[3:])
		finish(errs, map[string]any{"tests": outcomes})
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var (
		found []expression
		errs  []error
	)
	switch os.Args[1] {
	case "rules":
		found, errs = checkRules(os.Args[2])
	case "dashboard":
		found, errs = checkDashboard(os.Args[2])
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q; %s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if len(found) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no expressions found", os.Args[2]))
	}
	finish(errs, report{Expressions: found})
}

// finish prints the errors and exits 1, or prints the report.
func finish(errs []error, result any) {
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(result); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// checkRules loads the file as Prometheus does (unknown fields are errors) and reports
// the expression of every rule.
func checkRules(file string) ([]expression, []error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, promql, logger)
	if len(errs) > 0 {
		return nil, errs
	}
	var found []expression
	for _, group := range groups.Groups {
		for _, rule := range group.Rules {
			name := rule.Alert
			if name == "" {
				name = rule.Record
			}
			where := fmt.Sprintf("group %s, rule %s", group.Name, name)
			e, err := inspect(rule.Expr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			e.Where, e.Expr = where, rule.Expr
			found = append(found, e)
		}
	}
	return found, errs
}

// checkDashboard parses every query of a dashboard: each target's `expr`, and the
// Prometheus queries of template variables. Grafana's variables are replaced first by
// values of the right kind (a duration for the interval ones, a plain word otherwise),
// as Grafana does before it sends a query.
func checkDashboard(file string) ([]expression, []error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, []error{err}
	}
	var dashboard map[string]any
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		return nil, []error{fmt.Errorf("%s: not JSON: %w", file, err)}
	}
	var (
		found []expression
		errs  []error
	)
	add := func(where, query string) {
		e, err := inspect(substitute(query))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %q: %w", file, where, query, err))
			return
		}
		e.Where, e.Expr = where, query
		found = append(found, e)
	}
	var walk func(where string, node any)
	walk = func(where string, node any) {
		switch v := node.(type) {
		case map[string]any:
			title, _ := v["title"].(string)
			if title != "" {
				where = fmt.Sprintf("%s/%s", where, title)
			}
			if expr, ok := v["expr"].(string); ok {
				refID, _ := v["refId"].(string)
				add(fmt.Sprintf("%s[%s]", where, refID), expr)
			}
			for key, child := range v {
				if key != "templating" {
					walk(where, child)
				}
			}
		case []any:
			for _, child := range v {
				walk(where, child)
			}
		}
	}
	walk("panels", dashboard["panels"])
	templating, _ := dashboard["templating"].(map[string]any)
	variables, _ := templating["list"].([]any)
	for _, item := range variables {
		variable, _ := item.(map[string]any)
		if variable["type"] != "query" {
			continue
		}
		name, _ := variable["name"].(string)
		query, _ := variable["query"].(string)
		if object, ok := variable["query"].(map[string]any); ok {
			query, _ = object["query"].(string)
		}
		if query == "" {
			errs = append(errs, fmt.Errorf("%s: variable %s has no query", file, name))
			continue
		}
		expr, err := variableExpr(query)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: variable %s: %w", file, name, err))
			continue
		}
		add("variable "+name, expr)
	}
	return found, errs
}

var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)
var queryResult = regexp.MustCompile(`^\s*query_result\(\s*(.*)\s*\)\s*$`)

// variableExpr is the PromQL inside a Grafana Prometheus variable query.
func variableExpr(query string) (string, error) {
	if m := labelValues.FindStringSubmatch(query); m != nil {
		return m[1], nil
	}
	if m := queryResult.FindStringSubmatch(query); m != nil {
		return m[1], nil
	}
	return "", fmt.Errorf("query %q is neither label_values(selector, label) nor query_result(expr)", query)
}

var (
	intervalVariable = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?`)
	otherVariable    = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z_][A-Za-z0-9_]*\]\]`)
)

func substitute(query string) string {
	query = intervalVariable.ReplaceAllString(query, "5m")
	return otherVariable.ReplaceAllString(query, "value")
}

// inspect parses one expression and returns the metric names it selects, sorted, and
// each selector with the label names it matches on. A selector without a metric name is
// an error: the test could not tell what it reads.
func inspect(expr string) (expression, error) {
	node, err := promql.ParseExpr(expr)
	if err != nil {
		return expression{}, err
	}
	names := map[string]bool{}
	var (
		selectors []selector
		unnamed   []string
	)
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		sel := selector{Metric: vs.Name, Labels: []string{}}
		for _, m := range vs.LabelMatchers {
			switch {
			case m.Name == labels.MetricName && m.Type == labels.MatchEqual:
				sel.Metric = m.Value
			case m.Name != labels.MetricName:
				sel.Labels = append(sel.Labels, m.Name)
			}
		}
		if sel.Metric == "" {
			unnamed = append(unnamed, vs.String())
			return nil
		}
		sort.Strings(sel.Labels)
		names[sel.Metric] = true
		selectors = append(selectors, sel)
		return nil
	})
	if len(unnamed) > 0 {
		return expression{}, errors.New("selectors without a metric name: " + strings.Join(unnamed, ", "))
	}
	metrics := make([]string, 0, len(names))
	for name := range names {
		metrics = append(metrics, name)
	}
	sort.Strings(metrics)
	return expression{Metrics: metrics, Selectors: selectors}, nil
}
