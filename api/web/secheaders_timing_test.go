package web

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func BenchmarkSetSecurityHeaders(b *testing.B) {
	var h fasthttp.ResponseHeader
	b.ReportAllocs()
	for b.Loop() {
		h.Reset()
		SetSecurityHeaders(&h)
	}
}
