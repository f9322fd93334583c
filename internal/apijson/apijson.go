// Package apijson writes the JSON answers of fleetscope's HTTP API (DESIGN
// §5): objects, lists as {"items", "total", "next_cursor"}, and errors as
// {"error": {"code", "message"}} with a fitting status.
package apijson

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"
)

// Write answers status with v encoded as JSON.
func Write(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		Error(ctx, fasthttp.StatusInternalServerError, "internal", "cannot encode the answer")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
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
	Write(ctx, fasthttp.StatusOK, List[T]{Items: items, Total: total, NextCursor: next})
}

// Error answers status with {"error": {"code", "message"}} and returns the
// status, so handlers can record it.
func Error(ctx *fasthttp.RequestCtx, status int, code, msg string) int {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b := append([]byte(`{"error":{"code":`), strconv.Quote(code)...)
	b = append(b, `,"message":`...)
	b = append(b, strconv.Quote(msg)...)
	b = append(b, "}}\n"...)
	ctx.SetBody(b)
	return status
}

// Decode reads a JSON request body into v, refusing unknown fields so that
// a misspelt field is an error rather than silently ignored. It answers 400
// itself and returns false when the body is not acceptable.
func Decode(ctx *fasthttp.RequestCtx, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "malformed", "request body: "+err.Error())
		return false
	}
	if dec.More() {
		Error(ctx, fasthttp.StatusBadRequest, "malformed", "request body: more than one JSON value")
		return false
	}
	return true
}
