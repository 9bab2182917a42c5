// Package scripted is an OpenAI-compatible Chat Completions server that
// answers from a script instead of a model. Tests use it over real HTTP, and
// `codeswarm demo` uses it to run a whole swarm without an API key.
//
// It serves POST /v1/chat/completions and GET /v1/models (also without the
// /v1 prefix). Start(script) listens on a free loopback port; URL() is the
// base URL to configure as llm.base_url. NewHandler gives the same server
// as an http.Handler.
//
// # Which reply a request gets
//
// Requests come from many concurrent sub-agents and may be retried, so the
// reply is a function of the request, never of arrival order:
//
//   - A request with a message containing llm.SummaryMarker is a summary
//     request and gets "summary".
//   - Otherwise a request without tools is a planner request. Its turn is
//     the number of assistant messages in it (a repair round carries the
//     previous answer, so it is turn 1); it gets planner[turn], or the last
//     planner reply beyond the end ({"subtasks":[]} if there is none).
//   - A request with tools is an agent request. Its agent is the entry of
//     "agents" whose "match" occurs in the first user message (the longest
//     match wins; empty matches never match). Its turn is the number of
//     assistant messages; it gets turns[turn], and beyond the last turn a
//     final "Done.\nSTATUS: completed". A request matching no agent gets
//     "default" ("Nothing to do.\nSTATUS: completed" if unset).
//
// Before answering, the server validates the conversation like a strict
// real server and answers 400 with an OpenAI error body when there are no
// messages, when a tool message does not answer a tool call of the
// assistant message before it, or when an assistant message's tool calls
// are not each followed by exactly one tool message. With WithAPIKey it
// answers 401 unless the request carries "Authorization: Bearer <key>".
//
// # Script file format
//
// LoadScript reads JSON; unknown keys are an error. Durations are Go
// duration strings ("250ms", "2s").
//
//	{
//	  "planner": [ REPLY, ... ],
//	  "agents": [
//	    {"match": "[demo:rename-greet]", "turns": [ REPLY, ... ]}
//	  ],
//	  "summary": REPLY,
//	  "default": REPLY,
//	  "reject_params": ["temperature", "max_tokens"]
//	}
//
// A request carrying a field named in "reject_params" gets a 400 as OpenAI
// answers a parameter a model does not support (code
// "unsupported_parameter", "param" naming it).
//
// A REPLY is
//
//	{
//	  "content": "text of the assistant message",
//	  "tool_calls": [{"name": "read", "arguments": "{\"path\": \"main.go\"}"}],
//	  "finish_reason": "length",
//	  "faults": [ FAULT, ... ],
//	  "delay": "250ms",
//	  "prompt_tokens": 1200,
//	  "completion_tokens": 80
//	}
//
// "arguments" is a string sent verbatim, so it may be invalid JSON on
// purpose. Tool call IDs are "call_<turn>_<index>". finish_reason is
// "tool_calls" when there are tool calls and "stop" otherwise, unless the
// reply sets it. Token counts
// default to estimates from the request and reply sizes.
//
// The first len(faults) requests for a reply (one agent's turn, one planner
// turn, or the summary) get these faults in order; later requests get the
// reply. A FAULT is (the comments explain; they are not allowed in the file)
//
//	{
//	  "status": 429,            // default 500; 200 when only "body" is set
//	  "retry_after": "2",       // Retry-After header, verbatim (seconds or HTTP-date)
//	  "retry_after_ms": "1500", // retry-after-ms header, verbatim
//	  "body": "<html>bad gateway</html>", // raw body instead of an OpenAI error
//	  "hang": true,             // never answer; hold until the client gives up
//	  "empty_choices": true,    // 200 with "choices": []
//	  "context_length": true,   // 400 with code "context_length_exceeded"
//	  "delay": "100ms"          // wait before the fault
//	}
//
// Handler.Requests records every chat request with its kind, matched agent,
// turn, answered status (0 when the client left first), Authorization
// header, body and arrival time.
package scripted
