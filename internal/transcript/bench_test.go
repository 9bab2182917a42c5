package transcript

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkStep is one sub-agent step's transcript work (two loads and two
// appends: the model call and the tool call) on a conversation that
// already holds n records of ~1 kB. With the cache its cost does not grow
// with n.
func BenchmarkStep(b *testing.B) {
	body := strings.Repeat("some tool output that a model would read ", 25)
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			s := New(b.TempDir())
			for i := range n {
				if err := s.Append(testRef, rec(fmt.Sprintf("pre-%05d", i), body)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				for j := range 2 {
					if _, err := s.Load(testRef); err != nil {
						b.Fatal(err)
					}
					if err := s.Append(testRef, rec(fmt.Sprintf("step-%06d-%d", i, j), body)); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
