package api

import (
	_ "embed"

	"github.com/valyala/fasthttp"
)

// OpenAPIDocument is the OpenAPI 3.1 description of every route (DESIGN
// §5), served at GET /v1/openapi.json. It is written by hand: the
// handlers encode their answers by hand too (reply.Buf), so there are no
// Go types a generator could read, and the document is the contract a
// reviewer reads. Tests keep it true: it loads and validates, it lists
// every route of Server.Routes and no other, and every answer of the API
// tests validates against it (api/openapi_test.go).
//
//go:embed openapi.json
var OpenAPIDocument []byte

// openapi serves GET /v1/openapi.json.
func (s *Server) openapi(c *call) error {
	c.ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	c.ctx.SetContentType("application/json")
	c.ctx.SetStatusCode(fasthttp.StatusOK)
	c.ctx.SetBody(OpenAPIDocument)
	return nil
}
