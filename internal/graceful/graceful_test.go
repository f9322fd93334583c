package graceful

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A connection that never sends a request does not hold up shutdown (before,
// it did until the read deadline), and a request in flight is answered.
func TestShutdownClosesSilentConnectionsAndFinishesRequests(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(raw)
	entered, release := make(chan struct{}), make(chan struct{})
	srv := &fasthttp.Server{ReadTimeout: time.Hour, Handler: func(c *fasthttp.RequestCtx) {
		if string(c.Path()) == "/slow" {
			close(entered)
			<-release
		}
		c.SetBodyString("ok")
	}}
	go srv.Serve(ln)
	url := "http://" + raw.Addr().String()

	// A keep-alive connection that served a request, one that never sent
	// anything, and a request in flight.
	if resp, err := http.Get(url + "/fast"); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	silent, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "ok" {
				err = io.ErrUnexpectedEOF
			}
		}
		slow <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- Shutdown(ctx, srv, ln) }()
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned with a request in flight: %v", err)
	case <-time.After(3 * silentPoll):
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("request in flight during shutdown: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v (a silent connection held it until the deadline)", err)
	}
	// The silent connection was closed by the server.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: read %v, want EOF", err)
	}
}
