// Command monitoringcheck checks config/monitoring: the PrometheusRule and ServiceMonitor decode
// strictly into the Prometheus operator's own types (no unknown field, every type right), each
// alert's `for` is a Prometheus duration, and every expression of the rules and every query of the
// Grafana dashboard parses with Prometheus' own PromQL parser. It prints the metric names those
// expressions select, one a line: the operator's envtest suite checks that its registry exports
// each of them. Its own module, so that Prometheus' dependencies stay out of the operator's.
//
// Usage: go run . DIR
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// The files of config/monitoring.
const (
	ruleFile           = "prometheus_rule.yaml"
	serviceMonitorFile = "service_monitor.yaml"
	dashboardFile      = "grafana_dashboard.json"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: monitoringcheck DIR")
		os.Exit(2)
	}
	names, err := Check(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, n := range names {
		fmt.Println(n)
	}
}

// query is one PromQL expression and where it is written.
type query struct{ where, expr string }

// Check checks the monitoring files of dir and returns the metric names their expressions
// select, sorted.
func Check(dir string) ([]string, error) {
	queries, err := ruleQueries(filepath.Join(dir, ruleFile))
	if err != nil {
		return nil, err
	}
	if err := decodeStrict(filepath.Join(dir, serviceMonitorFile), &monitoringv1.ServiceMonitor{}); err != nil {
		return nil, err
	}
	dashboard, err := dashboardQueries(filepath.Join(dir, dashboardFile))
	if err != nil {
		return nil, err
	}
	queries = append(queries, dashboard...)
	p := parser.NewParser(parser.Options{})
	seen := map[string]bool{}
	var errs []error
	for _, q := range queries {
		expr, err := p.ParseExpr(q.expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q does not parse: %w", q.where, q.expr, err))
			continue
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if name == "" {
				errs = append(errs, fmt.Errorf("%s: %s selects no one metric by name", q.where, vs))
				return nil
			}
			seen[name] = true
			return nil
		})
	}
	if len(queries) == 0 {
		errs = append(errs, fmt.Errorf("%s: no expression found", dir))
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, errors.Join(errs...)
}

func decodeStrict(path string, into any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(raw, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ruleQueries are the expressions of the PrometheusRule at path; each alert's `for` must parse
// as a Prometheus duration.
func ruleQueries(path string) ([]query, error) {
	rule := &monitoringv1.PrometheusRule{}
	if err := decodeStrict(path, rule); err != nil {
		return nil, err
	}
	if rule.Kind != monitoringv1.PrometheusRuleKind || rule.APIVersion != monitoringv1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("%s: kind %s %s, want %s %s", path, rule.APIVersion, rule.Kind, monitoringv1.SchemeGroupVersion, monitoringv1.PrometheusRuleKind)
	}
	var queries []query
	var errs []error
	for _, g := range rule.Spec.Groups {
		for i, r := range g.Rules {
			where := fmt.Sprintf("%s: group %s, rule %d (%s%s)", path, g.Name, i, r.Alert, r.Record)
			if r.Alert == "" && r.Record == "" {
				errs = append(errs, fmt.Errorf("%s: neither alert nor record", where))
			}
			if r.For != nil {
				if _, err := model.ParseDuration(string(*r.For)); err != nil {
					errs = append(errs, fmt.Errorf("%s: for: %w", where, err))
				}
			}
			queries = append(queries, query{where: where, expr: r.Expr.String()})
		}
	}
	return queries, errors.Join(errs...)
}

// dashboardQueries are the expressions of every panel target of the Grafana dashboard at path,
// rows' panels included.
func dashboardQueries(path string) ([]query, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dashboard struct {
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var queries []query
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			for _, t := range p.Targets {
				queries = append(queries, query{where: fmt.Sprintf("%s: panel %q, target %s", path, p.Title, t.RefID), expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dashboard.Panels)
	if slices.ContainsFunc(queries, func(q query) bool { return q.expr == "" }) {
		return nil, fmt.Errorf("%s: a target has no expr", path)
	}
	return queries, nil
}

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}
