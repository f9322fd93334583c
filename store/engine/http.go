package engine

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
)

// maxStatementSize bounds a statement read from a request body. Statements
// are text; data travels separately and is not bounded by this.
const maxStatementSize = 16 << 20

// transportParams are URL parameters of the ClickHouse HTTP interface that
// are not settings.
var transportParams = map[string]bool{
	"query": true, "default_format": true, "client_protocol_version": true,
	"database": true, "query_id": true, "quota_key": true, "session_id": true,
	"session_timeout": true, "session_check": true, "buffer_size": true,
	"wait_end_of_query": true, "user": true, "password": true,
	"enable_http_compression": true, "http_headers_progress_interval_ms": true,
	"send_progress_in_http_headers": true,
}

type readerSource struct{ r io.Reader }

// copyBufSize is the chunk in which INSERT data moves from the request into
// the memfd. clickhouse-go hands its whole encoded block to a pipe, and a
// pipe passes at most the reader's buffer per round: 1 MiB makes a 5 MB
// batch a handful of rounds instead of 160.
const copyBufSize = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func (s readerSource) writeTo(f *os.File) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	// Neither side's ReadFrom/WriteTo: os.File.ReadFrom would fall back to
	// a 32 KiB copy.
	return io.CopyBuffer(onlyWriter{f}, onlyReader{s.r}, *buf)
}

// onlyReader and onlyWriter hide ReadFrom and WriteTo, so that
// io.CopyBuffer uses the buffer given to it.
type (
	onlyReader struct{ io.Reader }
	onlyWriter struct{ io.Writer }
)

type bytesSource []byte

func (s bytesSource) writeTo(f *os.File) (int64, error) {
	n, err := f.Write(s)
	return int64(n), err
}

// decodeRequest builds a statement from a request of the ClickHouse HTTP
// interface. body is read only as far as needed: INSERT data stays a stream.
func decodeRequest(params url.Values, contentType string, body io.Reader) (*statement, error) {
	st := &statement{
		format:   "TabSeparated",
		database: params.Get("database"),
		params:   map[string]string{},
		settings: map[string]string{},
	}
	if f := params.Get("default_format"); f != "" {
		if !identRe.MatchString(f) {
			return nil, badRequest("invalid default_format %q", f)
		}
		st.format = f
	}
	if params.Get("compress") == "1" || params.Get("decompress") == "1" {
		return nil, &Error{Code: 48, Name: "NOT_IMPLEMENTED", Message: "Code: 48. DB::Exception: the embedded engine does not use ClickHouse native compression over HTTP; configure the client without LZ4/ZSTD compression. (NOT_IMPLEMENTED)"}
	}
	external := map[string]bool{}
	if mt, mp, err := mime.ParseMediaType(contentType); err == nil && mt == "multipart/form-data" {
		if err := decodeMultipart(st, params, mp["boundary"], body, external); err != nil {
			return nil, err
		}
	} else if q := params.Get("query"); q != "" && insertFormatRe.MatchString(q) {
		st.sql = q
		st.data = readerSource{body}
	} else {
		// As in ClickHouse, the body continues the query parameter's text
		// (often it is the whole statement, or nothing).
		b, err := io.ReadAll(io.LimitReader(body, maxStatementSize+1))
		if err != nil {
			return nil, fmt.Errorf("engine: read statement: %w", err)
		}
		if len(q)+len(b) > maxStatementSize {
			return nil, badRequest("statement longer than %d bytes", maxStatementSize)
		}
		switch {
		case q == "":
			st.sql = string(b)
		case len(b) == 0:
			st.sql = q
		default:
			st.sql = q + "\n" + string(b)
		}
	}
	for k, vs := range params {
		v := vs[0]
		switch {
		case transportParams[k], k == "compress", k == "decompress":
		case strings.HasPrefix(k, "param_"):
			st.params[k[len("param_"):]] = v
		case k == "max_execution_time":
			st.settings[k] = roundUpSeconds(v)
		case external[strings.TrimSuffix(k, "_format")], external[strings.TrimSuffix(k, "_structure")]:
		default:
			st.settings[k] = v
		}
	}
	st.sql = strings.TrimSpace(st.sql)
	if st.sql == "" {
		return nil, &Error{Code: 62, Name: "SYNTAX_ERROR", Message: "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)"}
	}
	return st, nil
}

// roundUpSeconds rounds a max_execution_time up to a power of two.
// clickhouse-go derives it from each context's deadline, so every statement
// would carry another value and cost a SET on its session; the bridge
// cancels a statement whose context ends anyway (KILL QUERY), so the
// engine's own limit only needs to be no shorter.
func roundUpSeconds(v string) string {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return v
	}
	p := uint64(1)
	for p < n {
		p <<= 1
	}
	return strconv.FormatUint(p, 10)
}

// decodeMultipart reads the external tables of a multipart request: every
// file part is a table whose format and structure come from the
// <name>_format and <name>_structure parameters; a "query" field, or the
// query parameter, is the statement.
func decodeMultipart(st *statement, params url.Values, boundary string, body io.Reader, names map[string]bool) error {
	st.sql = params.Get("query")
	mr := multipart.NewReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return badRequest("malformed multipart body: %v", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return badRequest("malformed multipart body: %v", err)
		}
		name := p.FormName()
		if p.FileName() == "" && name == "query" {
			st.sql = string(data)
			continue
		}
		format := params.Get(name + "_format")
		if format == "" {
			format = "TabSeparated"
		}
		structure := params.Get(name + "_structure")
		if structure == "" {
			return badRequest("external table %q has no %s_structure parameter", name, name)
		}
		names[name] = true
		st.external = append(st.external, externalTable{name: name, format: format, structure: structure, data: bytesSource(data)})
	}
}

// errorStatus picks the HTTP status for an engine error the way ClickHouse
// does for the common cases (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp);
// clickhouse-go only needs it to be non-200.
func errorStatus(e *Error) int {
	switch e.Name {
	case "UNKNOWN_TABLE", "UNKNOWN_DATABASE":
		return http.StatusNotFound
	case "SYNTAX_ERROR", "BAD_ARGUMENTS", "UNKNOWN_SETTING", "UNKNOWN_IDENTIFIER", "TYPE_MISMATCH",
		"ILLEGAL_TYPE_OF_ARGUMENT", "NUMBER_OF_ARGUMENTS_DOESNT_MATCH", "UNKNOWN_FUNCTION",
		"CANNOT_PARSE_INPUT_ASSERTION_FAILED", "INCORRECT_DATA", "UNKNOWN_QUERY_PARAMETER":
		return http.StatusBadRequest
	case "NOT_IMPLEMENTED":
		return http.StatusNotImplemented
	case "REQUIRED_PASSWORD":
		return http.StatusUnauthorized
	case "AUTHENTICATION_FAILED", "ACCESS_DENIED", "READONLY":
		// ClickHouse answers READONLY with 500; a refused statement is the
		// caller's to fix, and must not be retried.
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func asEngineError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: 1001, Name: "STD_EXCEPTION", Message: "Code: 1001. DB::Exception: " + err.Error() + ". (STD_EXCEPTION)"}
}

// RoundTripper returns the in-process transport for clickhouse-go
// (Options.TransportFunc): requests never touch a socket.
func (e *Engine) RoundTripper() http.RoundTripper { return roundTripper{e} }

type roundTripper struct{ e *Engine }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	body := io.Reader(http.NoBody)
	if req.Body != nil {
		defer req.Body.Close()
		body = req.Body
	}
	ctx := req.Context()
	st, err := decodeRequest(req.URL.Query(), req.Header.Get("Content-Type"), body)
	if err != nil {
		return errorResponse(req, asEngineError(err)), nil
	}
	a, err := rt.e.run(ctx, st)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return errorResponse(req, asEngineError(err)), nil
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/octet-stream"}},
		Body:          &answerBody{a: a},
		ContentLength: int64(len(a.body)),
		Request:       req,
	}, nil
}

func errorResponse(req *http.Request, e *Error) *http.Response {
	status := errorStatus(e)
	msg := e.Message + "\n"
	return &http.Response{
		Status:     strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode: status,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":                {"text/plain; charset=UTF-8"},
			"X-Clickhouse-Exception-Code": {strconv.Itoa(e.Code)},
		},
		Body:          io.NopCloser(strings.NewReader(msg)),
		ContentLength: int64(len(msg)),
		Request:       req,
	}
}

// answerBody streams an answer out of engine memory without copying it and
// frees it on Close.
type answerBody struct {
	a   *answer
	off int
}

func (b *answerBody) Read(p []byte) (int, error) {
	if b.a == nil || b.off >= len(b.a.body) {
		return 0, io.EOF
	}
	n := copy(p, b.a.body[b.off:])
	b.off += n
	return n, nil
}

func (b *answerBody) Close() error {
	if b.a != nil {
		b.a.free()
		b.a = nil
	}
	return nil
}
