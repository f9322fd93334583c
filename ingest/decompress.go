package ingest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// DefaultMaxBodySize is the decompressed body limit used when Decompress is
// given limit ≤ 0: DefaultMaxReadings readings take ~1.3 MB of compact JSON;
// 8 MiB leaves room for pretty-printed bodies and extra fields while bounding
// what one request can make the server hold.
const DefaultMaxBodySize = 8 << 20

// zstdMaxWindow bounds the history a zstd frame may ask the decoder to keep.
// 8 MiB is what the reference encoder uses up to level 19 on large inputs;
// frames asking more (--long, --ultra) are refused rather than letting one
// request reserve hundreds of MiB.
const zstdMaxWindow = 8 << 20

// Decompress returns body decoded according to encoding, the value of a
// Content-Encoding header: "" or "identity", "gzip" (or "x-gzip"), "zstd";
// case and surrounding spaces do not matter. The decompressed size must not
// exceed limit bytes (limit ≤ 0 means DefaultMaxBodySize, not unlimited):
// decoding stops as soon as it would, so a decompression bomb costs at most
// limit bytes of memory.
//
// The result aliases body for identity and otherwise reuses dst's storage
// (dst[:0] grown as needed); it is valid as long as both are. Decompress is
// safe for concurrent use; its gzip readers and zstd decoders are pooled.
//
// Errors wrap ErrUnsupportedEncoding (including lists such as "gzip, br":
// gateways send one coding), ErrTooLarge, or ErrMalformed for a corrupt or
// truncated stream or trailing garbage.
func Decompress(encoding string, body []byte, limit int, dst []byte) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBodySize
	}
	enc := strings.TrimSpace(encoding)
	switch {
	case enc == "" || strings.EqualFold(enc, "identity"):
		if len(body) > limit {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), limit)
		}
		return body, nil
	case strings.EqualFold(enc, "gzip") || strings.EqualFold(enc, "x-gzip"):
		return gunzip(body, limit, dst)
	case strings.EqualFold(enc, "zstd"):
		return unzstd(body, limit, dst)
	}
	return nil, fmt.Errorf("%w: %q (use gzip, zstd or identity)", ErrUnsupportedEncoding, encoding)
}

type gzipReader struct {
	src bytes.Reader // an io.ByteReader, so gzip reads it without a bufio layer
	zr  gzip.Reader
}

var gzipPool sync.Pool

func gunzip(body []byte, limit int, dst []byte) ([]byte, error) {
	g, _ := gzipPool.Get().(*gzipReader)
	if g == nil {
		g = new(gzipReader)
	}
	defer func() {
		g.src.Reset(nil)
		gzipPool.Put(g)
	}()
	g.src.Reset(body)
	if err := g.zr.Reset(&g.src); err != nil {
		return nil, fmt.Errorf("%w: gzip: %s", ErrMalformed, err)
	}
	// The trailer's ISIZE is the size mod 2^32 of the last member: a hint
	// for the first allocation, never trusted beyond limit.
	hint := 0
	if len(body) >= 4 {
		hint = int(binary.LittleEndian.Uint32(body[len(body)-4:]))
	}
	return readLimited(&g.zr, "gzip", hint, limit, dst)
}

type zstdReader struct {
	src bytes.Reader
	d   *zstd.Decoder
}

var zstdPool sync.Pool

func unzstd(body []byte, limit int, dst []byte) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(body); err != nil {
		return nil, fmt.Errorf("%w: zstd: %s", ErrMalformed, err)
	}
	if h.HasFCS && h.FrameContentSize > uint64(limit) {
		return nil, fmt.Errorf("%w: zstd frame of %d bytes, limit %d", ErrTooLarge, h.FrameContentSize, limit)
	}
	z, _ := zstdPool.Get().(*zstdReader)
	if z == nil {
		// Concurrency 1 decodes streams synchronously, without goroutines,
		// so a pooled decoder needs no Close.
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		z = &zstdReader{d: d}
	}
	defer func() {
		_ = z.d.Reset(nil) // drops the reference to body
		z.src.Reset(nil)
		zstdPool.Put(z)
	}()
	z.src.Reset(body)
	if err := z.d.Reset(&z.src); err != nil {
		return nil, fmt.Errorf("%w: zstd: %s", ErrMalformed, err)
	}
	hint := 0
	if h.HasFCS {
		hint = int(h.FrameContentSize)
	}
	return readLimited(z.d, "zstd", hint, limit, dst)
}

// readLimited reads r to EOF into dst[:0], failing with ErrTooLarge as soon
// as more than limit bytes come out. hint is the expected size.
func readLimited(r io.Reader, name string, hint, limit int, dst []byte) ([]byte, error) {
	dst = dst[:0]
	if hint > 0 && cap(dst) < hint {
		dst = make([]byte, 0, min(hint, limit)+1)
	}
	for {
		if len(dst) == cap(dst) {
			if len(dst) > limit {
				return nil, fmt.Errorf("%w: %s body over %d bytes", ErrTooLarge, name, limit)
			}
			grown := make([]byte, len(dst), min(max(2*cap(dst), 4096), limit+1))
			copy(grown, dst)
			dst = grown
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return nil, fmt.Errorf("%w: %s body over %d bytes", ErrTooLarge, name, limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s", ErrMalformed, name, err)
		}
	}
}
