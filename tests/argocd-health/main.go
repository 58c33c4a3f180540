// Command argocd-health runs a health check with Argo CD's own Lua engine
// (github.com/argoproj/argo-cd/v3/util/lua: gopher-lua with the libraries Argo CD opens),
// both ways Argo CD runs one:
//
//   - as a resource customization in argocd-cm, the way docs/gitops.md installs it: the
//     override is found by GetHealthScript and runs without the open libraries (only
//     package, base, table and Argo CD's safe os);
//   - as a built-in check of Argo CD's resource_customizations, which runs with every
//     gopher-lua library open, as Argo CD's own health tests run them.
//
// Both must give the same health.
//
// Usage:
//
//	argocd-health cases DIR   DIR holds health.lua, health_test.yaml and testdata/, the
//	                          layout of Argo CD's resource_customizations/<group>/<kind>;
//	                          every case must give its healthStatus (exit 1 otherwise)
//	argocd-health judge FILE  the health of each object of a JSON array on stdin, one
//	                          JSON line each: {"status": "...", "message": "..."}
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/gitops-engine/pkg/health"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// healthTest is one entry of health_test.yaml, as Argo CD's health tests read it.
type healthTest struct {
	InputPath    string              `json:"inputPath"`
	HealthStatus health.HealthStatus `json:"healthStatus"`
}

// evaluate gives the health of obj under script, as an argocd-cm customization and as a
// built-in check; it fails when the two disagree.
func evaluate(obj *unstructured.Unstructured, script string) (*health.HealthStatus, error) {
	key := lua.GetConfigMapKey(obj.GroupVersionKind())
	configured := lua.VM{ResourceOverrides: map[string]v1alpha1.ResourceOverride{
		key: {HealthLua: script},
	}}
	found, openLibs, err := configured.GetHealthScript(obj)
	if err != nil {
		return nil, fmt.Errorf("find the argocd-cm health script for %s: %w", key, err)
	}
	if found != script || openLibs {
		return nil, fmt.Errorf("argocd-cm override for %s not used as configured", key)
	}
	configured.UseOpenLibs = openLibs
	fromConfigMap, err := configured.ExecuteHealthLua(obj, found)
	if err != nil {
		return nil, fmt.Errorf("as an argocd-cm customization: %w", err)
	}
	builtIn, err := lua.VM{UseOpenLibs: true}.ExecuteHealthLua(obj, script)
	if err != nil {
		return nil, fmt.Errorf("as a built-in check: %w", err)
	}
	if *builtIn != *fromConfigMap {
		return nil, fmt.Errorf("argocd-cm gives %+v, built-in %+v", *fromConfigMap, *builtIn)
	}
	return fromConfigMap, nil
}

func readYAMLObject(path string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

func runCases(dir string) error {
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		return err
	}
	var suite struct {
		Tests []healthTest `json:"tests"`
	}
	if err := yaml.UnmarshalStrict(data, &suite); err != nil {
		return fmt.Errorf("health_test.yaml: %w", err)
	}
	if len(suite.Tests) == 0 {
		return fmt.Errorf("health_test.yaml has no tests")
	}
	failed := 0
	for _, tc := range suite.Tests {
		obj, err := readYAMLObject(filepath.Join(dir, tc.InputPath))
		if err != nil {
			return err
		}
		got, err := evaluate(obj, string(script))
		switch {
		case err != nil:
			fmt.Printf("FAIL %s: %v\n", tc.InputPath, err)
			failed++
		case *got != tc.HealthStatus:
			fmt.Printf("FAIL %s: got %+v, want %+v\n", tc.InputPath, *got, tc.HealthStatus)
			failed++
		default:
			fmt.Printf("ok   %s: %s\n", tc.InputPath, got.Status)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cases failed", failed, len(suite.Tests))
	}
	return nil
}

func judge(scriptPath string, in io.Reader) error {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
	}
	var objects []json.RawMessage
	if err := json.NewDecoder(in).Decode(&objects); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	out := json.NewEncoder(os.Stdout)
	for i, raw := range objects {
		// The unstructured decoder, as Argo CD's client-go decodes live objects.
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("objects[%d]: %w", i, err)
		}
		got, err := evaluate(obj, string(script))
		if err != nil {
			return fmt.Errorf("objects[%d]: %w", i, err)
		}
		if err := out.Encode(map[string]string{"status": string(got.Status), "message": got.Message}); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health cases DIR | judge FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "cases":
		err = runCases(os.Args[2])
	case "judge":
		err = judge(os.Args[2], os.Stdin)
	default:
		fmt.Fprintln(os.Stderr, "usage: argocd-health cases DIR | judge FILE")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(1)
	}
}
