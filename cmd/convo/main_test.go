package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// Credentials of the fakes the tests run: made up, long enough to be found
// if any output leaked them.
const (
	testToken  = "pct_secret_token_do_not_print_4f1c"
	testSecret = "sk_test_secret_do_not_print_9b2e"
)

// syncBuffer is a bytes.Buffer safe for a command writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is a finished run.
type result struct {
	code           int
	stdout, stderr string
}

// envVars are the variables the commands read.
var envVars = []string{
	"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN", "TALQUI_URL",
	"TALKJS_APP_ID", "TALKJS_SECRET_KEY", "TALKJS_URL", "SELARTI_API_KEY", "SELARTI_URL", "SELARTI_TASK_ID",
}

// envOf sets the process environment to m (every variable the commands
// read that m lacks is cleared: convo.WithEnv reads the process's) and
// turns m into run's env function.
func envOf(t *testing.T, m map[string]string) func(string) string {
	for _, k := range envVars {
		t.Setenv(k, m[k])
	}
	return func(k string) string { return m[k] }
}

// runCmd runs the command to its end and checks that no secret was printed.
func runCmd(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, &stdout, &stderr, envOf(t, env))
	r := result{code, stdout.String(), stderr.String()}
	assertNoSecret(t, r.stdout, r.stderr)
	return r
}

func assertNoSecret(t *testing.T, outs ...string) {
	t.Helper()
	for _, out := range outs {
		for _, s := range []string{testToken, testSecret} {
			assert.NotContains(t, out, s, "a secret was printed")
		}
	}
}

// started is a long-running command (fake, listen) running in the test.
type started struct {
	stdout, stderr *syncBuffer
	stop           context.CancelFunc
	done           chan int
}

func startCmd(t *testing.T, env map[string]string, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{stdout: &syncBuffer{}, stderr: &syncBuffer{}, stop: cancel, done: make(chan int, 1)}
	getenv := envOf(t, env)
	go func() { s.done <- run(ctx, args, s.stdout, s.stderr, getenv) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// await waits until re matches in out and returns its first group.
func await(t *testing.T, out *syncBuffer, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	require.Eventually(t, func() bool {
		m = rx.FindStringSubmatch(out.String())
		return m != nil
	}, 10*time.Second, 5*time.Millisecond, "no %q in %q", re, out.String())
	if len(m) > 1 {
		return m[1]
	}
	return m[0]
}

// wait stops the command as a signal would and returns its exit code.
func (s *started) wait(t *testing.T) int {
	t.Helper()
	s.stop()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not stop on its signal")
		return -1
	}
}

// newFake is a convotest server with the test's secrets and the
// environment that points the commands at it.
func newFake(t *testing.T) (*convotest.Server, map[string]string) {
	t.Helper()
	srv := convotest.NewServer(
		convotest.WithConnections(convo.PluginConnection{ID: "pc-test", Token: testToken}),
		convotest.WithTalkJSApp("app-test", testSecret),
	)
	t.Cleanup(srv.Close)
	return srv, map[string]string{
		"TALQUI_URL": srv.URL, "TALQUI_TENANT": srv.TenantID(),
		"TALQUI_CONNECTION_ID": "pc-test", "TALQUI_TOKEN": testToken,
		"TALKJS_URL": srv.URL, "TALKJS_APP_ID": "app-test", "TALKJS_SECRET_KEY": testSecret,
		"SELARTI_URL": srv.URL + "/api/1.1", "SELARTI_API_KEY": srv.SelartiKey(), "SELARTI_TASK_ID": srv.SelartiTaskID(),
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil, {"nope"}, {"session"}, {"session", "stop"}, {"talkjs", "receive"},
		{"fake", "-port", "1"}, {"fake", "stray"}, {"listen"},
	} {
		r := runCmd(t, nil, args...)
		assert.Equal(t, exitUsage, r.code, "convo %v", args)
		assert.NotEmpty(t, r.stderr, "convo %v", args)
		assert.Empty(t, r.stdout, "convo %v", args)
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"fake", "-h"}, {"listen", "-h"}, {"session", "-h"}, {"session", "start", "-h"},
		{"talkjs", "-h"}, {"talkjs", "send", "-h"}, {"selarti", "-h"}, {"selarti", "send", "-h"},
	} {
		r := runCmd(t, nil, args...)
		assert.Equal(t, exitOK, r.code, "convo %v", args)
		assert.Contains(t, r.stdout, "convo", "convo %v", args)
		assert.Empty(t, r.stderr, "convo %v", args)
	}
	r := runCmd(t, nil, "session", "start", "-h")
	for _, f := range []string{"-channel", "-phone", "-model", "-var", "-label", "-text", "-order", "-contact", "-extra", "-dry-run", "-timeout"} {
		assert.Contains(t, r.stdout, f)
	}
	assert.True(t, strings.HasPrefix(r.stdout, "usage: convo session start"))
}
