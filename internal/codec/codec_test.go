package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"
)

func testKey() string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) }

func TestRoundTripAndCiphertext(t *testing.T) {
	dc, err := DataConverter(testKey())
	if err != nil {
		t.Fatal(err)
	}
	secret := "func main() { println(\"source code\") }"
	p, err := dc.ToPayload(secret)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata["encoding"]) != Encoding || bytes.Contains(p.Data, []byte("source code")) {
		t.Fatalf("payload not encrypted: %q", p)
	}
	var back string
	if err := dc.FromPayload(p, &back); err != nil || back != secret {
		t.Fatalf("round trip: %q, %v", back, err)
	}
	// Two encodings of the same value differ (random nonce).
	p2, _ := dc.ToPayload(secret)
	if bytes.Equal(p.Data, p2.Data) {
		t.Error("same ciphertext twice: nonce reused")
	}
}

func TestDecodeRejectsTamperingAndWrongKey(t *testing.T) {
	c, _ := fromString(testKey())
	enc, _ := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	enc[0].Data[len(enc[0].Data)-1] ^= 1
	if _, err := c.Decode(enc); err == nil {
		t.Error("tampered payload decoded")
	}
	other, _ := New(bytes.Repeat([]byte{9}, 32))
	enc2, _ := c.Encode([]*commonpb.Payload{{Data: []byte("y")}})
	if _, err := other.Decode(enc2); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("wrong key: %v", err)
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	c, _ := fromString(testKey())
	plain, _ := converter.GetDefaultDataConverter().ToPayload("old history")
	out, err := c.Decode([]*commonpb.Payload{plain})
	if err != nil || out[0] != plain {
		t.Fatalf("plain payload: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{1}, 32)
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
		"0101010101010101010101010101010101010101010101010101010101010101",
	} {
		if k, err := ParseKey(s); err != nil || !bytes.Equal(k, raw) {
			t.Errorf("ParseKey(%q) = %v, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "short", base64.StdEncoding.EncodeToString(raw[:16])} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
	if _, err := DataConverter("nope"); err == nil || !strings.Contains(err.Error(), "codec.key") {
		t.Errorf("bad key error should name codec.key: %v", err)
	}
}

func TestHandlerDecodesForTheUI(t *testing.T) {
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	h, err := Handler(testKey(), "http://127.0.0.1:8233", token)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	p, _ := mustDC(t).ToPayload("hello")
	var got string
	if err := remoteDC(srv.URL+"/"+token).FromPayload(p, &got); err != nil || got != "hello" {
		t.Fatalf("remote decode: %q, %v", got, err)
	}
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/"+token+"/decode", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Error("no CORS header for the UI")
	}
}

// TestHandlerRefusesRequestsWithoutToken: another local process that finds
// the port but not the token gets 404 and no plaintext, whatever path it
// tries.
func TestHandlerRefusesRequestsWithoutToken(t *testing.T) {
	token, _ := NewToken()
	h, err := Handler(testKey(), "", token)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	p, _ := mustDC(t).ToPayload("top secret source")
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	wrong := strings.Repeat("0", len(token))
	for _, path := range []string{"/decode", "/" + wrong + "/decode", "/" + token[:len(token)-1] + "/decode", "/" + token + "x/decode", "//decode", "/" + token} {
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(out), base64.StdEncoding.EncodeToString([]byte(`"top secret`))[:12]) {
			t.Errorf("POST %s: status %d, body %q; want 404 and nothing decoded", path, resp.StatusCode, out)
		}
	}
	var got string
	if err := remoteDC(srv.URL).FromPayload(p, &got); err == nil {
		t.Errorf("a codec client without the token decoded %q", got)
	}
	if _, err := Handler(testKey(), "", "short"); err == nil {
		t.Error("Handler accepted a guessable token")
	}
}

func mustDC(t *testing.T) converter.DataConverter {
	t.Helper()
	dc, err := DataConverter(testKey())
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

func remoteDC(endpoint string) converter.DataConverter {
	return converter.NewRemoteDataConverter(converter.GetDefaultDataConverter(), converter.RemoteDataConverterOptions{Endpoint: endpoint})
}

// TestFailureConverterEncryptsMessages: with a key, a failure's message and
// stack trace leave the process only as ciphertext, and a converter with the
// key turns the failure back into the original message.
func TestFailureConverterEncryptsMessages(t *testing.T) {
	dc, err := DataConverter(testKey())
	if err != nil {
		t.Fatal(err)
	}
	fc := FailureConverter(testKey(), dc)
	const msg = "open internal/payroll.go: permission denied"
	f := fc.ErrorToFailure(temporal.NewApplicationError(msg, "tool"))
	raw, err := protojson.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "payroll") || strings.Contains(string(raw), base64.StdEncoding.EncodeToString([]byte(msg))[:16]) {
		t.Errorf("failure holds the message in clear: %s", raw)
	}
	if back := fc.FailureToError(f); !strings.Contains(back.Error(), msg) {
		t.Errorf("decoded failure = %q, want %q", back, msg)
	}
	// Decoding leaves the failure it read encoded: the SDK decodes a failed
	// local activity's result from the failure of the marker it then sends.
	if after, _ := protojson.Marshal(f); string(after) != string(raw) {
		t.Errorf("decoding changed the failure it read:\nbefore %s\nafter  %s", raw, after)
	}
	plain := FailureConverter("", converter.GetDefaultDataConverter()).ErrorToFailure(errors.New(msg))
	if plain.GetMessage() != msg {
		t.Errorf("without a key the message = %q, want it in clear", plain.GetMessage())
	}
}
