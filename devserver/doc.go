// Package devserver runs a single-node Temporal server inside the current
// process, persisted in one SQLite file, together with the Temporal Web UI.
//
// It exists for the codeswarm CLI (`server`, `dev`, and `run` without a
// configured Temporal address). Its dynamic config is tuned for latency: a
// stock dev server spends tens of milliseconds per sequential activity waiting
// on rate-limited history queue polls, which dominates a swarm of short
// activities. Workers must not import this package; they only need a
// frontend address.
package devserver
