package engine

import (
	"context"
	"io"
	"net/url"
)

// Request is one statement of ClickHouse's HTTP interface, decoded from a
// request's parameters and body (see DecodeRequest); package chhttp serves
// them, and the in-process transport of clickhouse-go runs the same
// decoding.
type Request struct{ st *statement }

// DecodeRequest reads a statement the way ClickHouse's HTTP interface does:
// the query parameter and/or the body, an INSERT's data, query parameters
// (param_*), settings, default_format and external tables.
func DecodeRequest(params url.Values, contentType string, body io.Reader) (*Request, error) {
	st, err := decodeRequest(params, contentType, body)
	if err != nil {
		return nil, err
	}
	return &Request{st: st}, nil
}

// MakeReadOnly lets the statement only read (a GET request): it refuses a
// statement that writes with READONLY, and otherwise runs it under
// readonly=2.
func (r *Request) MakeReadOnly() *Error {
	if err := checkReadOnly(r.st.sql); err != nil {
		return err
	}
	r.st.settings[readonlySetting] = "2"
	return nil
}

// Serve runs a request and returns its answer; free releases the answer's
// memory once it is written. A statement still running when ctx ends is
// cancelled (KILL QUERY).
func (e *Engine) Serve(ctx context.Context, r *Request) (body []byte, free func(), err error) {
	a, err := e.run(ctx, r.st)
	if err != nil {
		return nil, nil, err
	}
	return a.body, a.free, nil
}

// AsError returns err as an engine exception (a failure outside the engine
// becomes STD_EXCEPTION, code 1001, as ClickHouse reports it).
func AsError(err error) *Error { return asEngineError(err) }

// HTTPStatus is the status ClickHouse's HTTP interface answers e with.
func (e *Error) HTTPStatus() int { return errorStatus(e) }
