//go:build !cgo

package engine

// A build without cgo has no dlopen, so it cannot load libchdb.so: the
// session and result types below keep the package compiling, and every
// entry point that needs the library (Open, and through it store.Open
// without --clickhouse and `fleetscope engine`) answers ErrUnavailable.

// available reports whether this build can load the engine: without cgo it
// cannot.
func available() error { return ErrUnavailable }

// session stands in for a chDB connection; none is ever opened.
type session struct {
	settings map[string]string
	database string
}

func openSession(string) (*session, error) { return nil, ErrUnavailable }

func (s *session) isOpen() bool { return false }

func (s *session) close() {}

func (s *session) query(string, string, map[string]string) (result, error) {
	return result{}, ErrUnavailable
}

// result stands in for an engine answer; it is always empty.
type result struct{}

func (result) bytes() []byte { return nil }

func (result) free() {}
