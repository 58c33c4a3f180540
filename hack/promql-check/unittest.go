// The `test` mode: evaluates alerting rules over synthetic series with Prometheus's own
// rule manager and PromQL engine, as `promtool test rules` does, from a test file in
// promtool's format, so that the same file also runs under promtool. Supported: rule_files,
// evaluation_interval, and per test name, interval, input_series, alert_rule_test and
// promql_expr_test (float samples). Anything else in the file is an error.

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

	"github.com/prometheus/prometheus/model/labels"
	engine "github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

type unitTestFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval,omitempty"`
	Tests              []testGroup    `yaml:"tests"`
}

type testGroup struct {
	Name            string          `yaml:"name,omitempty"`
	Interval        model.Duration  `yaml:"interval"`
	InputSeries     []inputSeries   `yaml:"input_series"`
	AlertRuleTests  []alertTestCase `yaml:"alert_rule_test,omitempty"`
	PromqlExprTests []exprTestCase  `yaml:"promql_expr_test,omitempty"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertTestCase struct {
	EvalTime  model.Duration `yaml:"eval_time"`
	Alertname string         `yaml:"alertname"`
	ExpAlerts []expAlert     `yaml:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

type exprTestCase struct {
	Expr       string         `yaml:"expr"`
	EvalTime   model.Duration `yaml:"eval_time"`
	ExpSamples []expSample    `yaml:"exp_samples"`
}

type expSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// testOutcome is what the report says of one test: how many alert and expression checks
// passed, so that a caller can tell a file that checked something from one that did not.
type testOutcome struct {
	Name   string `json:"name"`
	Alerts int    `json:"alert_checks"`
	Exprs  int    `json:"expr_checks"`
}

// runTests runs every test of the file against ruleFiles, or against the file's own
// rule_files (relative to it) when none are given.
func runTests(file string, ruleFiles []string) ([]testOutcome, []error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, []error{err}
	}
	var spec unitTestFile
	if err := yaml.UnmarshalStrict(raw, &spec); err != nil {
		return nil, []error{fmt.Errorf("%s: %w", file, err)}
	}
	if len(ruleFiles) == 0 {
		for _, rf := range spec.RuleFiles {
			if !filepath.IsAbs(rf) {
				rf = filepath.Join(filepath.Dir(file), rf)
			}
			ruleFiles = append(ruleFiles, rf)
		}
	}
	if len(ruleFiles) == 0 {
		return nil, []error{fmt.Errorf("%s: no rule files", file)}
	}
	if len(spec.Tests) == 0 {
		return nil, []error{fmt.Errorf("%s: no tests", file)}
	}
	evalInterval := time.Duration(spec.EvaluationInterval)
	if evalInterval == 0 {
		evalInterval = time.Minute
	}
	var (
		outcomes []testOutcome
		errs     []error
	)
	for i, tg := range spec.Tests {
		if tg.Name == "" {
			tg.Name = fmt.Sprintf("test #%d", i)
		}
		if tg.Interval == 0 {
			tg.Interval = model.Duration(evalInterval)
		}
		outcome, testErrs := tg.run(evalInterval, ruleFiles)
		for _, e := range testErrs {
			errs = append(errs, fmt.Errorf("%s: %s: %w", file, tg.Name, e))
		}
		outcomes = append(outcomes, outcome)
	}
	return outcomes, errs
}

// run loads the input series, evaluates every rule group from time 0 to the last eval_time
// at evalInterval (so that `for` is honoured), compares the firing alerts at each
// eval_time, then runs the expression tests.
func (tg testGroup) run(evalInterval time.Duration, ruleFiles []string) (testOutcome, []error) {
	outcome := testOutcome{Name: tg.Name}
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", tg.Interval)
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               promql,
	})
	if err != nil {
		return outcome, []error{err}
	}
	defer suite.Close()
	suite.SubqueryInterval = evalInterval

	manager := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Parser:       promql,
	})
	loaded, errs := manager.LoadGroups(time.Duration(tg.Interval), labels.EmptyLabels(), "", nil, false, ruleFiles...)
	if len(errs) > 0 {
		return outcome, errs
	}
	groups := make([]*rules.Group, 0, len(loaded))
	for _, g := range loaded {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name() < groups[j].Name() })
	known := map[string]bool{}
	for _, g := range groups {
		for _, r := range g.Rules() {
			if alerting, ok := r.(*rules.AlertingRule); ok {
				// As after a restart that restored nothing: ALERTS series are written.
				alerting.SetRestored(true)
				known[alerting.Name()] = true
			}
		}
	}
	for _, at := range tg.AlertRuleTests {
		if !known[at.Alertname] {
			errs = append(errs, fmt.Errorf("alert_rule_test at %s: no alerting rule %q", at.EvalTime, at.Alertname))
		}
	}
	if len(errs) > 0 {
		return outcome, errs
	}

	byTime := map[time.Duration][]alertTestCase{}
	var checkTimes []time.Duration
	var last time.Duration
	for _, at := range tg.AlertRuleTests {
		t := time.Duration(at.EvalTime)
		if _, ok := byTime[t]; !ok {
			checkTimes = append(checkTimes, t)
		}
		byTime[t] = append(byTime[t], at)
		last = max(last, t)
	}
	for _, et := range tg.PromqlExprTests {
		last = max(last, time.Duration(et.EvalTime))
	}
	slices.Sort(checkTimes)

	start := time.Unix(0, 0).UTC()
	next := 0
	for ts := start; !ts.After(start.Add(last)); ts = ts.Add(evalInterval) {
		var evalErrs []error
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				evalErrs = append(evalErrs, err)
				return
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						evalErrs = append(evalErrs, fmt.Errorf("rule %s at %s: %w", r.Name(), ts.Sub(start), r.LastError()))
					}
				}
			}
		})
		if len(evalErrs) > 0 {
			return outcome, evalErrs
		}
		// An eval_time between two evaluations is checked against the earlier one.
		for next < len(checkTimes) && checkTimes[next] < ts.Add(evalInterval).Sub(start) {
			for _, at := range byTime[checkTimes[next]] {
				if err := checkAlerts(groups, at); err != nil {
					errs = append(errs, err)
				} else {
					outcome.Alerts++
				}
			}
			next++
		}
	}

	for _, et := range tg.PromqlExprTests {
		if err := checkExpr(suite, start, et); err != nil {
			errs = append(errs, err)
		} else {
			outcome.Exprs++
		}
	}
	return outcome, errs
}

// firing is one alert as compared: its labels and annotations, each as sorted key=value.
type firing struct {
	labels, annotations string
}

func (f firing) String() string {
	return fmt.Sprintf("labels %s, annotations %s", f.labels, f.annotations)
}

func checkAlerts(groups []*rules.Group, at alertTestCase) error {
	var got []firing
	for _, g := range groups {
		for _, r := range g.Rules() {
			alerting, ok := r.(*rules.AlertingRule)
			if !ok || alerting.Name() != at.Alertname {
				continue
			}
			for _, a := range alerting.ActiveAlerts() {
				if a.State == rules.StateFiring {
					got = append(got, firing{a.Labels.String(), a.Annotations.String()})
				}
			}
		}
	}
	var want []firing
	for _, a := range at.ExpAlerts {
		// Prometheus adds the alert's name to its labels; the test gives the others.
		exp := map[string]string{labels.AlertName: at.Alertname}
		for k, v := range a.ExpLabels {
			exp[k] = v
		}
		want = append(want, firing{labels.FromMap(exp).String(), labels.FromMap(a.ExpAnnotations).String()})
	}
	order := func(fs []firing) {
		sort.Slice(fs, func(i, j int) bool { return fs[i].String() < fs[j].String() })
	}
	order(got)
	order(want)
	if slices.Equal(got, want) {
		return nil
	}
	return fmt.Errorf("alert %s at %s:\n  want %s\n  got  %s", at.Alertname, at.EvalTime, describe(want), describe(got))
}

func describe(fs []firing) string {
	if len(fs) == 0 {
		return "no firing alert"
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return strings.Join(parts, "\n       ")
}

func checkExpr(suite *promqltest.LazyLoader, start time.Time, et exprTestCase) error {
	at := start.Add(time.Duration(et.EvalTime))
	q, err := suite.QueryEngine().NewInstantQuery(suite.Context(), suite.Queryable(), nil, et.Expr, at)
	if err != nil {
		return fmt.Errorf("expr %q at %s: %w", et.Expr, et.EvalTime, err)
	}
	defer q.Close()
	res := q.Exec(suite.Context())
	if res.Err != nil {
		return fmt.Errorf("expr %q at %s: %w", et.Expr, et.EvalTime, res.Err)
	}
	var got []string
	switch v := res.Value.(type) {
	case engine.Vector:
		for _, s := range v {
			if s.H != nil {
				return fmt.Errorf("expr %q at %s: a histogram sample, which this checker does not compare", et.Expr, et.EvalTime)
			}
			got = append(got, sampleString(s.Metric, s.F))
		}
	case engine.Scalar:
		got = append(got, sampleString(labels.EmptyLabels(), v.V))
	default:
		return fmt.Errorf("expr %q at %s: a %s, not a vector or scalar", et.Expr, et.EvalTime, res.Value.Type())
	}
	var want []string
	for _, s := range et.ExpSamples {
		metric, err := promql.ParseMetric(s.Labels)
		if err != nil {
			return fmt.Errorf("expr %q at %s: labels %q: %w", et.Expr, et.EvalTime, s.Labels, err)
		}
		want = append(want, sampleString(metric, s.Value))
	}
	slices.Sort(got)
	slices.Sort(want)
	if slices.Equal(got, want) {
		return nil
	}
	return fmt.Errorf("expr %q at %s:\n  want %v\n  got  %v", et.Expr, et.EvalTime, want, got)
}

// sampleString prints a sample so that samples equal to six significant digits print
// alike (an expected value written in a test is rarely the float the engine computes).
func sampleString(metric labels.Labels, v float64) string {
	if math.IsNaN(v) {
		return metric.String() + " NaN"
	}
	return fmt.Sprintf("%s %.6g", metric.String(), v)
}
