package reply

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// hostile are strings a message can echo: control characters, invalid
// UTF-8, a tag character above U+FFFF, quotes, backslashes, line separators.
var hostile = []string{"", "Müller \"Solar\" \\ GmbH", "tab\there", "\x00\x1f\u2028\u2029", "\xff\xfe",
	"Ñandú 🌞", "Bad\u0007Zone", "\U000E0001", "\\u0000", "</script><img src=x onerror=alert(1)>", "\"}}", "\r\n"}

// FuzzJSONString: every string — names and e-mails are user text — comes
// out as a JSON string that decodes to it (invalid UTF-8 as U+FFFD).
func FuzzJSONString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want && utf8.ValidString(s) {
			t.Fatalf("%q round-trips to %q", s, got)
		} else if !utf8.ValidString(got) {
			t.Fatalf("%q decodes to invalid UTF-8 %q", s, got)
		}
	})
}

// FuzzError: an error answer is valid JSON of the documented shape whatever
// its code and message hold.
func FuzzError(f *testing.F) {
	for _, s := range hostile {
		f.Add("invalid", s)
	}
	f.Fuzz(func(t *testing.T, code, msg string) {
		var ctx fasthttp.RequestCtx
		if got := Error(&ctx, 400, code, msg); got != 400 {
			t.Fatalf("Error returned %d", got)
		}
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
			t.Fatalf("code %q message %q: invalid JSON %s: %v", code, msg, ctx.Response.Body(), err)
		}
		if utf8.ValidString(msg) && body.Error.Message != msg || utf8.ValidString(code) && body.Error.Code != code {
			t.Fatalf("round trip: %q/%q → %q/%q", code, msg, body.Error.Code, body.Error.Message)
		}
		if ct := string(ctx.Response.Header.ContentType()); ct != ContentType {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}
