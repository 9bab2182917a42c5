// Package codec encrypts Temporal payloads with AES-256-GCM, so source code
// and model output stored in workflow histories are unreadable without the
// key, and serves the codec endpoint the Web UI uses to show them decoded.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata written on encrypted payloads.
const (
	Encoding      = "binary/encrypted"
	metaEncoding  = "encoding"
	metaKeyID     = "encryption-key-id"
	keySize       = 32
	keyIDHexChars = 16
)

// ParseKey decodes a 32-byte key given as base64 (standard or URL, padded or
// not) or hex.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	decoders := []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	}
	for _, dec := range decoders {
		if b, err := dec(s); err == nil && len(b) == keySize {
			return b, nil
		}
	}
	return nil, errors.New("must be 32 bytes as base64 or hex (e.g. `openssl rand -base64 32`)")
}

// Codec is an AES-256-GCM PayloadCodec.
type Codec struct {
	aead  cipher.AEAD
	keyID string
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec for a 32-byte key.
func New(key []byte) (*Codec, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("codec key is %d bytes, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key)
	return &Codec{aead: aead, keyID: hex.EncodeToString(sum[:])[:keyIDHexChars]}, nil
}

// Encode encrypts each payload (metadata and data) into a new payload.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		nonce := make([]byte, c.aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{metaEncoding: []byte(Encoding), metaKeyID: []byte(c.keyID)},
			Data:     c.aead.Seal(nonce, nonce, plain, nil),
		}
	}
	return out, nil
}

// Decode decrypts payloads this codec encrypted; others pass through, so
// histories written before encryption was turned on stay readable.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[metaEncoding]) != Encoding {
			out[i] = p
			continue
		}
		if id := string(p.GetMetadata()[metaKeyID]); id != c.keyID {
			return nil, fmt.Errorf("payload was encrypted with key %s, this codec has key %s", id, c.keyID)
		}
		n := c.aead.NonceSize()
		if len(p.GetData()) < n {
			return nil, errors.New("decode payload: ciphertext too short")
		}
		plain, err := c.aead.Open(nil, p.Data[:n], p.Data[n:], nil)
		if err != nil {
			return nil, fmt.Errorf("decode payload: %w", err)
		}
		var dec commonpb.Payload
		if err := proto.Unmarshal(plain, &dec); err != nil {
			return nil, fmt.Errorf("decode payload: %w", err)
		}
		out[i] = &dec
	}
	return out, nil
}

// DataConverter returns the default converter wrapped with encryption, or the
// default converter alone when key is "".
func DataConverter(key string) (converter.DataConverter, error) {
	if key == "" {
		return converter.GetDefaultDataConverter(), nil
	}
	c, err := fromString(key)
	if err != nil {
		return nil, err
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c), nil
}

// FailureConverter returns the failure converter that goes with dc. With a
// key, failure messages and stack traces (which quote tool output, file
// names, model errors) are moved into an attribute payload that dc encrypts,
// so a history read without the key shows only "Encoded failure"; with no
// key it is the SDK's default.
func FailureConverter(key string, dc converter.DataConverter) converter.FailureConverter {
	if key == "" {
		return temporal.GetDefaultFailureConverter()
	}
	return keepEncoded{temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})}
}

// keepEncoded decodes a copy of each failure it is given: the SDK's default
// converter decodes the encoded message and stack trace into the failure
// itself, and the Go SDK (v1.50) decodes a failed local activity's result
// from the very failure of the marker it is about to send, so the marker
// would reach the server (and the history) with the message in clear.
type keepEncoded struct {
	converter.FailureConverter
}

// FailureToError converts a copy of failure.
func (k keepEncoded) FailureToError(failure *failurepb.Failure) error {
	if failure == nil {
		return nil
	}
	return k.FailureConverter.FailureToError(proto.Clone(failure).(*failurepb.Failure))
}

func fromString(key string) (*Codec, error) {
	raw, err := ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("codec.key: %w", err)
	}
	return New(raw)
}

// NewToken returns a random capability for Handler: 256 bits, hex.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("codec token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Handler serves the remote codec protocol (POST /encode, /decode) for the
// Web UI, allowing the UI's origin, under the path /<token>/: any other
// path gets 404 and decodes nothing. The endpoint is on localhost, where
// other users' and the sandbox's processes could otherwise ask it to
// decrypt a history; the token is a capability only the UI (which is given
// the full endpoint) knows. A path, not a header, because the Web UI can
// send no custom header to a codec endpoint without an auth provider.
func Handler(key, uiOrigin, token string) (http.Handler, error) {
	if len(token) < 32 {
		return nil, errors.New("codec endpoint: token must be at least 32 characters")
	}
	c, err := fromString(key)
	if err != nil {
		return nil, err
	}
	inner := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := stripToken(r.URL.Path, token)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if uiOrigin != "" {
			w.Header().Set("Access-Control-Allow-Origin", uiOrigin)
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type,X-Namespace,Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "POST,OPTIONS")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = rest, ""
		inner.ServeHTTP(w, r2)
	}), nil
}

// stripToken checks that path is /<token>/... in constant time and returns
// the rest, with its leading slash.
func stripToken(path, token string) (string, bool) {
	first, rest, found := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !found || subtle.ConstantTimeCompare([]byte(first), []byte(token)) != 1 {
		return "", false
	}
	return "/" + rest, true
}
