package scripted

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// overLimit takes a token from the rate limit, if any, and returns 0; with
// none left it takes nothing and returns how long until one is.
func (h *Handler) overLimit() time.Duration {
	if h.limiter == nil {
		return 0
	}
	r := h.limiter.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return d
	}
	return 0
}

// writeRateLimited answers 429 as OpenAI does when a request exceeds the
// account's rate.
func writeRateLimited(w http.ResponseWriter, wait time.Duration) int {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	w.Header().Set("Retry-After-Ms", strconv.FormatInt(int64(math.Ceil(float64(wait)/float64(time.Millisecond))), 10))
	return writeError(w, http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded",
		fmt.Sprintf("rate limit reached: try again in %dms", wait.Milliseconds()))
}
