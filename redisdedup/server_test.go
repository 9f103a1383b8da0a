package redisdedup

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

// sharedClient returns a client of the shared Redis, closed when t ends.
func sharedClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	if sharedAddr == "" {
		skipOrFail(t, skipReason)
	}
	rdb := redis.NewClient(&redis.Options{Addr: sharedAddr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
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
	addr     string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
}

// startRedis starts redis-server on a free loopback port with its files in
// dir; with persist, the append-only file is on and fsynced on every write.
func startRedis(bin, dir string, persist bool) (*redisServer, error) {
	var err error
	for range 5 { // the free port may be taken before the server binds it
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		s := &redisServer{bin: bin, dir: dir, persist: persist, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if err = s.start(); err == nil {
			return s, nil
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
		if ping(s.addr) {
			return nil
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

// ping reports whether a Redis at addr answers PING with PONG (not LOADING).
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
