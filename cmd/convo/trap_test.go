package main

import (
	"bufio"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

// trap is the proxy of every test of this package: HTTP_PROXY and
// HTTPS_PROXY point at it from TestMain on, so a request to any host but
// a loopback one (which the standard proxy rules never send through a
// proxy) comes here, is recorded ("CONNECT api.talkjs.com:443") and is
// refused. It is how the tests see that nothing dials a real host.
var trap *dialTrap

type dialTrap struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
	hit  chan struct{} // gets a value at each request, without blocking
}

func TestMain(m *testing.M) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	trap = &dialTrap{ln: ln, hit: make(chan struct{}, 1)}
	go trap.serve()
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		os.Setenv(k, "http://"+ln.Addr().String())
	}
	os.Unsetenv("NO_PROXY")
	os.Unsetenv("no_proxy")
	code := m.Run()
	ln.Close()
	os.Exit(code)
}

func (d *dialTrap) serve() {
	for {
		conn, err := d.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			line, _ := bufio.NewReader(conn).ReadString('\n')
			d.mu.Lock()
			d.seen = append(d.seen, strings.TrimSpace(line))
			d.mu.Unlock()
			select {
			case d.hit <- struct{}{}:
			default:
			}
			_, _ = conn.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		}()
	}
}

// requests gives what reached the trap so far.
func (d *dialTrap) requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.seen...)
}

// reset forgets what reached the trap.
func (d *dialTrap) reset() {
	d.mu.Lock()
	d.seen = nil
	d.mu.Unlock()
	select {
	case <-d.hit:
	default:
	}
}

// assertNoDial fails t if anything reached the trap.
func assertNoDial(t *testing.T) {
	t.Helper()
	if got := trap.requests(); len(got) > 0 {
		t.Errorf("dialled a host other than loopback: %q", got)
	}
}
