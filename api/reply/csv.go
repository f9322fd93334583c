package reply

import (
	"bufio"
	"encoding/csv"
	"strings"

	"github.com/valyala/fasthttp"
)

// CSVContentType is the media type of CSV answers (RFC 4180).
const CSVContentType = "text/csv; charset=utf-8"

// WantsCSV reports whether a request asks for CSV: ?format=csv, or an
// Accept header naming text/csv.
func WantsCSV(ctx *fasthttp.RequestCtx) bool {
	if string(ctx.QueryArgs().Peek("format")) == "csv" {
		return true
	}
	return strings.Contains(string(ctx.Request.Header.Peek(fasthttp.HeaderAccept)), "text/csv")
}

// CSV is a CSV answer being streamed: a header row, then rows as the pages
// that hold them are read. RFC 4180 (encoding/csv: fields quoted when they
// need it, CRLF line ends).
type CSV struct {
	w  *csv.Writer
	bw *bufio.Writer
}

// StreamCSV answers 200 with a CSV download named filename and streams
// what fill writes. fill runs after the handler has returned (fasthttp's
// body stream writer): it must not use ctx, and what it writes after an
// error cannot change the status — it stops, and the download ends short.
func StreamCSV(ctx *fasthttp.RequestCtx, filename string, header []string, fill func(c *CSV) error, onErr func(error)) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(CSVContentType)
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	ctx.SetBodyStreamWriter(func(bw *bufio.Writer) {
		c := &CSV{w: csv.NewWriter(bw), bw: bw}
		c.w.UseCRLF = true
		c.Row(header...)
		if err := fill(c); err != nil && onErr != nil {
			onErr(err)
		}
		c.w.Flush()
	})
}

// Row writes one row. A text field that a spreadsheet would read as a
// formula (it starts with = + - @, a tab or a carriage return) is
// prefixed with a quote (OWASP's CSV injection advice): names and
// addresses are user text. Numbers are written by the caller with Num,
// which is never prefixed.
func (c *CSV) Row(fields ...string) {
	for i, f := range fields {
		if f != "" && strings.ContainsRune("=+-@\t\r", rune(f[0])) && !numeric(f) {
			fields[i] = "'" + f
		}
	}
	c.w.Write(fields)
}

// Flush sends what is buffered to the client: between pages, so a long
// download starts at once.
func (c *CSV) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// numeric reports whether f is a number (a negative one starts with '-').
func numeric(f string) bool {
	if len(f) < 2 || f[0] != '-' {
		return false
	}
	for _, r := range f[1:] {
		if (r < '0' || r > '9') && r != '.' && r != 'e' && r != 'E' && r != '+' && r != '-' {
			return false
		}
	}
	return true
}
