// Package graceful stops a fasthttp server without waiting on connections
// that never sent a request.
//
// fasthttp's Shutdown closes the listener, closes keep-alive connections
// between requests, and waits for the rest. A connection accepted but never
// written to counts among the rest: fasthttp marks it active before its
// first request arrives, so Shutdown waits until the read deadline
// (ReadTimeout) or the client gives up — net/http's transport, which dials
// spare connections under concurrency and parks the unused ones, closes
// them after 90 s. Such a connection carries no request, so closing it
// loses nothing; Listener tracks them and Shutdown closes them.
package graceful

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Listener wraps a net.Listener and tracks the connections it accepted
// until they close, and whether each has sent anything yet.
type Listener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*conn]struct{}
}

// Listen wraps ln.
func Listen(ln net.Listener) *Listener {
	return &Listener{Listener: ln, conns: map[*conn]struct{}{}}
}

// Accept accepts a connection and tracks it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &conn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// closeSilent closes the connections that have not sent a byte, and
// returns how many it closed.
func (l *Listener) closeSilent() int {
	l.mu.Lock()
	var silent []*conn
	for c := range l.conns {
		if !c.heard.Load() {
			silent = append(silent, c)
		}
	}
	l.mu.Unlock()
	for _, c := range silent {
		c.Close()
	}
	return len(silent)
}

type conn struct {
	net.Conn
	l     *Listener
	heard atomic.Bool // a byte arrived
	once  sync.Once
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.heard.Load() {
		c.heard.Store(true)
	}
	return n, err
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// silentPoll is how often Shutdown closes connections that stayed silent:
// one accepted just before the listener closed may still be on its way.
const silentPoll = 100 * time.Millisecond

// Shutdown stops srv, which serves ln: no new connections, requests in
// flight answered, and connections that never sent a request closed. It
// returns ctx's error if requests are still in flight when ctx ends.
func Shutdown(ctx context.Context, srv *fasthttp.Server, ln *Listener) error {
	done := make(chan error, 1)
	go func() { done <- srv.ShutdownWithContext(ctx) }()
	t := time.NewTicker(silentPoll)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
			ln.closeSilent()
		}
	}
}
