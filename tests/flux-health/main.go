// Command flux-health judges objects the two ways Flux's kustomize-controller can, with
// Flux's own packages:
//
//   - kstatus, Flux's default health check (no healthCheckExprs): status.Compute of
//     github.com/fluxcd/cli-utils, the kstatus fork Flux builds with, and of
//     sigs.k8s.io/cli-utils, the upstream kstatus the fork follows; both must agree.
//   - healthCheckExprs: the CEL status reader of github.com/fluxcd/pkg/runtime/cel, the
//     package kustomize-controller builds its custom health checks with, reading each
//     object as the health-check poller does (ReadStatusForObject). An expression that
//     cannot be evaluated gives the Unknown status, which Flux keeps waiting on.
//
// Input on stdin: {"healthCheckExprs": [<the entries of a Kustomization's
// spec.healthCheckExprs>], "objects": [...]}
// Output: one JSON line per object: {"kstatus": "...", "exprs": "...", "message": "..."}
// with kstatus statuses (Current, InProgress, Failed, Unknown, ...).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"

	fluxkstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type input struct {
	HealthCheckExprs []kustomize.CustomHealthCheck `json:"healthCheckExprs"`
	Objects          []json.RawMessage             `json:"objects"`
}

type verdict struct {
	Kstatus string `json:"kstatus"`
	Exprs   string `json:"exprs"`
	Message string `json:"message"`
}

// defaultHealth is what kstatus says without healthCheckExprs, checked to be the same in
// Flux's fork and upstream.
func defaultHealth(u *unstructured.Unstructured) (string, error) {
	flux, err := fluxkstatus.Compute(u)
	if err != nil {
		return "", fmt.Errorf("fluxcd/cli-utils kstatus: %w", err)
	}
	upstream, err := kstatus.Compute(u.DeepCopy())
	if err != nil {
		return "", fmt.Errorf("sigs.k8s.io/cli-utils kstatus: %w", err)
	}
	if string(flux.Status) != string(upstream.Status) {
		return "", fmt.Errorf("kstatus disagrees: fluxcd/cli-utils says %s, sigs.k8s.io/cli-utils %s",
			flux.Status, upstream.Status)
	}
	return string(flux.Status), nil
}

func judge(ctx context.Context, in input, raw json.RawMessage) (verdict, error) {
	u := &unstructured.Unstructured{}
	// The unstructured decoder, as client-go decodes API responses: whole numbers are int64.
	if err := u.UnmarshalJSON(raw); err != nil {
		return verdict{}, fmt.Errorf("object: %w", err)
	}
	var v verdict
	var err error
	if v.Kstatus, err = defaultHealth(u); err != nil {
		return verdict{}, err
	}
	newReader, err := cel.NewStatusReader(in.HealthCheckExprs)
	if err != nil {
		return verdict{}, fmt.Errorf("healthCheckExprs: %w", err)
	}
	// The reader judges the object it is given; it needs neither a RESTMapper nor a
	// cluster reader for that.
	res, err := newReader(nil).ReadStatusForObject(ctx, nil, u)
	if err != nil {
		return verdict{}, fmt.Errorf("read status: %w", err)
	}
	v.Exprs = string(res.Status)
	v.Message = res.Message
	if res.Error != nil {
		v.Message = res.Error.Error()
	}
	return v, nil
}

func main() {
	var in input
	if err := json.NewDecoder(bufio.NewReader(os.Stdin)).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "flux-health: bad input:", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for i, raw := range in.Objects {
		v, err := judge(context.Background(), in, raw)
		if err != nil {
			fmt.Fprintf(os.Stderr, "flux-health: objects[%d]: %v\n", i, err)
			os.Exit(1)
		}
		if err := out.Encode(v); err != nil {
			fmt.Fprintln(os.Stderr, "flux-health:", err)
			os.Exit(1)
		}
	}
}
