package scripted

import (
	"crypto/subtle"
	"encoding/json"
	"golang.org/x/time/rate"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Request kinds, as recorded in Request.Kind and counted by Handler.Count.
const (
	KindPlanner = "planner"
	KindAgent   = "agent"
	KindSummary = "summary"
)

// maxBodyBytes bounds a request body; real servers cap them too.
const maxBodyBytes = 64 << 20

// Request is one request the handler received.
type Request struct {
	Kind          string // KindPlanner, KindAgent, KindSummary, or "" if rejected before classifying
	Agent         string // the matched Agent.Match; "" for no match
	Turn          int    // assistant messages in the request
	Status        int    // status answered; 0 if the client left first
	Authorization string
	Body          []byte
	Time          time.Time
	Done          bool // the handler is finished with it: answered, or dropped unanswered
}

// Option configures a Handler.
type Option func(*Handler)

// WithAPIKey makes the handler require "Authorization: Bearer key".
func WithAPIKey(key string) Option {
	return func(h *Handler) { h.apiKey = key }
}

// WithRateLimit makes the handler enforce rps chat requests per second
// (a token bucket holding burst requests), as a provider account does:
// a request beyond it is answered 429 with Retry-After (whole seconds) and
// retry-after-ms saying when a token is free again.
func WithRateLimit(rps float64, burst int) Option {
	return func(h *Handler) { h.limiter = rate.NewLimiter(rate.Limit(rps), burst) }
}

// WithoutBodies keeps the request log without the requests' bodies: a
// benchmark of 150,000 model calls would otherwise hold every conversation
// sent (gigabytes) and measure the log instead of the code under test.
func WithoutBodies() Option {
	return func(h *Handler) { h.dropBodies = true }
}

// Handler is the scripted OpenAI-compatible API as an http.Handler.
// It is safe for concurrent use.
type Handler struct {
	script  Script
	apiKey  string
	limiter *rate.Limiter // nil: no rate limit
	// dropBodies: Requests() has no Body (WithoutBodies).
	dropBodies bool
	mux        *http.ServeMux
	closed     chan struct{}
	closeOnce  sync.Once

	mu       sync.Mutex
	requests []Request
	faults   map[replyKey]int // faults already served per (kind, agent, turn)
	hold     chan struct{}    // non-nil while answers are held; closed by Release
	held     map[int]bool     // indexes of the requests waiting at the hold
}

// replyKey identifies the scripted reply a request gets.
type replyKey struct {
	kind, agent string
	turn        int
}

// NewHandler returns a handler answering from s.
func NewHandler(s Script, opts ...Option) *Handler {
	h := &Handler{
		script: s,
		mux:    http.NewServeMux(),
		closed: make(chan struct{}),
		faults: map[replyKey]int{},
		held:   map[int]bool{},
	}
	for _, o := range opts {
		o(h)
	}
	for _, prefix := range []string{"/v1", ""} {
		h.mux.HandleFunc("POST "+prefix+"/chat/completions", h.chat)
		h.mux.HandleFunc("GET "+prefix+"/models", h.models)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found_error", "", "unknown endpoint "+r.Method+" "+r.URL.Path)
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close releases requests held by a Hang fault or a delay; they get no answer.
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.closed) }) }

// Requests returns every chat request received, in arrival order.
func (h *Handler) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// Count returns how many chat requests of kind were received.
func (h *Handler) Count(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.requests {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

func (h *Handler) models(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   []map[string]any{{"id": "scripted", "object": "model", "created": 0, "owned_by": "codeswarm"}},
	})
}

func (h *Handler) chat(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	logged := body
	if h.dropBodies {
		logged = nil
	}
	idx := h.record(Request{Authorization: r.Header.Get("Authorization"), Body: logged, Time: time.Now()})
	// Also when the request is aborted (a panic): a test that released held
	// answers after killing the client must know none of them went out.
	defer h.update(idx, func(q *Request) { q.Done = true })
	status := h.respond(w, r, idx, body, err)
	h.update(idx, func(q *Request) { q.Status = status })
}

// respond answers one chat request and returns the status it sent.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, idx int, body []byte, readErr error) int {
	req, status, msg := h.admit(r, body, readErr)
	if status != http.StatusOK {
		code := ""
		if status == http.StatusUnauthorized {
			code = "invalid_api_key"
		}
		return writeError(w, status, "invalid_request_error", code, msg)
	}
	if p := h.rejectedParam(body); p != "" {
		return writeParamError(w, p)
	}
	key, reply := h.route(req)
	h.update(idx, func(q *Request) { q.Kind, q.Agent, q.Turn = key.kind, key.agent, key.turn })
	if wait := h.overLimit(); wait > 0 {
		return writeRateLimited(w, wait)
	}
	if f := h.nextFault(key, reply); f != nil {
		return h.serveFault(w, r, idx, req, *f)
	}
	h.wait(r, time.Duration(reply.Delay))
	h.awaitRelease(r, idx)
	return writeJSON(w, http.StatusOK, buildCompletion(req, body, reply, key.turn))
}

// admit authenticates, decodes and validates a request. A status other
// than 200 comes with the message to answer.
func (h *Handler) admit(r *http.Request, body []byte, readErr error) (wireRequest, int, string) {
	var req wireRequest
	if readErr != nil {
		return req, http.StatusBadRequest, "read body: " + readErr.Error()
	}
	if !h.authorized(r) {
		return req, http.StatusUnauthorized, "Incorrect API key provided."
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, http.StatusBadRequest, "invalid JSON body: " + err.Error()
	}
	if err := validate(req.Messages); err != nil {
		return req, http.StatusBadRequest, err.Error()
	}
	return req, http.StatusOK, ""
}

func (h *Handler) authorized(r *http.Request) bool {
	if h.apiKey == "" {
		return true
	}
	got := r.Header.Get("Authorization")
	return subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+h.apiKey)) == 1
}

func (h *Handler) record(q Request) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, q)
	return len(h.requests) - 1
}

func (h *Handler) update(idx int, f func(*Request)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(&h.requests[idx])
}

// nextFault returns the fault this request gets, if any, and counts it.
func (h *Handler) nextFault(key replyKey, reply Reply) *Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.faults[key]
	if n >= len(reply.Faults) {
		return nil
	}
	h.faults[key] = n + 1
	return &reply.Faults[n]
}

// wait sleeps d. If the client leaves or the handler closes first, it
// aborts the request: the connection is dropped without a response, as a
// dead upstream would, instead of net/http sending an empty 200.
func (h *Handler) wait(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return
	case <-r.Context().Done():
	case <-h.closed:
	}
	panic(http.ErrAbortHandler)
}

// Hold keeps every answer not yet sent until Release: requests are still
// received and recorded, but get no answer (nor fault) meanwhile. Crash
// tests hold the answers to bring a run to rest at a known point: nothing
// answered and not yet taken in, only held requests in flight.
func (h *Handler) Hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold == nil {
		h.hold = make(chan struct{})
	}
}

// Release sends the held answers and stops holding.
func (h *Handler) Release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold != nil {
		close(h.hold)
		h.hold = nil
	}
}

// Held returns the indexes (into Requests) of the requests whose answers
// are being held, in arrival order. A held request whose client leaves is
// dropped unanswered and leaves this list.
func (h *Handler) Held() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int, 0, len(h.held))
	for idx := range h.held {
		out = append(out, idx)
	}
	slices.Sort(out)
	return out
}

// awaitRelease blocks request idx while answers are held. If the client
// leaves or the handler closes first, the request is aborted unanswered.
func (h *Handler) awaitRelease(r *http.Request, idx int) {
	h.mu.Lock()
	hold := h.hold
	if hold != nil {
		h.held[idx] = true
	}
	h.mu.Unlock()
	if hold == nil {
		return
	}
	defer func() {
		h.mu.Lock()
		delete(h.held, idx)
		h.mu.Unlock()
	}()
	select {
	case <-hold:
		return
	case <-r.Context().Done():
	case <-h.closed:
	}
	panic(http.ErrAbortHandler)
}

// hang holds the request until the client leaves or the handler closes,
// then drops the connection without answering.
func (h *Handler) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-h.closed:
	}
	panic(http.ErrAbortHandler)
}
