package devserver

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
)

// ensureSearchAttributes adds the attributes in want that namespace lacks.
// New databases get them when the namespace is created; this covers
// attributes added to Options after the database already existed.
func ensureSearchAttributes(ctx context.Context, c client.Client, namespace string, want map[string]enumspb.IndexedValueType) error {
	if len(want) == 0 {
		return nil
	}
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("devserver: list search attributes of %q: %w", namespace, err)
	}
	missing, err := missingSearchAttributes(resp.GetCustomAttributes(), want)
	if err != nil || len(missing) == 0 {
		return err
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("devserver: add search attributes to %q: %w", namespace, err)
	}
	return nil
}

// missingSearchAttributes returns the entries of want absent from have, or
// an error when one exists with another type.
func missingSearchAttributes(have, want map[string]enumspb.IndexedValueType) (map[string]enumspb.IndexedValueType, error) {
	missing := make(map[string]enumspb.IndexedValueType)
	for name, typ := range want {
		existing, ok := have[name]
		if !ok {
			missing[name] = typ
			continue
		}
		if existing != typ {
			return nil, fmt.Errorf("devserver: search attribute %q exists as %s, want %s", name, existing, typ)
		}
	}
	return missing, nil
}
