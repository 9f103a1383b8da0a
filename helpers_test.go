package convo

import (
	"bytes"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/require"
)

// Credentials used by the tests; every error and log line is scanned for them.
const (
	testTenant      = "tenant-1"
	testTokenWA     = "tq_tok_wa_SECRET_7f3a"
	testTokenFood   = "tq_tok_food_SECRET_91bc"
	testAppID       = "app1"
	testTalkJSToken = "sk_test_SECRET_5e2d"
)

var testSecrets = []string{testTokenWA, testTokenFood, testTalkJSToken}

// fastRetry keeps retry tests quick.
var fastRetry = RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}

// logBuffer is a goroutine-safe buffer for slog output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type testEnv struct {
	c    *Client
	mt   *httpmock.MockTransport
	logs *logBuffer
}

// newTestEnv builds a client with both providers on a per-test mock
// transport, a debug logger into a buffer, and fast retries.
func newTestEnv(t *testing.T, opts ...Option) *testEnv {
	t.Helper()
	mt := httpmock.NewMockTransport()
	logs := &logBuffer{}
	base := []Option{
		WithTalqui(testTenant,
			PluginConnection{ID: "pc-wa", Token: testTokenWA},
			PluginConnection{ID: "pc-food", Token: testTokenFood}),
		WithTalkJS(testAppID, testTalkJSToken),
		WithHTTPClient(&http.Client{Transport: mt}),
		WithRetry(fastRetry),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	c, err := NewClient(append(base, opts...)...)
	require.NoError(t, err)
	return &testEnv{c: c, mt: mt, logs: logs}
}

// assertNoSecret fails if any configured secret appears in s.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range testSecrets {
		require.NotContains(t, s, sec, "%s leaks a secret", what)
	}
	require.NotContains(t, s, "PluginConnection tq_", "%s leaks an Authorization header", what)
	require.NotContains(t, s, "Bearer sk_", "%s leaks an Authorization header", what)
}
