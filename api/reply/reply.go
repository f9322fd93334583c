// Package reply writes the answers of fleetscope's HTTP API (DESIGN §5):
// JSON objects, lists as {"items", "total", "next_cursor"}, and errors as
// {"error": {"code", "message"}}. It is the one writer every endpoint uses —
// the ingest hot path included, which imports it without the rest of the
// HTTP layer — so every answer is valid JSON whatever a message echoes; and
// it has the one parser of the bearer credential every endpoint reads.
package reply

import (
	"bytes"
	"encoding/json"
	"log/slog"

	"github.com/valyala/fasthttp"
)

// ContentType is the media type of every JSON answer.
const ContentType = "application/json"

// JSON answers status with v encoded by encoding/json (which writes
// invalid UTF-8 as U+FFFD, so the body is valid JSON whatever v holds).
func JSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here (a channel or a cycle in v).
		slog.Error("reply: cannot encode an answer", "err", err)
		Error(ctx, fasthttp.StatusInternalServerError, "internal", "internal error")
		return
	}
	Body(ctx, status, b)
}

// Body answers status with b, which is JSON already; it appends a newline.
func Body(ctx *fasthttp.RequestCtx, status int, b []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType(ContentType)
	ctx.SetBody(append(b, '\n'))
}

// List is the shape of every list answer.
type List[T any] struct {
	Items      []T    `json:"items"`
	Total      int    `json:"total"`
	NextCursor string `json:"next_cursor"`
}

// WriteList answers 200 with a list; a nil items slice is written as [].
func WriteList[T any](ctx *fasthttp.RequestCtx, items []T, total int, next string) {
	if items == nil {
		items = []T{}
	}
	JSON(ctx, fasthttp.StatusOK, List[T]{Items: items, Total: total, NextCursor: next})
}

// Error answers status with {"error": {"code", "message"}} and returns the
// status, so handlers can record it. code and msg may hold anything — a
// message often echoes the caller's input — and are escaped as JSON.
func Error(ctx *fasthttp.RequestCtx, status int, code, msg string) int {
	b := make([]byte, 0, 40+len(code)+len(msg))
	b = append(b, `{"error":{"code":`...)
	b = AppendString(b, code)
	b = append(b, `,"message":`...)
	b = AppendString(b, msg)
	b = append(b, "}}\n"...)
	ctx.SetStatusCode(status)
	ctx.SetContentType(ContentType)
	ctx.SetBody(b)
	return status
}

// Bearer returns the credential of an `Authorization: Bearer <token>`
// header, the scheme case-insensitive. Every authenticated endpoint reads
// its caller with it — the gateways' ingest key as the accounts' tokens —
// so there is one parser of it. The token aliases the request's header:
// it must not be retained after the handler returns.
func Bearer(ctx *fasthttp.RequestCtx) ([]byte, bool) {
	return BearerOf(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
}

// BearerOf is Bearer of an Authorization header's value h.
func BearerOf(h []byte) ([]byte, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
		return nil, false
	}
	tok := bytes.TrimSpace(h[len(prefix):])
	return tok, len(tok) > 0
}
