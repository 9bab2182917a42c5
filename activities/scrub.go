package activities

import (
	"context"
	"errors"
	"reflect"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"codeswarm/control"
	"codeswarm/internal/secret"
)

// scrub removes the configured secrets (and their encodings) from s.
func (a *Activities) scrub(s string) string {
	return a.Secrets.Scrub(s)
}

// scrubShare removes secrets from everything a swarm_share call sends to the
// parent workflow, whose history would keep them. The redaction marker has
// no quote or backslash, so a JSON value stays JSON.
func (a *Activities) scrubShare(r control.ShareRequest) control.ShareRequest {
	r.Key, r.Value, r.Prefix = a.scrub(r.Key), a.scrub(r.Value), a.scrub(r.Prefix)
	if r.Tags != nil {
		tags := make([]string, len(r.Tags))
		for i, t := range r.Tags {
			tags[i] = a.scrub(t)
		}
		r.Tags = tags
	}
	return r
}

// ScrubErrors returns a worker interceptor that removes secrets from every
// activity error before the SDK records it in the workflow's history: git,
// tool and model errors can quote a secret. (A function, not a method:
// every exported method of Activities is registered as an activity.)
func ScrubErrors(s *secret.Scrubber) interceptor.WorkerInterceptor {
	return &scrubInterceptor{s: s}
}

type scrubInterceptor struct {
	interceptor.WorkerInterceptorBase
	s *secret.Scrubber
}

func (w *scrubInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &scrubActivity{s: w.s}
	i.Next = next
	return i
}

type scrubActivity struct {
	interceptor.ActivityInboundInterceptorBase
	s *secret.Scrubber
}

func (i *scrubActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := i.Next.ExecuteActivity(ctx, in)
	return res, scrubError(i.s, err)
}

// scrubError returns err itself when its text holds no secret. Otherwise it
// returns an application error with the scrubbed text that keeps what
// workflows act on: the error type and whether (and when) to retry. The
// cause chain is folded into the message, since its parts may quote the
// secret too.
func scrubError(s *secret.Scrubber, err error) error {
	if err == nil || s.Empty() {
		return err
	}
	msg := err.Error()
	var app *temporal.ApplicationError
	isApp := errors.As(err, &app)
	if isApp && app == err { // Error() would add "(type: …, retryable: …)"
		msg = app.Message()
		if c := app.Unwrap(); c != nil {
			msg += ": " + c.Error()
		}
	}
	clean := s.Scrub(msg)
	if clean == msg {
		return err
	}
	if !isApp {
		return temporal.NewApplicationError(clean, errTypeName(err))
	}
	return temporal.NewApplicationErrorWithOptions(clean, app.Type(), temporal.ApplicationErrorOptions{
		NonRetryable:   app.NonRetryable(),
		NextRetryDelay: app.NextRetryDelay(),
	})
}

// errTypeName names err's type as the SDK does for a plain Go error, so a
// scrubbed error carries the type it would have had.
func errTypeName(err error) string {
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
