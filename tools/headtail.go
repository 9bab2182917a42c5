package tools

import (
	"fmt"
	"strings"
)

// headTail keeps the first and last bytes written to it, within a fixed
// budget, so a command printing gigabytes costs bounded memory while the
// model still sees how it started and how it ended.
type headTail struct {
	head    []byte
	headCap int
	tail    []byte // ring buffer once full
	tailCap int
	next    int // ring write position
	total   int64
}

func newHeadTail(limit int) *headTail {
	headCap := limit / 2
	return &headTail{headCap: headCap, tailCap: limit - headCap}
}

// Write implements io.Writer; it never fails.
func (h *headTail) Write(p []byte) (int, error) {
	n := len(p)
	h.total += int64(n)
	if room := h.headCap - len(h.head); room > 0 {
		k := min(room, len(p))
		h.head = append(h.head, p[:k]...)
		p = p[k:]
	}
	if len(p) >= h.tailCap {
		h.tail = append(h.tail[:0], p[len(p)-h.tailCap:]...)
		h.next = 0
		return n, nil
	}
	for len(p) > 0 {
		if len(h.tail) < h.tailCap {
			k := min(h.tailCap-len(h.tail), len(p))
			h.tail = append(h.tail, p[:k]...)
			p = p[k:]
			continue
		}
		k := copy(h.tail[h.next:], p)
		h.next = (h.next + k) % h.tailCap
		p = p[k:]
	}
	return n, nil
}

// String returns head, an omission marker if anything was dropped, and
// tail. Runes cut at the seams become U+FFFD.
func (h *headTail) String() string {
	tail := append(append([]byte{}, h.tail[h.next:]...), h.tail[:h.next]...)
	kept := int64(len(h.head) + len(tail))
	if dropped := h.total - kept; dropped > 0 {
		return strings.ToValidUTF8(string(h.head), "\uFFFD") +
			fmt.Sprintf("\n... [%d bytes of output omitted] ...\n", dropped) +
			strings.ToValidUTF8(string(tail), "\uFFFD")
	}
	return string(h.head) + string(tail)
}
