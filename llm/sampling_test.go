package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/llm"
	"codeswarm/llm/scripted"
)

// sentFields decodes the top-level fields of every request the server got.
func sentFields(t *testing.T, srv *scripted.Server) []map[string]json.RawMessage {
	t.Helper()
	var out []map[string]json.RawMessage
	for _, r := range srv.Requests() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatalf("request body is not JSON: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func startScripted(t *testing.T, s scripted.Script) *scripted.Server {
	t.Helper()
	srv, err := scripted.Start(s)
	if err != nil {
		t.Fatalf("start scripted server: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func userRequest(model string) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{Model: model, Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "plan"}}}
}

func temp(v float32) *float32 { return &v }

func TestSamplingSentPerModelFamily(t *testing.T) {
	tests := []struct {
		model, reasoning string
		want, absent     []string
	}{
		{"gpt-4.1-mini", "", []string{`"temperature":0.7`, `"max_tokens":8192`}, []string{"max_completion_tokens"}},
		{"qwen2.5-coder", "auto", []string{`"temperature":0.7`, `"max_tokens":8192`}, []string{"max_completion_tokens"}},
		{"o3-mini", "auto", []string{`"max_completion_tokens":8192`}, []string{"temperature", "max_tokens"}},
		{"gpt-5", "", []string{`"max_completion_tokens":8192`}, []string{"temperature", "max_tokens"}},
		{"openai/o4-mini", "auto", []string{`"max_completion_tokens":8192`}, []string{"temperature", "max_tokens"}},
		{"my-deployment", "on", []string{`"max_completion_tokens":8192`}, []string{"temperature", "max_tokens"}},
	}
	for _, tc := range tests {
		t.Run(tc.model+"/"+tc.reasoning, func(t *testing.T) {
			srv := startScripted(t, scripted.Script{})
			c := llm.New(llm.Options{BaseURL: srv.URL(), Sampling: llm.Sampling{Temperature: temp(0.7), MaxTokens: 8192, Reasoning: tc.reasoning}})
			if _, err := c.Chat(context.Background(), userRequest(tc.model)); err != nil {
				t.Fatalf("Chat: %v", err)
			}
			body := string(srv.Requests()[0].Body)
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %s: %s", w, body)
				}
			}
			fields := sentFields(t, srv)[0]
			for _, a := range tc.absent {
				if _, ok := fields[a]; ok {
					t.Errorf("body has %s: %s", a, body)
				}
			}
		})
	}
}

func TestZeroTemperatureIsSent(t *testing.T) {
	srv := startScripted(t, scripted.Script{})
	c := llm.New(llm.Options{BaseURL: srv.URL(), Sampling: llm.Sampling{Temperature: temp(0)}})
	if _, err := c.Chat(context.Background(), userRequest("m")); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	var got struct{ Temperature *float64 }
	if err := json.Unmarshal(srv.Requests()[0].Body, &got); err != nil || got.Temperature == nil || *got.Temperature > 1e-6 {
		t.Fatalf("temperature 0 not sent as ~0: %s", srv.Requests()[0].Body)
	}
}

// A server that rejects parameters gets each rejected one dropped once,
// and the client remembers it for the model: the next request goes out
// right the first time.
func TestRejectedParamsFallBackOncePerModel(t *testing.T) {
	srv := startScripted(t, scripted.Script{RejectParams: []string{"temperature", "max_tokens"}})
	c := llm.New(llm.Options{BaseURL: srv.URL(), Sampling: llm.Sampling{Temperature: temp(0.7), MaxTokens: 4096, Reasoning: "off"}})
	for i := 0; i < 2; i++ {
		if _, err := c.Chat(context.Background(), userRequest("strict-model")); err != nil {
			t.Fatalf("Chat %d: %v", i, err)
		}
	}
	reqs := srv.Requests()
	statuses := []int{}
	for _, r := range reqs {
		statuses = append(statuses, r.Status)
	}
	want := []int{400, 400, 200, 200}
	if len(statuses) != len(want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	for i := range want {
		if statuses[i] != want[i] {
			t.Fatalf("statuses %v, want %v", statuses, want)
		}
	}
	last := sentFields(t, srv)[3]
	if _, ok := last["temperature"]; ok {
		t.Errorf("temperature still sent after a 400: %s", reqs[3].Body)
	}
	if string(last["max_completion_tokens"]) != "4096" {
		t.Errorf("max_tokens not replaced by max_completion_tokens: %s", reqs[3].Body)
	}
	// Another model is not affected by what strict-model taught.
	if _, err := c.Chat(context.Background(), userRequest("other-model")); err != nil {
		t.Fatalf("Chat other: %v", err)
	}
	if n := len(srv.Requests()); n != 7 {
		t.Fatalf("%d requests after a second model, want 7 (two more 400s, one 200)", n)
	}
}

// A reasoning model named as such by the setting "off" is still never
// failed: go-openai's local check and the server's 400 both lead to a
// corrected request.
func TestReasoningOffStillSucceedsForReasoningModel(t *testing.T) {
	srv := startScripted(t, scripted.Script{})
	c := llm.New(llm.Options{BaseURL: srv.URL(), Sampling: llm.Sampling{Temperature: temp(0.7), MaxTokens: 100, Reasoning: "off"}})
	if _, err := c.Chat(context.Background(), userRequest("o1-preview")); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	fields := sentFields(t, srv)
	if len(fields) != 1 {
		t.Fatalf("%d requests sent, want 1 (the local checks cost no request)", len(fields))
	}
	if _, ok := fields[0]["max_tokens"]; ok {
		t.Fatalf("max_tokens sent to o1: %s", srv.Requests()[0].Body)
	}
}

// A 400 that names no sampling parameter is not retried.
func TestOtherBadRequestIsNotRetried(t *testing.T) {
	srv := startScripted(t, scripted.Script{Default: &scripted.Reply{Faults: []scripted.Fault{{Status: http.StatusBadRequest}}}})
	c := llm.New(llm.Options{BaseURL: srv.URL(), Sampling: llm.Sampling{Temperature: temp(0.7), MaxTokens: 100}})
	req := userRequest("m")
	req.Tools = []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{Name: "read"}}}
	_, err := c.Chat(context.Background(), req)
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindBadRequest {
		t.Fatalf("err = %v, want a bad request", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestIdentityNamesEndpointAndSampling(t *testing.T) {
	t07, t0 := float32(0.7), float32(0)
	base := llm.New(llm.Options{BaseURL: "http://user:secret@a.example/v1", APIKey: "sk-key"}).Identity()
	if strings.Contains(base, "secret") || strings.Contains(base, "sk-key") {
		t.Fatalf("identity %q carries a credential", base)
	}
	if again := llm.New(llm.Options{BaseURL: "http://user:secret@a.example/v1/", APIKey: "sk-other"}).Identity(); again != base {
		t.Errorf("the same endpoint and sampling gave %q and %q", base, again)
	}
	for name, o := range map[string]llm.Options{
		"endpoint":      {BaseURL: "http://b.example/v1"},
		"temperature":   {BaseURL: "http://user:secret@a.example/v1", Sampling: llm.Sampling{Temperature: &t07}},
		"temperature 0": {BaseURL: "http://user:secret@a.example/v1", Sampling: llm.Sampling{Temperature: &t0}},
		"max tokens":    {BaseURL: "http://user:secret@a.example/v1", Sampling: llm.Sampling{MaxTokens: 100}},
		"reasoning":     {BaseURL: "http://user:secret@a.example/v1", Sampling: llm.Sampling{Reasoning: llm.ReasoningOn}},
	} {
		if id := llm.New(o).Identity(); id == base {
			t.Errorf("a different %s gave the same identity %q", name, id)
		}
	}
	var none *llm.Client
	if none.Identity() != "" {
		t.Error("a nil client has an identity")
	}
}
