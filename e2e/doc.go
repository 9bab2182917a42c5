// Package e2e holds codeswarm's end-to-end tests: a real embedded Temporal
// server, the scripted OpenAI-compatible server over real HTTP, real git
// repositories in temp dirs, driven through the real CLI entry point.
package e2e
