package ratelimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnOptions configure a ConnLimiter. The zero value is valid.
type ConnOptions struct {
	// Name labels the limiter's metrics; unique per Metrics. Empty: "conn".
	Name string
	// PerAddr is how many connections one client address may hold open;
	// 0 or less means the default, 128: a browser opens at most 6 per host
	// and an office behind one NAT address a few dozen, while gateways
	// behind carrier-grade NAT share addresses too — a deployment whose
	// gateways do raises it.
	PerAddr int
	// MaxAddrs bounds the client addresses holding connections at once; a
	// connection from a new address beyond it is refused. 0 or less means
	// the default, 100 000, above the file descriptors a server is given,
	// so it binds only if the descriptor limit was raised for a flood.
	MaxAddrs int
	// Metrics receives the limiter's series; nil: unregistered ones.
	Metrics *Metrics
}

// ConnLimiter counts open connections per client address. IPv6 addresses
// count per /64, the block one subscriber gets (an attacker has all of
// it); IPv4 and IPv4-mapped addresses count per address. An address is
// tracked only while it holds a connection, so memory follows open
// connections and MaxAddrs bounds it. Its methods are safe for concurrent
// use.
type ConnLimiter struct {
	perAddr  int32
	maxAddrs int

	mu    sync.Mutex
	conns map[netip.Addr]int32

	limited    prometheus.Counter
	keys, open prometheus.Gauge
}

// NewConnLimiter returns a ConnLimiter.
func NewConnLimiter(opts ConnOptions) *ConnLimiter {
	if opts.Name == "" {
		opts.Name = "conn"
	}
	if opts.PerAddr <= 0 {
		opts.PerAddr = 128
	}
	if opts.MaxAddrs <= 0 {
		opts.MaxAddrs = 100_000
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	opts.Metrics.claim(opts.Name)
	c := &ConnLimiter{
		perAddr:  int32(min(opts.PerAddr, 1<<30)),
		maxAddrs: opts.MaxAddrs,
		conns:    make(map[netip.Addr]int32),
		limited:  opts.Metrics.limited.WithLabelValues(opts.Name),
		keys:     opts.Metrics.keys.WithLabelValues(opts.Name),
		open:     opts.Metrics.connections.WithLabelValues(opts.Name),
	}
	c.keys.Set(0)
	c.open.Set(0)
	return c
}

// addrKey is the address connections count under: the /64 of an IPv6
// address, an IPv4 address as itself, without zone.
func addrKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Acquire counts a connection from ip and reports whether it is within the
// limits; only then must the caller Release it when the connection closes.
func (c *ConnLimiter) Acquire(ip netip.Addr) bool {
	k := addrKey(ip)
	c.mu.Lock()
	n, found := c.conns[k]
	if n >= c.perAddr || (!found && len(c.conns) >= c.maxAddrs) {
		c.mu.Unlock()
		c.limited.Inc()
		return false
	}
	c.conns[k] = n + 1
	c.mu.Unlock()
	if !found {
		c.keys.Inc()
	}
	c.open.Inc()
	return true
}

// Release ends a connection Acquire allowed.
func (c *ConnLimiter) Release(ip netip.Addr) {
	k := addrKey(ip)
	c.mu.Lock()
	n, found := c.conns[k]
	if !found {
		c.mu.Unlock()
		return
	}
	if n <= 1 {
		delete(c.conns, k)
	} else {
		c.conns[k] = n - 1
	}
	c.mu.Unlock()
	if n <= 1 {
		c.keys.Dec()
	}
	c.open.Dec()
}

// Open returns the connections ip's address (its /64 for IPv6) holds.
func (c *ConnLimiter) Open(ip netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.conns[addrKey(ip)])
}

// LimitListener returns a listener that accepts from ln and closes at once
// every connection c refuses, so a client address never holds more than
// c's PerAddr connections; the returned connections release their count
// when closed (the first Close). Connections whose remote address is not
// an IP address (Unix sockets) are passed through uncounted. The returned
// connections are not *net.TCPConn: code that type-asserts one (to set
// keep-alives, say) must do so on ln's side, or set them with a
// net.ListenConfig.
func LimitListener(ln net.Listener, c *ConnLimiter) net.Listener {
	return &limitListener{Listener: ln, lim: c}
}

type limitListener struct {
	net.Listener
	lim *ConnLimiter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := remoteIP(conn.RemoteAddr())
		if !ok {
			return conn, nil
		}
		if !l.lim.Acquire(ip) {
			conn.Close()
			continue
		}
		return &limitConn{Conn: conn, lim: l.lim, ip: ip}, nil
	}
}

func remoteIP(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip := a.AddrPort().Addr()
		return ip, ip.IsValid()
	case nil:
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr(), true
}

type limitConn struct {
	net.Conn
	lim    *ConnLimiter
	ip     netip.Addr
	closed atomic.Bool
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.lim.Release(c.ip)
	}
	return err
}
