package chhttp

import (
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// watchDisconnect calls gone once if the peer of conn closes or resets the
// connection before stop is called. fasthttp does not report that: a
// handler runs on the connection's goroutine, nobody reads the socket
// meanwhile, and RequestCtx.Done only closes at server shutdown. So a
// goroutine waits in the runtime's poller for the socket to become readable
// and then asks the kernel whether the peer hung up (POLLRDHUP) or the
// connection failed. Bytes of a pipelined next request also wake it; they
// are left unread, and it waits again, so fasthttp reads them as usual.
//
// The request body must have been read already (fasthttp's default,
// StreamRequestBody false). stop waits for the goroutine and leaves conn
// without a read deadline; it must be called before the handler returns.
// Connections that are not sockets (tests' in-memory listeners) are not
// watched.
func watchDisconnect(conn net.Conn, gone func()) (stop func()) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return func() {}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	// fasthttp's ReadTimeout deadline, set for reading the request, would
	// end the watch of a statement that runs longer.
	if conn.SetReadDeadline(time.Time{}) != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Returns when the peer is gone, or with a timeout error once stop
		// sets a past deadline.
		_ = raw.Read(func(fd uintptr) bool {
			if peerGone(int(fd)) {
				gone()
				return true
			}
			return false
		})
	}()
	return func() {
		_ = conn.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = conn.SetReadDeadline(time.Time{})
	}
}

// peerGone polls fd without waiting: true if the peer shut down its side
// (POLLRDHUP, also when unread bytes precede the FIN) or the connection
// failed (POLLHUP, POLLERR).
func peerGone(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	for {
		_, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
	}
}
