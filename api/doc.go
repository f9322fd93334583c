// Package api is fleetscope's one HTTP layer (DESIGN §1, §5): every
// endpoint is listed in Server.endpoints, with the caller's authentication,
// the JSON answers and the table from errors to statuses in one place.
// The domain packages below it — acl (who may do what), query (the
// dashboards' reads), ingest (the gateways' hot path, which keeps its own
// handler and shares this package's writer, api/reply) — know nothing of
// HTTP.
//
// # Requests
//
// The router matches literal paths by one map lookup and patterns with
// {placeholders} in order; an unknown path answers 404, another method 405
// with Allow, OPTIONS its Allow. A handler that panics answers 500 (and is
// counted, and logged with its stack) instead of taking the process down.
// Every answer carries X-Request-Id: the client's, when it sends a sane
// one, else this process's own; at debug level each request is one log
// line (accessLog) under that id. Pages of Options.CORSOrigins may call the
// API from a browser (cors.go); Server.Routes lists every route, and
// GET /v1/openapi.json describes each (openapi.go). With
// Options.OpsSeparate, /metrics and /readyz move to OpsHandler, with Go's
// profiles.
//
// Handlers are func(*call) error. They answer success themselves and
// return errors, which Server.fail maps through errorTable (errors.go):
// the caller's mistakes are 4xx with the error's own message; a store that
// is unreachable or overloaded is 503 with Retry-After; anything else is a
// bug, 500, and neither 5xx carries the engine's text or SQL — the log
// does, under the request id the answer names. A system the caller may not
// view is 404 whatever is asked of it, so ids cannot be probed.
//
// # Answers
//
// Objects are JSON, lists {"items", "total", "next_cursor"}, errors
// {"error": {"code", "message"}}: package reply writes all three, escaping
// every string as JSON (not Go) syntax, so an answer stays valid JSON
// whatever a message echoes. The query endpoints encode their pages by hand
// (reply.Buf): a page of 50 locations is a few microseconds.
package api
