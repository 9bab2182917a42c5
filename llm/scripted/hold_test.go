package scripted_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"codeswarm/llm"
	"codeswarm/llm/scripted"
)

// waitUntil polls cond every 5 ms for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHoldRelease: a request received while answers are held is recorded
// and listed by Held but not answered; Release answers it.
func TestHoldRelease(t *testing.T) {
	srv := start(t, scripted.Script{Planner: []scripted.Reply{{Content: "plan A"}}})
	srv.Hold()
	type answer struct {
		content string
		err     error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := client(srv).Chat(context.Background(), plannerRequest())
		if err != nil {
			done <- answer{err: err}
			return
		}
		done <- answer{content: resp.Choices[0].Message.Content}
	}()
	waitUntil(t, "the request to be held", func() bool { return slices.Equal(srv.Held(), []int{0}) })
	select {
	case a := <-done:
		t.Fatalf("answered while held: %+v", a)
	case <-time.After(200 * time.Millisecond):
	}
	if st := srv.Requests()[0].Status; st != 0 {
		t.Fatalf("held request recorded with status %d, want 0", st)
	}
	srv.Release()
	a := <-done
	if a.err != nil || a.content != "plan A" {
		t.Fatalf("after Release got %+v, want plan A", a)
	}
	if got := srv.Held(); len(got) != 0 {
		t.Errorf("Held after Release = %v", got)
	}
	waitUntil(t, "the handler to finish the request", func() bool { return srv.Requests()[0].Done })
	if st := srv.Requests()[0].Status; st != 200 {
		t.Errorf("status after Release %d, want 200", st)
	}
}

// TestHoldClientLeaves: a held request whose client gives up is dropped
// unanswered (status 0) and leaves Held, so a later Release answers
// nobody it should not.
func TestHoldClientLeaves(t *testing.T) {
	srv := start(t, scripted.Script{Planner: []scripted.Reply{{Content: "plan A"}}})
	srv.Hold()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := llm.New(llm.Options{BaseURL: srv.URL()}).Chat(ctx, plannerRequest())
		done <- err
	}()
	waitUntil(t, "the request to be held", func() bool { return len(srv.Held()) == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a held request whose client left was answered")
	}
	waitUntil(t, "the request to leave Held", func() bool { return len(srv.Held()) == 0 })
	waitUntil(t, "the handler to finish the request", func() bool { return srv.Requests()[0].Done })
	srv.Release()
	if st := srv.Requests()[0].Status; st != 0 {
		t.Errorf("status of the abandoned request %d, want 0 (never answered)", st)
	}
}
