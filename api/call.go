package api

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/api/reply"
)

// maxBody bounds the JSON body of every endpoint but ingest: the largest
// legitimate one (a customer type's permissions, a system's address) is a
// few hundred bytes.
const maxBody = 64 << 10

// call is one request to an endpoint: the fasthttp context, the
// authenticated caller (acl.Platform on open endpoints) and helpers that
// keep handlers short. Handlers return an error instead of answering it, so
// every error goes through the one table in errors.go.
type call struct {
	ctx    *fasthttp.RequestCtx
	s      *Server
	caller acl.AccountID
	// tokenID is the id of the session the request came with ("" on open
	// endpoints).
	tokenID string
}

// param is a path placeholder's value.
func (c *call) param(name string) string { return pathParam(c.ctx, name) }

// arg is a query-string argument ("" when absent).
func (c *call) arg(name string) string { return string(c.ctx.QueryArgs().Peek(name)) }

// decode reads the JSON body, an object, into v, refusing unknown fields (a misspelt
// field is an error, not silently ignored), trailing values and bodies
// over maxBody.
func (c *call) decode(v any) error {
	body := c.ctx.PostBody()
	if len(body) > maxBody {
		return errTooLarge
	}
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] != '{' {
		return badRequest("request body: a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	if dec.More() {
		return badRequest("request body: more than one JSON value")
	}
	return nil
}

// json answers status with v as JSON.
func (c *call) json(status int, v any) error {
	reply.JSON(c.ctx, status, v)
	return nil
}

// list answers a list of items.
func list[T any](c *call, items []T, total int, next string) error {
	reply.WriteList(c.ctx, items, total, next)
	return nil
}

// body answers 200 with JSON the handler encoded itself (reply.Buf).
func (c *call) body(b []byte) error {
	reply.Body(c.ctx, fasthttp.StatusOK, b)
	return nil
}

// snapshot is the acl state this request reads.
func (c *call) snapshot() *acl.Snapshot { return c.s.x.Snapshot() }

// systemParam resolves {id} — a numeric id or a GUID — to a system the
// caller may view; anything else is not found, so ids cannot be probed.
func (c *call) systemParam(s *acl.Snapshot) (acl.SystemID, error) {
	raw := c.param("id")
	var id acl.SystemID
	if n, err := strconv.ParseUint(raw, 10, 32); err == nil {
		id = acl.SystemID(n)
	} else if g, ok := s.SystemByGUID(raw); ok {
		id = g
	} else {
		return 0, errNotFound
	}
	if err := s.Require(c.caller, acl.PermView, id); err != nil {
		return 0, errNotFound
	}
	return id, nil
}

// orgParam reads {org}.
func (c *call) orgParam() (acl.OrgID, error) {
	n, err := strconv.ParseUint(c.param("org"), 10, 32)
	if err != nil || n == 0 {
		return 0, errNotFound
	}
	return acl.OrgID(n), nil
}
