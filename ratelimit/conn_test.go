package ratelimit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestConnLimiter(t *testing.T) {
	c := NewConnLimiter(ConnOptions{PerAddr: 2, MaxAddrs: 3})
	f := func(ip string, want bool) {
		t.Helper()
		if got := c.Acquire(netip.MustParseAddr(ip)); got != want {
			t.Fatalf("Acquire(%s) = %v, want %v", ip, got, want)
		}
	}
	f("192.0.2.1", true)
	f("::ffff:192.0.2.1", true) // the same IPv4 address, mapped
	f("192.0.2.1", false)
	f("2001:db8:1:2::1", true)
	f("2001:db8:1:2:ffff::9", true) // the same /64
	f("2001:db8:1:2::1%eth0", false)
	f("2001:db8:1:3::1", true) // a third address
	f("198.51.100.7", false)   // a fourth: MaxAddrs
	if got := value(c.limited); got != 3 {
		t.Fatalf("limited_total = %v, want 3", got)
	}
	if value(c.keys) != 3 || value(c.open) != 5 {
		t.Fatalf("keys %v, connections %v; want 3, 5", value(c.keys), value(c.open))
	}
	c.Release(netip.MustParseAddr("192.0.2.1"))
	f("192.0.2.1", true)
	c.Release(netip.MustParseAddr("2001:db8:1:3::1"))
	f("198.51.100.7", true)                       // room for a new address again
	c.Release(netip.MustParseAddr("203.0.113.1")) // never acquired: nothing
	for _, ip := range []string{"192.0.2.1", "192.0.2.1", "2001:db8:1:2::1", "2001:db8:1:2::1", "198.51.100.7"} {
		c.Release(netip.MustParseAddr(ip))
	}
	if len(c.conns) != 0 || value(c.keys) != 0 || value(c.open) != 0 {
		t.Fatalf("after releasing all: %v tracked, keys %v, connections %v", c.conns, value(c.keys), value(c.open))
	}
}

// TestLimitListener opens real TCP connections on 127.0.0.1: beyond
// PerAddr the listener closes them at once, and closing an accepted one
// makes room.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := NewConnLimiter(ConnOptions{PerAddr: 2})
	ln := LimitListener(inner, lim)
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for range accepted {
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c: a read sees EOF
	// (or a reset) instead of waiting.
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	c1, c2 := dial(), dial()
	s1, s2 := <-accepted, <-accepted
	c3 := dial()
	if !closedByServer(c3) {
		t.Fatal("a third connection from 127.0.0.1 stays open")
	}
	if closedByServer(c1) || closedByServer(c2) {
		t.Fatal("an accepted connection was closed")
	}
	localhost := netip.MustParseAddr("127.0.0.1")
	if n := lim.Open(localhost); n != 2 || value(lim.limited) != 1 {
		t.Fatalf("%d open, %v refused; want 2, 1", n, value(lim.limited))
	}
	// Closing an accepted connection releases its count, once.
	s1.Close()
	s1.Close()
	if n := lim.Open(localhost); n != 1 {
		t.Fatalf("%d open after a close, want 1", n)
	}
	c4 := dial()
	s4 := <-accepted
	if _, err := c4.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s4, make([]byte, 1)); err != nil {
		t.Fatalf("the connection accepted after a close: %v", err)
	}
	s2.Close()
	s4.Close()
	if n := lim.Open(localhost); n != 0 || len(lim.conns) != 0 {
		t.Fatalf("%d open after closing all, %d addresses tracked", n, len(lim.conns))
	}
}
