package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"

	"codeswarm/internal/cli"
	"codeswarm/internal/codec"
	"codeswarm/llm/scripted"
)

// TestEncryptedPayloads: with codec.key set, what Temporal stores is
// ciphertext, and the CLI (which has the key) still reads the result.
func TestEncryptedPayloads(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	t.Setenv("CODESWARM_CODEC_KEY", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	code, res := h.runJSON("run", "--repo", repo, "--task", scripted.DemoTask, "--id", "codec-demo")
	if code != 0 || !res.Success {
		t.Fatalf("encrypted run failed (exit %d):\n%s\n%s", code, fmtResult(res), tail(h.logs.String(), 3000))
	}
	hists := exportHistories(t, h.client) // a client without the key sees raw payloads
	if len(hists) < 4 {
		t.Fatalf("want the parent and 3 children, got %d histories", len(hists))
	}
	// Distinctive plain text that would be in inputs and results.
	// "In greet/greet.go rename Hello" is a subtask's instruction, which its
	// child's static summary (user metadata) repeats; "read greet/greet.go"
	// is an activity summary.
	for _, plain := range []string{"Rename greet.Hello", "Renamed greet.Hello", "STATUS", repo, "In greet/greet.go rename Hello", "read greet/greet.go"} {
		b64 := base64.StdEncoding.EncodeToString([]byte(plain))
		for id, hist := range hists {
			if strings.Contains(hist, plain) || strings.Contains(hist, b64[:len(b64)-4]) {
				t.Errorf("history %s holds %q in clear", id, plain)
			}
		}
	}
	for id, hist := range hists {
		if !strings.Contains(hist, base64.StdEncoding.EncodeToString([]byte("binary/encrypted"))) {
			t.Errorf("history %s has no encrypted payloads", id)
		}
	}
	// User metadata (the Web UI's summaries) is encrypted like any payload.
	summaries := 0
	for _, id := range []string{"codec-demo", "codec-demo.01-rename-greet"} {
		for _, ev := range history(t, h.client, id, "").GetEvents() {
			s := ev.GetUserMetadata().GetSummary()
			if s != nil {
				summaries++
			}
			if s != nil && string(s.GetMetadata()["encoding"]) != "binary/encrypted" {
				t.Errorf("%s event %d (%s): summary encoded %q, want binary/encrypted", id, ev.GetEventId(), ev.GetEventType(), s.GetMetadata()["encoding"])
			}
		}
	}
	if summaries < 10 {
		t.Errorf("%d events with a summary; want the start, the child and every activity", summaries)
	}
	// Memos are encrypted too; the CLI decodes them with its key.
	if code, out := h.run("list"); code != 0 || !strings.Contains(out, "Rename greet.Hello") {
		t.Errorf("list (exit %d) does not show the run's task:\n%s", code, out)
	}
}

// failureMarker is upstream error text only a failure message carries.
const failureMarker = "codeswarm-failure-marker-7f3a9c"

// TestEncryptedFailureMessages: with codec.key set, a failing activity's
// message (here a model's 400 answer) is ciphertext in the raw history, and
// the CLI, which has the key, still reports it readable.
func TestEncryptedFailureMessages(t *testing.T) {
	names := []string{"rejected"}
	body := `{"error":{"message":"` + failureMarker + ` rejected this request","type":"invalid_request_error"}}`
	h := newHarness(t, scripted.Script{
		Planner: []scripted.Reply{{Content: faultPlan(names...)}},
		Agents:  []scripted.Agent{faultAgent("rejected", withFaults(writeTurns("rejected"), 0, scripted.Fault{Status: 400, Body: body}))},
	})
	t.Setenv("CODESWARM_CODEC_KEY", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", "failure encryption scenario", "--id", "codec-failure")
	bad := byID(res)["01-rejected"]
	if code != 1 || res.Success || !strings.Contains(bad.Error, failureMarker) {
		t.Fatalf("exit %d, subtask error %q; want a failed run whose error the CLI shows readable:\n%s\n%s", code, bad.Error, fmtResult(res), tail(h.logs.String(), 3000))
	}
	hists := exportHistories(t, h.client)
	failures := 0
	for id, hist := range hists {
		failures += strings.Count(hist, "Encoded failure")
		for _, leak := range []string{failureMarker, base64.StdEncoding.EncodeToString([]byte(failureMarker))[:20]} {
			if strings.Contains(hist, leak) {
				t.Errorf("history %s holds the failure message in clear (%q)", id, leak)
			}
		}
	}
	if failures == 0 {
		t.Errorf("no encoded failure in any of %d histories: the activity failure was not recorded as expected", len(hists))
	}
}

// TestCodecEndpointNeedsToken starts the embedded server the way `codeswarm
// server` does with codec.key set: the Web UI is given the codec endpoint
// with its per-process token and decodes through it, while a request that
// names the port but not the token gets 404 and no plaintext.
func TestCodecEndpointNeedsToken(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	ports := map[string]int{"EMBEDDED_PORT": freePort(t), "EMBEDDED_UI_PORT": freePort(t), "CODEC_PORT": freePort(t)}
	for k, p := range ports {
		t.Setenv("CODESWARM_"+k, strconv.Itoa(p))
	}
	t.Setenv("CODESWARM_CODEC_KEY", key)
	t.Setenv("CODESWARM_TEMPORAL_ADDRESS", "")
	t.Setenv("CODESWARM_EMBEDDED_DB_PATH", filepath.Join(t.TempDir(), "temporal.db"))
	endpoint := startServerCmd(t)

	var settings struct {
		Codec struct{ Endpoint string }
	}
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/settings", ports["EMBEDDED_UI_PORT"]), &settings)
	if settings.Codec.Endpoint != endpoint || !strings.HasPrefix(endpoint, fmt.Sprintf("http://127.0.0.1:%d/", ports["CODEC_PORT"])) {
		t.Fatalf("Web UI codec endpoint %q, server printed %q", settings.Codec.Endpoint, endpoint)
	}
	local, err := codec.DataConverter(key)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := local.ToPayload("plaintext only the UI may see")
	var got string
	remote := func(url string) converter.DataConverter {
		return converter.NewRemoteDataConverter(converter.GetDefaultDataConverter(), converter.RemoteDataConverterOptions{Endpoint: url})
	}
	if err := remote(endpoint).FromPayload(p, &got); err != nil || got != "plaintext only the UI may see" {
		t.Fatalf("decode through the UI's endpoint: %q, %v", got, err)
	}
	bare := fmt.Sprintf("http://127.0.0.1:%d", ports["CODEC_PORT"])
	for _, url := range []string{bare, bare + "/" + strings.Repeat("a", 64)} {
		got = ""
		err := remote(url).FromPayload(p, &got)
		if err == nil || !strings.Contains(err.Error(), "404") || got != "" {
			t.Errorf("decode through %s without the token: %q, %v; want a 404", url, got, err)
		}
	}
}

// startServerCmd runs `codeswarm server` in-process until the test ends and
// returns the codec endpoint it prints.
func startServerCmd(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		code := cli.Execute(ctx, []string{"server"}, cli.IO{Out: pw, Err: io.Discard})
		_ = pw.Close()
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	lines := bufio.NewScanner(pr)
	const prefix = "codec endpoint for the Web UI: "
	for lines.Scan() {
		if _, url, ok := strings.Cut(lines.Text(), prefix); ok {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return url
		}
	}
	t.Fatalf("codeswarm server exited without printing its codec endpoint")
	return ""
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
