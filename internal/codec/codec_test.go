package codec

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
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
	h, err := Handler(testKey(), "http://127.0.0.1:8233")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	remote := converter.NewRemoteDataConverter(converter.GetDefaultDataConverter(), converter.RemoteDataConverterOptions{Endpoint: srv.URL})
	local, _ := DataConverter(testKey())
	p, _ := local.ToPayload("hello")
	var got string
	if err := remote.FromPayload(p, &got); err != nil || got != "hello" {
		t.Fatalf("remote decode: %q, %v", got, err)
	}
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Error("no CORS header for the UI")
	}
}
