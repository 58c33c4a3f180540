// Command flux-cel evaluates Flux Kustomization healthCheckExprs on objects the way Flux's
// kustomize-controller does (fluxcd/pkg runtime/cel: the same CEL environment options,
// expressions parsed without declarations and evaluated with the object's top-level fields
// as variables; a status whose observedGeneration differs from metadata.generation is
// InProgress before any expression runs; then inProgress, failed and current, in that
// order, the first true one wins; none true is InProgress).
//
// Input on stdin: {"current": "...", "failed": "...", "inProgress": "...", "objects": [...]}
// Output: one line per object: Current, Failed, InProgress, or "error: ...".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

type input struct {
	Current    string           `json:"current"`
	Failed     string           `json:"failed"`
	InProgress string           `json:"inProgress"`
	Objects    []map[string]any `json:"objects"`
}

func program(expr string) (cel.Program, error) {
	env, err := cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	)
	if err != nil {
		return nil, err
	}
	ast, issues := env.Parse(expr)
	if issues != nil && issues.Err() != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, issues.Err())
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(100))
}

func nestedInt(obj map[string]any, outer, inner string) (int64, bool) {
	m, ok := obj[outer].(map[string]any)
	if !ok {
		return 0, false
	}
	v, ok := m[inner].(int64)
	return v, ok
}

func evaluate(in input, obj map[string]any) (string, error) {
	if observed, ok := nestedInt(obj, "status", "observedGeneration"); ok {
		if generation, ok := nestedInt(obj, "metadata", "generation"); ok && observed != generation {
			return "InProgress", nil
		}
	}
	for _, step := range []struct{ expr, status string }{
		{in.InProgress, "InProgress"},
		{in.Failed, "Failed"},
		{in.Current, "Current"},
	} {
		if step.expr == "" {
			continue
		}
		prg, err := program(step.expr)
		if err != nil {
			return "", err
		}
		val, _, err := prg.Eval(obj)
		if err != nil {
			return "", fmt.Errorf("evaluate %q: %w", step.expr, err)
		}
		b, ok := val.(types.Bool)
		if !ok {
			return "", fmt.Errorf("%q is not a boolean", step.expr)
		}
		if b {
			return step.status, nil
		}
	}
	return "InProgress", nil
}

// normalize turns whole JSON numbers into int64, as Kubernetes' unstructured objects hold them.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x)
		}
	case []any:
		for i, x := range t {
			t[i] = normalize(x)
		}
	case float64:
		if t == float64(int64(t)) {
			return int64(t)
		}
	}
	return v
}

func main() {
	var in input
	if err := json.NewDecoder(bufio.NewReader(os.Stdin)).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "flux-cel: bad input:", err)
		os.Exit(2)
	}
	if in.Current == "" {
		fmt.Fprintln(os.Stderr, "flux-cel: current is required (as in Flux)")
		os.Exit(2)
	}
	for _, obj := range in.Objects {
		obj = normalize(obj).(map[string]any)
		status, err := evaluate(in, obj)
		if err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		fmt.Println(status)
	}
}
