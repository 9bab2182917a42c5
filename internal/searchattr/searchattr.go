// Package searchattr registers and checks the search attributes codeswarm
// sets on every run (control.SearchAttributeTypes) on a Temporal cluster.
// It links only the SDK, so the worker binary can use it.
package searchattr

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"codeswarm/control"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
)

// Ensure adds the run's search attributes that namespace lacks; with all
// present it changes nothing, so every CLI and worker start may call it.
// An attribute that exists with another type is an error: runs would fail
// to upsert it.
func Ensure(ctx context.Context, c client.Client, namespace string) error {
	missing, err := Missing(ctx, c, namespace)
	if err != nil || len(missing) == 0 {
		return err
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("add search attributes %s to namespace %q: %w", names(missing), namespace, err)
	}
	return nil
}

// Missing lists the run's search attributes namespace lacks.
func Missing(ctx context.Context, c client.Client, namespace string) (map[string]enumspb.IndexedValueType, error) {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list search attributes of namespace %q: %w", namespace, err)
	}
	return missingOf(resp.GetCustomAttributes(), control.SearchAttributeTypes())
}

func missingOf(have, want map[string]enumspb.IndexedValueType) (map[string]enumspb.IndexedValueType, error) {
	missing := make(map[string]enumspb.IndexedValueType)
	for name, typ := range want {
		got, ok := have[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return nil, fmt.Errorf("search attribute %s exists as %s, codeswarm needs %s", name, got, typ)
		}
	}
	return missing, nil
}

// Hint is what an operator runs to add the attributes by hand.
func Hint(namespace string) string {
	want := control.SearchAttributeTypes()
	var b strings.Builder
	for _, n := range sortedNames(want) {
		fmt.Fprintf(&b, " --name %s --type %s", n, cliType(want[n]))
	}
	return fmt.Sprintf("temporal operator search-attribute create --namespace %s%s", namespace, b.String())
}

// cliType is an index type as the temporal CLI spells it.
func cliType(t enumspb.IndexedValueType) string {
	s := strings.ToLower(strings.TrimPrefix(t.String(), "INDEXED_VALUE_TYPE_"))
	return strings.ToUpper(s[:1]) + s[1:]
}

func names(m map[string]enumspb.IndexedValueType) string {
	return strings.Join(sortedNames(m), ", ")
}

func sortedNames(m map[string]enumspb.IndexedValueType) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
