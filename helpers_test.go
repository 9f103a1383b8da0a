package convo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
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

var testSecrets = []string{testTokenWA, testTokenFood, testTalkJSToken, testSelartiKey}

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

// WithTestApp is the TalkJS app of the external tests: "app", with the
// secret "sk_test_secret".
var WithTestApp = WithTalkJS("app", "sk_test_secret")

// TestEnv is the one harness of the client tests, internal and external
// (exported for convo_test only, like GoroutineCheck): a Client with both
// providers on a per-test httpmock transport, every request recorded, a
// debug logger into a buffer, and fast retries.
type TestEnv struct {
	c    *Client
	hc   *http.Client // the caller's client given to WithHTTPClient
	mt   *httpmock.MockTransport
	logs *logBuffer
	rec  *recorder
}

// NewTestEnv builds the harness; opts come after the defaults, so
// WithTalkJS("app", "sk_test_secret") replaces the TalkJS app.
func NewTestEnv(t testing.TB, opts ...Option) *TestEnv {
	t.Helper()
	mt := httpmock.NewMockTransport()
	rec := &recorder{rt: mt}
	logs := &logBuffer{}
	hc := &http.Client{Transport: rec}
	base := []Option{
		WithTalqui(testTenant,
			PluginConnection{ID: "pc-wa", Token: testTokenWA},
			PluginConnection{ID: "pc-food", Token: testTokenFood}),
		WithTalkJS(testAppID, testTalkJSToken),
		WithHTTPClient(hc),
		WithRetry(fastRetry),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	c, err := NewClient(append(base, opts...)...)
	require.NoError(t, err)
	return &TestEnv{c: c, hc: hc, mt: mt, logs: logs, rec: rec}
}

// Answer makes the mock answer every request with r, and gives the
// client, its transport and the env.
func (e *TestEnv) Answer(r httpmock.Responder) (*Client, *httpmock.MockTransport, *TestEnv) {
	e.mt.RegisterNoResponder(r)
	return e.c, e.mt, e
}

// Client is the client under test.
func (e *TestEnv) Client() *Client { return e.c }

// Transport is the mock behind the client.
func (e *TestEnv) Transport() *httpmock.MockTransport { return e.mt }

// Calls lists the requests the client sent, in order.
func (e *TestEnv) Calls() []Call { return e.rec.all() }

// Call is one request as the transport saw it.
type Call struct {
	Method string
	Path   string // escaped
	Query  string
	Header http.Header
	Body   []byte
}

// recorder keeps every request on its way to the mock.
type recorder struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	calls []Call
}

func (rc *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	rc.mu.Lock()
	rc.calls = append(rc.calls, Call{
		Method: req.Method, Path: req.URL.EscapedPath(), Query: req.URL.RawQuery,
		Header: req.Header.Clone(), Body: body,
	})
	rc.mu.Unlock()
	return rc.rt.RoundTrip(req)
}

func (rc *recorder) all() []Call {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.calls)
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

// CancelOnRetry is a logger that ends a call's context (cancel) the moment
// the pipeline logs that it will wait and retry, so that the context ends
// in the backoff whatever the machine's speed; it logs through h too when
// h is not nil.
func CancelOnRetry(cancel context.CancelFunc, h slog.Handler) *slog.Logger {
	return slog.New(cancelOnRetry{h: h, cancel: cancel})
}

type cancelOnRetry struct {
	h      slog.Handler
	cancel context.CancelFunc
}

func (c cancelOnRetry) Enabled(context.Context, slog.Level) bool { return true }

func (c cancelOnRetry) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "convo: retrying" {
		defer c.cancel()
	}
	if c.h == nil {
		return nil
	}
	return c.h.Handle(ctx, r)
}

func (c cancelOnRetry) WithAttrs(as []slog.Attr) slog.Handler {
	if c.h != nil {
		c.h = c.h.WithAttrs(as)
	}
	return c
}

func (c cancelOnRetry) WithGroup(name string) slog.Handler {
	if c.h != nil {
		c.h = c.h.WithGroup(name)
	}
	return c
}

// expiringContext is a context that ends with context.DeadlineExceeded when
// expire is called: a deadline that passes exactly where a test makes it
// pass (with CancelOnRetry, in the backoff), whatever the machine's speed.
// It reports no deadline and is never done otherwise.
type expiringContext struct {
	context.Context // Background: no deadline, no values
	done            chan struct{}
	once            sync.Once
}

// newExpiringContext gives a context that ends when its expire is called.
func newExpiringContext() *expiringContext {
	return &expiringContext{Context: context.Background(), done: make(chan struct{})}
}

// expire ends the context with context.DeadlineExceeded; later calls do
// nothing.
func (c *expiringContext) expire() { c.once.Do(func() { close(c.done) }) }

// Done is closed once expire is called.
func (c *expiringContext) Done() <-chan struct{} { return c.done }

// Err is context.DeadlineExceeded once expire is called, else nil.
func (c *expiringContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// doneWatcher is a context that reports when its Done is first asked for:
// a call that selects on its context (a waiter for Selarti's token
// exchange) or hands it to the transport has got that far. It is a sync
// point where a test would otherwise sleep and hope.
type doneWatcher struct {
	context.Context
	once  sync.Once
	asked chan struct{} // closed at the first call of Done
}

// watchDone wraps parent in a doneWatcher.
func watchDone(parent context.Context) *doneWatcher {
	return &doneWatcher{Context: parent, asked: make(chan struct{})}
}

// Done closes asked, the first time, and gives the parent's Done.
func (c *doneWatcher) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}
