package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ErrUnavailable marks a failure that retrying can cure: ClickHouse could
// not be reached, or was overloaded (too many queries, out of memory, too
// many parts, a timeout). Every error a Store method returns for such a
// cause wraps it, so callers answer 503 with Retry-After (or back off) for
// these and treat anything else — a syntax error, an unknown table — as a
// bug that retrying repeats.
var ErrUnavailable = errors.New("store: ClickHouse unavailable")

// transientCodes are the ClickHouse exception codes of an overloaded or
// unreachable server, as opposed to a statement's own mistakes.
var transientCodes = map[int32]bool{
	159: true, // TIMEOUT_EXCEEDED
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	203: true, // NO_FREE_CONNECTION
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	225: true, // NO_ZOOKEEPER
	236: true, // ABORTED
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	279: true, // ALL_CONNECTION_TRIES_FAILED
	394: true, // QUERY_WAS_CANCELLED
	425: true, // SYSTEM_ERROR
	999: true, // KEEPER_EXCEPTION
}

// Transient returns err wrapped in ErrUnavailable when its cause is one
// retrying can cure, err itself otherwise (nil for nil). Store methods
// apply it already; callers use it for errors of row iteration (Next, Scan,
// Err), which reach them directly from clickhouse-go.
func Transient(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !transient(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func transient(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return transientCodes[ex.Code]
	}
	var httpErr *clickhouse.HTTPError
	if errors.As(err, &httpErr) {
		return httpErr.StatusCode >= 500
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, clickhouse.ErrAcquireConnTimeout),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &netErr):
		return true
	}
	return false
}
