package redisdedup

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tests run against a real redis-server:
//
//   - CONVO_REDIS_ADDR (host:port) names one that is running (CI starts one);
//   - otherwise TestMain starts one on a free loopback port when a
//     redis-server binary is on PATH (or at REDIS_SERVER), and stops it after;
//   - otherwise the tests that need Redis skip, saying why, unless
//     CONVO_REDIS_REQUIRED is set, as CI sets it: then they fail.
//
// The restart test always starts its own server, since it stops it.
var (
	sharedAddr string
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	redis.SetLogger(quietLogger{}) // the outage tests make go-redis log every failed dial
	// The handlers log every store failure of the fault tests; the tests
	// that read logs give a logger of their own.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if addr := os.Getenv("CONVO_REDIS_ADDR"); addr != "" {
		sharedAddr = addr
		return m.Run()
	}
	bin, err := redisBinary()
	if err != nil {
		skipReason = err.Error()
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "redisdedup-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := startRedis(bin, dir, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisdedup tests: starting redis-server:", err)
		return 1
	}
	defer srv.stop(syscall.SIGTERM)
	sharedAddr = srv.addr
	return m.Run()
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// redisBinary finds redis-server.
func redisBinary() (string, error) {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("no redis-server binary found on PATH (install the redis-server package, " +
			"or set CONVO_REDIS_ADDR to a running Redis): skipping the Redis tests")
	}
	return p, nil
}

// skipOrFail skips t for reason, or fails it when CONVO_REDIS_REQUIRED is set.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CONVO_REDIS_REQUIRED") != "" {
		t.Fatalf("CONVO_REDIS_REQUIRED is set: %s", reason)
	}
	t.Skip(reason)
}

// sharedClient returns a client of the shared Redis, closed when t ends. It
// has ContextTimeoutEnabled, as the README advises (the handlers then call
// the store directly); the fault tests' own clients keep go-redis's
// defaults.
func sharedClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	if sharedAddr == "" {
		skipOrFail(t, skipReason)
	}
	// PoolTimeout: the tests that make thousands of calls at once queue
	// for the pool's connections, longer than the default 4s on a loaded
	// machine.
	rdb := redis.NewClient(&redis.Options{Addr: sharedAddr, PoolTimeout: 30 * time.Second, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// inTime runs try, which sets keys that expire after ttl, does what must
// hold until they do, and returns the checks of what it saw; they are made
// when try ended within ttl. A run that took longer shows nothing (the
// keys may have expired meanwhile), as a loaded machine's may: try then
// runs again with a ttl 4 times as long, up to 3 more times.
func inTime(t *testing.T, ttl time.Duration, try func(ttl time.Duration) (check func())) {
	t.Helper()
	for i := 0; ; i++ {
		start := time.Now()
		check := try(ttl)
		// Redis's clock is not this one: a tenth of the ttl as a margin.
		took := time.Since(start)
		if took < ttl-ttl/10 {
			check()
			return
		}
		if i == 3 {
			t.Fatalf("took %v with a ttl of %v: even the longest try was too slow to check anything", took, ttl)
		}
		t.Logf("took %v with a ttl of %v: trying again with %v", took, ttl, 4*ttl)
		ttl *= 4
	}
}

// waitExpired waits until key has expired: PTTL answers -2, no such key
// (reading an expired key deletes it). It fails t when the key has no
// expiry or is still there after 10 s.
func waitExpired(t *testing.T, rdb redis.UniversalClient, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ttl, err := rdb.PTTL(context.Background(), key).Result()
		switch {
		case err != nil:
			t.Fatalf("PTTL %s: %v", key, err)
		case ttl == -2:
			return
		case ttl == -1:
			t.Fatalf("%s has no expiry", key)
		case time.Now().After(deadline):
			t.Fatalf("%s still there after 10s, PTTL %v", key, ttl)
		}
		time.Sleep(min(ttl, 20*time.Millisecond))
	}
}

// waitDone waits until key holds "done", or fails t after 20 s.
func waitDone(t *testing.T, rdb redis.UniversalClient, key string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := rdb.Get(context.Background(), key).Result()
		if err == nil && v == "done" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q, %v after 20s; want done", key, v, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testPrefix is a key prefix of its own for each test, so that tests and
// runs that share a Redis do not meet.
func testPrefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "convo:test:" + t.Name() + ":" + hex.EncodeToString(b[:]) + ":"
}

// redisServer is a redis-server process the tests started.
type redisServer struct {
	bin, dir string
	persist  bool
	extra    []string // more arguments: replicaof, cluster settings
	sentinel string   // for a Sentinel: the address of the master it monitors
	addr     string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
}

// startRedis starts redis-server on a free loopback port with its files in
// dir; with persist, the append-only file is on and fsynced on every write.
// extra are more arguments.
func startRedis(bin, dir string, persist bool, extra ...string) (*redisServer, error) {
	return startServer(&redisServer{bin: bin, dir: dir, persist: persist, extra: extra})
}

// startServer starts proto on a free loopback port.
func startServer(proto *redisServer) (*redisServer, error) {
	var err error
	for range 5 { // the free port may be taken before the server binds it
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		s := *proto
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.dir = filepath.Join(proto.dir, strconv.Itoa(port)) // AOF and nodes.conf apart
		if err = os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, err
		}
		if err = s.start(); err == nil {
			return &s, nil
		}
	}
	return nil, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the server on s.addr and waits until it answers PING.
func (s *redisServer) start() error {
	_, port, _ := net.SplitHostPort(s.addr)
	logfile := filepath.Join(s.dir, "redis-"+port+".log")
	args := []string{
		"--port", port, "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--daemonize", "no", "--logfile", logfile,
	}
	if s.persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.extra...)
	if s.sentinel != "" {
		// A Sentinel rewrites its file: written once, kept across restarts.
		conf := filepath.Join(s.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil {
			host, mport, _ := net.SplitHostPort(s.sentinel)
			m := sentinelMaster
			text := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nlogfile %s\n", port, s.dir, logfile) +
				fmt.Sprintf("sentinel monitor %s %s %s 1\n", m, host, mport) +
				fmt.Sprintf("sentinel down-after-milliseconds %s %d\n", m, sentinelDownAfter.Milliseconds()) +
				fmt.Sprintf("sentinel failover-timeout %s %d\n", m, sentinelFailoverTimeout.Milliseconds())
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				return err
			}
		}
		args = []string{conf, "--sentinel"}
	}
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan<- struct{}) { _ = cmd.Wait(); close(exited) }(s.cmd, s.exited)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logfile)
			return fmt.Errorf("redis-server exited: %v\n%s", s.cmd.ProcessState, tail(string(log)))
		default:
		}
		if pid, ok := serverPID(s.addr); ok {
			if pid == s.cmd.Process.Pid {
				return nil
			}
			// Another server took the port before ours could bind it; ours
			// is exiting.
			s.stop(syscall.SIGKILL)
			return fmt.Errorf("another redis-server (pid %d) answers on %s", pid, s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop(syscall.SIGKILL)
	return errors.New("redis-server did not answer PING in 15s")
}

// stop sends sig to the server and waits for it to exit (killing it after
// 10 seconds).
func (s *redisServer) stop(sig syscall.Signal) {
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// serverPID returns the process id of the Redis at addr, once it answers
// PING with PONG (not LOADING).
func serverPID(addr string) (pid int, ok bool) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\nINFO server\r\n")); err != nil {
		return 0, false
	}
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+PONG") {
		return 0, false
	}
	head, err := r.ReadString('\n') // $<length of the bulk string>
	if err != nil || !strings.HasPrefix(head, "$") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n < 0 {
		return 0, false
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(info), "\r\n") {
		if v, found := strings.CutPrefix(line, "process_id:"); found {
			pid, err := strconv.Atoi(v)
			return pid, err == nil
		}
	}
	return 0, false
}
