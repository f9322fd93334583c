package api

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/query"
	"github.com/fleetscope/fleetscope/store"
)

// The HTTP layer's own sentinels.
var (
	// errBadRequest: the request itself is malformed (body, path or query
	// string). 400.
	errBadRequest = errors.New("bad request")
	// errUnauthorized: no credential, or one that is unknown, expired or
	// revoked. 401.
	errUnauthorized = errors.New("missing or invalid token: send Authorization: Bearer <token>")
	// errTooLarge: a body over the endpoint's limit. 413.
	errTooLarge = errors.New("request body too large")
	// errForbidden: the caller is known but may not do this (e.g. the
	// outbox is for support). 403.
	errForbidden = errors.New("forbidden")
	// errNotFound: no such object, or one the caller may not see. 404.
	errNotFound = errors.New("not found")
)

// retryAfter is an error that tells the client when to try again (429 and
// 503 answers carry it in Retry-After).
type retryAfter struct {
	err   error
	after time.Duration
}

func (e *retryAfter) Error() string { return e.err.Error() }
func (e *retryAfter) Unwrap() error { return e.err }

// errorClass is one row of the table from errors to answers.
type errorClass struct {
	err    error
	status int
	code   string
	// retry is the Retry-After of 503 answers: only where retrying can help.
	retry time.Duration
}

// errorTable maps every sentinel a handler may return to its answer, in
// order: the first row whose error matches (errors.Is) decides. 4xx answers
// carry the error's own message, which says what to fix; 5xx answers never
// carry the engine's text or SQL. Whatever matches no row is a bug: 500.
var errorTable = []errorClass{
	{errBadRequest, fasthttp.StatusBadRequest, "bad_request", 0},
	{query.ErrBadRequest, fasthttp.StatusBadRequest, "bad_request", 0},
	{acl.ErrInvalid, fasthttp.StatusBadRequest, "invalid", 0},
	{errUnauthorized, fasthttp.StatusUnauthorized, "unauthorized", 0},
	{acl.ErrUnverified, fasthttp.StatusForbidden, "unverified", 0},
	{acl.ErrForbidden, fasthttp.StatusForbidden, "forbidden", 0},
	{errForbidden, fasthttp.StatusForbidden, "forbidden", 0},
	{errNotFound, fasthttp.StatusNotFound, "not_found", 0},
	{acl.ErrNotFound, fasthttp.StatusNotFound, "not_found", 0},
	{query.ErrNotFound, fasthttp.StatusNotFound, "not_found", 0},
	{acl.ErrExists, fasthttp.StatusConflict, "exists", 0},
	{acl.ErrOwnerGrant, fasthttp.StatusConflict, "conflict", 0},
	{acl.ErrRoleInUse, fasthttp.StatusConflict, "conflict", 0},
	{acl.ErrLastOrgAdmin, fasthttp.StatusConflict, "conflict", 0},
	{errTooLarge, fasthttp.StatusRequestEntityTooLarge, "too_large", 0},
	{errRateLimited, fasthttp.StatusTooManyRequests, "rate_limited", time.Minute},
	{errNoService, fasthttp.StatusServiceUnavailable, "unavailable", 0},
	// The engine is unreachable or overloaded: retrying can help.
	{store.ErrUnavailable, fasthttp.StatusServiceUnavailable, "unavailable", time.Second},
	{query.ErrUnavailable, fasthttp.StatusServiceUnavailable, "unavailable", time.Second},
}

// classify returns the answer for err.
func classify(err error) errorClass {
	for _, c := range errorTable {
		if errors.Is(err, c.err) {
			var ra *retryAfter
			if errors.As(err, &ra) {
				c.retry = ra.after
			}
			return c
		}
	}
	return errorClass{status: fasthttp.StatusInternalServerError, code: "internal"}
}

// message is what an answer says of err: its own text for the caller's
// mistakes, a fixed sentence otherwise.
func (c errorClass) message(err error, requestID string) string {
	switch {
	case c.status == fasthttp.StatusNotFound:
		// Whatever the layer below says, a 404 says no more: ids cannot be
		// probed for what exists.
		return "not found"
	case c.status < 500:
		return err.Error()
	case c.status == fasthttp.StatusServiceUnavailable:
		return "the database is unavailable; retry later (request " + requestID + ")"
	}
	return "internal error (request " + requestID + ")"
}

// retryHeader formats a Retry-After value: whole seconds, at least 1.
func retryHeader(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// badRequest wraps a complaint about the request in errBadRequest.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}
