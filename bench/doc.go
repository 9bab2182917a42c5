// Package bench measures codeswarm against an in-process baseline that runs
// the same scripted plan with the same tool code and git operations in a
// plain Go loop, without Temporal (what CodeTether does). The benchmarks
// live in the package's tests and run only when CODESWARM_BENCH is set, so
// `go test ./...` stays fast; BENCHMARKS.md says how to run each figure.
package bench
