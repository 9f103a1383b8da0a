// Package dialtrap is the proxy trap the tests of the command and the
// examples run under: a test sees through it that a program dialled no
// host but a loopback one. It uses the standard library only (cmd/convo
// does) and serves tests alone.
package dialtrap

import (
	"bufio"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

// Trap is a proxy that HTTP_PROXY and HTTPS_PROXY point at from Start on,
// so that a request to any host but a loopback one (which the standard
// proxy rules never send through a proxy) comes here, is recorded
// ("CONNECT api.talkjs.com:443 HTTP/1.1") and is refused with a 403.
type Trap struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
	hit  chan struct{} // gets a value at each request, without blocking
}

// Start listens on a loopback port and points the proxy variables of the
// process at it (NO_PROXY is unset). Call it from TestMain, before the
// tests run, and Close after them.
func Start() *Trap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	t := &Trap{ln: ln, hit: make(chan struct{}, 1)}
	go t.serve()
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		os.Setenv(k, "http://"+ln.Addr().String())
	}
	os.Unsetenv("NO_PROXY")
	os.Unsetenv("no_proxy")
	return t
}

// Close stops the trap.
func (t *Trap) Close() error { return t.ln.Close() }

func (t *Trap) serve() {
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			line, _ := bufio.NewReader(conn).ReadString('\n')
			t.mu.Lock()
			t.seen = append(t.seen, strings.TrimSpace(line))
			t.mu.Unlock()
			select {
			case t.hit <- struct{}{}:
			default:
			}
			_, _ = conn.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		}()
	}
}

// Requests gives the first line of each request that reached the trap
// since the last Reset.
func (t *Trap) Requests() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.seen...)
}

// Hit receives a value once a request has reached the trap (one value
// for any number of requests until it is received or Reset).
func (t *Trap) Hit() <-chan struct{} { return t.hit }

// Reset forgets what reached the trap.
func (t *Trap) Reset() {
	t.mu.Lock()
	t.seen = nil
	t.mu.Unlock()
	select {
	case <-t.hit:
	default:
	}
}

// AssertNone fails tb if anything reached the trap.
func (t *Trap) AssertNone(tb testing.TB) {
	tb.Helper()
	if got := t.Requests(); len(got) > 0 {
		tb.Errorf("dialled a host other than loopback: %q", got)
	}
}
