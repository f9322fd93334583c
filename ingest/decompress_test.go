package ingest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testZstd encodes whole buffers (EncodeAll is safe for concurrent use).
var testZstd, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

// zstdBytes compresses b; withSize=false streams it so that the frame header
// does not declare the content size.
func zstdBytes(t testing.TB, b []byte, withSize bool) []byte {
	t.Helper()
	if withSize {
		return testZstd.EncodeAll(b, nil)
	}
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompress(t *testing.T) {
	body := sampleBody(30)
	bomb := make([]byte, 64<<20) // 64 MiB of zeros: ~64 KiB gzip'd, a few KiB zstd
	gz, zs, zsStream := gzipBytes(t, body), zstdBytes(t, body, true), zstdBytes(t, body, false)
	corrupt := bytes.Clone(gz)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name     string
		encoding string
		in       []byte
		limit    int
		want     []byte
		err      error
	}{
		{"no encoding returns the body", "", body, 1 << 20, body, nil},
		{"identity returns the body", "identity", body, 1 << 20, body, nil},
		{"identity at exactly the limit", "identity", body, len(body), body, nil},
		{"identity one byte over the limit", "identity", body, len(body) - 1, nil, ErrTooLarge},
		{"limit 0 means the default, not unlimited", "identity", make([]byte, DefaultMaxBodySize+1), 0, nil, ErrTooLarge},
		{"gzip", "gzip", gz, 1 << 20, body, nil},
		{"x-gzip is gzip", "x-gzip", gz, 1 << 20, body, nil},
		{"encoding names ignore case and spaces", " GZip ", gz, 1 << 20, body, nil},
		{"gzip at exactly the limit", "gzip", gz, len(body), body, nil},
		{"gzip one byte over the limit", "gzip", gz, len(body) - 1, nil, ErrTooLarge},
		{"gzip of nothing", "gzip", gzipBytes(t, nil), 10, []byte{}, nil},
		{"two gzip members are one body", "gzip", append(gzipBytes(t, body[:100]), gzipBytes(t, body[100:])...), 1 << 20, body, nil},
		{"gzip bomb stops at the limit", "gzip", gzipBytes(t, bomb), 1 << 20, nil, ErrTooLarge},
		{"corrupt gzip", "gzip", corrupt, 1 << 20, nil, ErrMalformed},
		{"truncated gzip", "gzip", gz[:len(gz)-5], 1 << 20, nil, ErrMalformed},
		{"gzip with trailing garbage", "gzip", append(bytes.Clone(gz), "garbage"...), 1 << 20, nil, ErrMalformed},
		{"not gzip at all", "gzip", body, 1 << 20, nil, ErrMalformed},
		{"empty gzip body", "gzip", nil, 1 << 20, nil, ErrMalformed},
		{"zstd with content size", "zstd", zs, 1 << 20, body, nil},
		{"zstd streamed without content size", "ZSTD", zsStream, 1 << 20, body, nil},
		{"zstd at exactly the limit", "zstd", zsStream, len(body), body, nil},
		{"zstd one byte over the limit", "zstd", zsStream, len(body) - 1, nil, ErrTooLarge},
		{"zstd declaring more than the limit is refused up front", "zstd", zstdBytes(t, bomb, true), 1 << 20, nil, ErrTooLarge},
		{"zstd bomb without declared size stops at the limit", "zstd", zstdBytes(t, bomb, false), 1 << 20, nil, ErrTooLarge},
		{"truncated zstd", "zstd", zs[:len(zs)-3], 1 << 20, nil, ErrMalformed},
		{"zstd with trailing garbage", "zstd", append(bytes.Clone(zs), "garbage"...), 1 << 20, nil, ErrMalformed},
		{"not zstd at all", "zstd", body, 1 << 20, nil, ErrMalformed},
		{"brotli is unsupported", "br", body, 1 << 20, nil, ErrUnsupportedEncoding},
		{"deflate is unsupported", "deflate", body, 1 << 20, nil, ErrUnsupportedEncoding},
		{"a list of codings is unsupported", "gzip, identity", gz, 1 << 20, nil, ErrUnsupportedEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice, so the second run uses pooled readers.
			for range 2 {
				got, err := Decompress(tt.encoding, tt.in, tt.limit, nil)
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if err == nil && !bytes.Equal(got, tt.want) {
					t.Fatalf("got %d bytes, want %d", len(got), len(tt.want))
				}
			}
		})
	}
}

func TestDecompressReusesDst(t *testing.T) {
	body := sampleBody(30)
	dst := make([]byte, 0, 64<<10)
	for _, enc := range []string{"gzip", "zstd"} {
		in := gzipBytes(t, body)
		if enc == "zstd" {
			in = zstdBytes(t, body, false)
		}
		got, err := Decompress(enc, in, 1<<20, dst)
		if err != nil {
			t.Fatal(err)
		}
		if &got[0] != &dst[:1][0] {
			t.Errorf("%s: result does not reuse dst", enc)
		}
	}
}
