package convo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	talquiSessionsURL = "https://api.talqui.chat/tenants/tenant-1/sessions"
	talkjsUserURL     = "https://api.talkjs.com/v1/app1/users/u1"
)

// timeoutError is what a transport reports when an attempt times out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "net/http: timeout awaiting response headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func dialError() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "connection refused", Addr: "127.0.0.1:1"}}
}

func statusResponder(code int, header ...string) httpmock.Responder {
	r := httpmock.NewStringResponder(code, `{"message":"fault"}`)
	for i := 0; i+1 < len(header); i += 2 {
		r = r.HeaderSet(http.Header{header[i]: {header[i+1]}})
	}
	return r
}

// safeCall is a GET through the pipeline: safe to repeat.
func safeCall(ctx context.Context, c *Client) error {
	var out map[string]any
	return c.do(ctx, &request{
		api: c.talkjs, method: http.MethodGet,
		path: "/users/{userID}", params: []string{"u1"}, out: &out,
	})
}

func startCall(ctx context.Context, c *Client) error {
	_, err := c.Sessions.Start(ctx, WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "+55 27 99999-9999", Text: "Hi"})
	return err
}

func TestRetryRules(t *testing.T) {
	// fastRetry allows 3 retries: 4 tries at most.
	cases := []struct {
		name      string
		responder httpmock.Responder
		safe      int   // requests seen for a GET
		start     int   // requests seen for a session start
		is        error // the error class, both calls
		unknown   bool  // the session start error matches ErrOutcomeUnknown
	}{
		{"dial failure", httpmock.NewErrorResponder(dialError()), 4, 4, nil, false},
		{"429 without Retry-After", statusResponder(429), 4, 4, ErrRateLimited, false},
		{"429 with Retry-After 0", statusResponder(429, "Retry-After", "0"), 4, 4, ErrRateLimited, false},
		{"500", statusResponder(500), 4, 1, ErrServer, true},
		{"502", statusResponder(502), 4, 1, ErrServer, true},
		{"503", statusResponder(503), 4, 1, ErrServer, true},
		{"504", statusResponder(504), 4, 1, ErrServer, true},
		{"reset after write", httpmock.NewErrorResponder(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), 4, 1, syscall.ECONNRESET, true},
		{"EOF", httpmock.NewErrorResponder(io.EOF), 4, 1, io.EOF, true},
		{"per-attempt timeout", httpmock.NewErrorResponder(timeoutError{}), 4, 1, nil, true},
		{"408", statusResponder(408), 4, 1, nil, true},
		{"400", statusResponder(400), 1, 1, ErrInvalidRequest, false},
		{"404", statusResponder(404), 1, 1, ErrNotFound, false},
		{"501", statusResponder(501), 1, 1, ErrServer, false},
	}
	// A redirect is never followed nor repeated; it answered a request that
	// reached the server, so a session start may have been applied.
	for _, code := range []int{301, 302, 303, 307, 308} {
		cases = append(cases, struct {
			name      string
			responder httpmock.Responder
			safe      int
			start     int
			is        error
			unknown   bool
		}{fmt.Sprint(code), statusResponder(code, "Location", redirectTarget), 1, 1, nil, true})
	}
	for _, tc := range cases {
		t.Run(tc.name+"/safe", func(t *testing.T) {
			env := NewTestEnv(t)
			env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, tc.responder)
			err := safeCall(context.Background(), env.c)
			require.Error(t, err)
			assert.Equal(t, tc.safe, env.mt.GetTotalCallCount())
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			checkAttempts(t, err, tc.safe)
		})
		t.Run(tc.name+"/start", func(t *testing.T) {
			env := NewTestEnv(t)
			env.mt.RegisterResponder(http.MethodPost, talquiSessionsURL, tc.responder)
			err := startCall(context.Background(), env.c)
			require.Error(t, err)
			assert.Equal(t, tc.start, env.mt.GetTotalCallCount())
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.Equal(t, tc.unknown, errors.Is(err, ErrOutcomeUnknown), "ErrOutcomeUnknown: %v", err)
			checkAttempts(t, err, tc.start)
		})
	}
}

// checkAttempts asserts the attempt count an error reports.
func checkAttempts(t *testing.T, err error, n int) {
	t.Helper()
	var ae *APIError
	if errors.As(err, &ae) {
		assert.Equal(t, n, ae.Attempts)
		return
	}
	if n > 1 {
		assert.Contains(t, err.Error(), fmt.Sprintf("after %d attempts", n))
	} else {
		assert.NotContains(t, err.Error(), "attempts")
	}
}

func TestRetryThenSuccess(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL,
		statusResponder(503).Then(statusResponder(429)).Then(httpmock.NewStringResponder(200, `{"id":"u1"}`)))
	require.NoError(t, safeCall(context.Background(), env.c))
	assert.Equal(t, 3, env.mt.GetTotalCallCount())
}

func TestMaxRetriesZeroMeansOneTry(t *testing.T) {
	env := NewTestEnv(t, WithRetry(RetryPolicy{MaxRetries: 0}))
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, statusResponder(503))
	err := safeCall(context.Background(), env.c)
	assert.ErrorIs(t, err, ErrServer)
	assert.Equal(t, 1, env.mt.GetTotalCallCount())
}

func TestRetryAfterSecondsHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a real Retry-After of 1 to 2 s: runs without -short")
	}
	env := NewTestEnv(t, WithRetry(RetryPolicy{MaxRetries: 1, MinWait: time.Millisecond, MaxWait: 3 * time.Second}))
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL,
		statusResponder(429, "Retry-After", "1").Then(httpmock.NewStringResponder(200, `{}`)))
	start := time.Now()
	require.NoError(t, safeCall(context.Background(), env.c))
	waited := time.Since(start)
	assert.Equal(t, 2, env.mt.GetTotalCallCount())
	assert.GreaterOrEqual(t, waited, time.Second)
	assert.Less(t, waited, 2*time.Second)
}

func TestRetryAfterHTTPDateHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a real Retry-After of 1 to 2 s: runs without -short")
	}
	env := NewTestEnv(t, WithRetry(RetryPolicy{MaxRetries: 1, MinWait: time.Millisecond, MaxWait: 5 * time.Second}))
	// An HTTP date has a one-second resolution: the wait it asks for is
	// measured from the start of the call, not assumed (1 to 2 s).
	date := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second)
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL,
		statusResponder(503, "Retry-After", date.Format(http.TimeFormat)).Then(httpmock.NewStringResponder(200, `{}`)))
	start := time.Now()
	require.NoError(t, safeCall(context.Background(), env.c))
	waited := time.Since(start)
	assert.Equal(t, 2, env.mt.GetTotalCallCount())
	want := date.Sub(start) // on the wall clock, as the pipeline reads the date
	assert.GreaterOrEqual(t, waited, want-10*time.Millisecond, "waited until the date")
	assert.Less(t, waited, want+time.Second)
}

func TestRetryAfterAboveMaxWaitReturnsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		code int
		is   error
	}{{429, ErrRateLimited}, {503, ErrServer}} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			env := NewTestEnv(t) // MaxWait 5 ms
			env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, statusResponder(tc.code, "Retry-After", "120"))
			start := time.Now()
			err := safeCall(context.Background(), env.c)
			assert.Less(t, time.Since(start), 500*time.Millisecond)
			assert.Equal(t, 1, env.mt.GetTotalCallCount())
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.ErrorIs(t, err, tc.is)
			assert.Equal(t, 120*time.Second, ae.RetryAfter)
			assert.Equal(t, 1, ae.Attempts)
		})
	}
}

func TestContextEndsDuringWait(t *testing.T) {
	// The deadline passes in the backoff (10 s at least), as soon as the
	// retry is logged, whatever the machine's speed: a real 50 ms deadline
	// could pass before the first attempt, or a loaded machine could take
	// longer than a tight bound to return.
	ctx := newExpiringContext()
	env := NewTestEnv(t, WithRetry(RetryPolicy{MaxRetries: 3, MinWait: 10 * time.Second, MaxWait: 30 * time.Second}),
		WithLogger(CancelOnRetry(ctx.expire, nil)))
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, statusResponder(503))
	start := time.Now()
	err := safeCall(ctx, env.c)
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, elapsed, 5*time.Second, "returned after %s: the backoff was waited out", elapsed)
	assert.Equal(t, 1, env.mt.GetTotalCallCount())
	assert.ErrorIs(t, err, ErrOutcomeUnknown, "the 503 may have been applied: the context ending in the backoff does not undo that")
}

func TestContextCanceledBeforeCall(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodPost, talquiSessionsURL, statusResponder(200))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := startCall(ctx, env.c)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown, "nothing was sent")
	assert.Equal(t, 0, env.mt.GetTotalCallCount())
}

func TestNilContextRefused(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterNoResponder(statusResponder(200))
	var nilCtx context.Context // a caller's forgotten context
	err := startCall(nilCtx, env.c)
	assert.EqualError(t, err, "convo: validation failed: ctx: must not be nil (use context.Background())")
	assert.ErrorIs(t, err, ErrValidation)
	assert.Equal(t, 0, env.mt.GetTotalCallCount())
	for u, err := range env.c.Users.List(nilCtx, nil) {
		assert.Nil(t, u)
		assert.ErrorIs(t, err, ErrValidation)
	}
	assert.Equal(t, 0, env.mt.GetTotalCallCount())
}

func TestNoProviderRefused(t *testing.T) {
	_, err := NewClient(WithUserAgent("my-app/1.0"))
	assert.EqualError(t, err, "convo: validation failed: opts: configure at least one provider: WithTalqui, WithTalkJS or WithSelarti")
	_, err = NewClient()
	assert.ErrorIs(t, err, ErrValidation)
}

func TestPermanentTransportErrorNotRetried(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL,
		httpmock.NewErrorResponder(errors.New("x509: certificate is not trusted")))
	err := safeCall(context.Background(), env.c)
	require.Error(t, err)
	assert.Equal(t, 1, env.mt.GetTotalCallCount())
}

func TestAPIErrorFields(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL,
		httpmock.NewStringResponder(404, `{"errorCode":"NOT_FOUND","message":"user u1 not found"}`).
			HeaderSet(http.Header{"X-Request-Id": {"req-42"}}))
	err := safeCall(context.Background(), env.c)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, &APIError{
		Provider:   ProviderTalkJS,
		Method:     "GET",
		Path:       "/v1/app1/users/u1",
		StatusCode: 404,
		Message:    "user u1 not found",
		Body:       []byte(`{"errorCode":"NOT_FOUND","message":"user u1 not found"}`),
		RequestID:  "req-42",
		Attempts:   1,
	}, ae)
	assert.Equal(t, "convo: talkjs GET /v1/app1/users/u1: 404 Not Found: user u1 not found [request id req-42]", err.Error())
	assert.ErrorIs(t, err, ErrNotFound)
	assert.NotErrorIs(t, err, ErrServer)
}

func TestAPIErrorMessageSources(t *testing.T) {
	cases := map[string]string{
		`{"message":"m"}`:                 "m",
		`{"error":"e"}`:                   "e",
		`{"error":{"message":"nested"}}`:  "nested",
		`{"errorCode":"CODE"}`:            "CODE",
		`{"errorCode":42}`:                "42",
		`<html>bad gateway</html>`:        "",
		``:                                "",
		`{"message":null,"error":"next"}`: "next",
	}
	for body, want := range cases {
		assert.Equal(t, want, messageFromBody([]byte(body)), body)
	}
}

func TestErrorBodyCappedAt64KiB(t *testing.T) {
	env := NewTestEnv(t)
	big := strings.Repeat("x", 200<<10)
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, httpmock.NewStringResponder(400, big))
	err := safeCall(context.Background(), env.c)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Len(t, ae.Body, 64<<10)
}

func TestSuccessBodyTooLarge(t *testing.T) {
	env := NewTestEnv(t)
	big := `{"id":"` + strings.Repeat("x", DefaultMaxResponseBytes) + `"}`
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, httpmock.NewStringResponder(200, big))
	err := safeCall(context.Background(), env.c)
	assert.ErrorIs(t, err, ErrBadResponse)
	assert.Equal(t, 1, env.mt.GetTotalCallCount(), "a body too large is not retried")
}

func TestBadJSONOnSuccess(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, httpmock.NewStringResponder(200, `<html>`))
	err := safeCall(context.Background(), env.c)
	assert.ErrorIs(t, err, ErrBadResponse)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 200, ae.StatusCode)
}

func TestHeadersAndUserAgent(t *testing.T) {
	env := NewTestEnv(t, WithUserAgent("shop/1.2"))
	var got http.Header
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, func(r *http.Request) (*http.Response, error) {
		got = r.Header.Clone()
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	require.NoError(t, safeCall(context.Background(), env.c))
	assert.Equal(t, "Bearer "+testTalkJSToken, got.Get("Authorization"))
	assert.Equal(t, "application/json", got.Get("Accept"))
	assert.Equal(t, "convo-go/"+Version+" shop/1.2", got.Get("User-Agent"))
	assert.Empty(t, got.Get("Content-Type"), "a GET has no body")
	assert.Equal(t, DefaultTalkJSVersion, got.Get("TalkJS-REST-Version"))

	env = NewTestEnv(t, WithTalkJSVersion(""))
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, func(r *http.Request) (*http.Response, error) {
		got = r.Header.Clone()
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	require.NoError(t, safeCall(context.Background(), env.c))
	assert.NotContains(t, got, "Talkjs-Rest-Version", "an empty version sends none")
}

func TestPathSegmentsEscaped(t *testing.T) {
	env := NewTestEnv(t)
	var path string
	env.mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
		path = r.URL.EscapedPath()
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	err := env.c.do(context.Background(), &request{
		api: env.c.talkjs, method: http.MethodGet,
		path: "/users/{userID}", params: []string{"a/b?c#d e"},
	})
	require.NoError(t, err)
	assert.Equal(t, "/v1/app1/users/a%2Fb%3Fc%23d%20e", path)
}

func TestBadPathSegmentsRefused(t *testing.T) {
	env := NewTestEnv(t)
	for _, id := range []string{"", ".", ".."} {
		err := env.c.do(context.Background(), &request{
			api: env.c.talkjs, method: http.MethodGet,
			path: "/conversations/{conversationID}/participants/{userID}", params: []string{"c1", id},
		})
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, "id %q", id)
		assert.Equal(t, "userID", ve.Problems[0].Field)
	}
	assert.Equal(t, 0, env.mt.GetTotalCallCount())
}

func TestNotConfigured(t *testing.T) {
	mt := httpmock.NewMockTransport()
	c, err := NewClient(WithTalkJS("app", "sk"), WithHTTPClient(&http.Client{Transport: mt}))
	require.NoError(t, err)
	_, err = c.Sessions.Start(context.Background(), WhatsAppBusiness{Phone: "5527999999999", Text: "hi"})
	assert.ErrorIs(t, err, ErrNotConfigured)

	c, err = NewClient(WithTalqui("t", PluginConnection{ID: "p", Token: "x"}), WithHTTPClient(&http.Client{Transport: mt}))
	require.NoError(t, err)
	assert.ErrorIs(t, safeCall(context.Background(), c), ErrNotConfigured)
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

func TestOptionErrors(t *testing.T) {
	cases := []struct {
		name  string
		opt   Option
		field string
	}{
		{"empty tenant", WithTalqui(" ", PluginConnection{ID: "p", Token: "t"}), "WithTalqui(tenantID)"},
		{"no connection", WithTalqui("t"), "WithTalqui(conns)"},
		{"empty connection id", WithTalqui("t", PluginConnection{Token: "t"}), "WithTalqui(conns[0].ID)"},
		{"empty token", WithTalqui("t", PluginConnection{ID: "p"}), "WithTalqui(conns[0].Token)"},
		{"duplicate connection", WithTalqui("t", PluginConnection{ID: "p", Token: "a"}, PluginConnection{ID: "p", Token: "b"}), "WithTalqui(conns[1].ID)"},
		{"empty app id", WithTalkJS("", "sk"), "WithTalkJS(appID)"},
		{"empty secret", WithTalkJS("app", ""), "WithTalkJS(secretKey)"},
		{"relative url", WithTalkJSURL("/v1"), "talkjsURL"},
		{"ftp url", WithTalquiURL("ftp://example.com"), "talquiURL"},
		{"plain http to a remote host", WithTalquiURL("http://api.talqui.chat"), "talquiURL"},
		{"url with credentials", WithTalkJSURL("https://u:p@api.talkjs.com"), "talkjsURL"},
		{"nil http client", WithHTTPClient(nil), "httpClient"},
		{"negative retries", WithRetry(RetryPolicy{MaxRetries: -1}), "RetryPolicy.MaxRetries"},
		{"min above max", WithRetry(RetryPolicy{MinWait: time.Minute, MaxWait: time.Second}), "RetryPolicy.MinWait"},
		{"user agent with newline", WithUserAgent("a\r\nX-Evil: 1"), "userAgent"},
		{"talkjs version with newline", WithTalkJSVersion("2024-01-01\nX: y"), "talkjsVersion"},
		{"zero timeout", WithTimeout(0), "WithTimeout(d)"},
		{"zero body cap", WithMaxResponseBytes(0), "WithMaxResponseBytes(n)"},
		{"negative body cap", WithMaxResponseBytes(-1), "WithMaxResponseBytes(n)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.opt)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.field, ve.Problems[0].Field)
			assert.ErrorIs(t, err, ErrValidation)
			assertNoSecret(t, "option error", err.Error())
		})
	}
}

func TestBaseURLs(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "https://example.com/prefix/"} {
		_, err := NewClient(WithTalquiURL(u), WithTalqui("t", PluginConnection{ID: "p", Token: "x"}))
		assert.NoError(t, err, u)
	}
	mt := httpmock.NewMockTransport()
	c, err := NewClient(WithTalkJS("app/1", "sk"), WithTalkJSURL("https://proxy.example.com/talkjs/"), WithHTTPClient(&http.Client{Transport: mt}))
	require.NoError(t, err)
	mt.RegisterResponder(http.MethodGet, "https://proxy.example.com/talkjs/v1/app%2F1/users/u1", httpmock.NewStringResponder(200, `{}`))
	require.NoError(t, safeCall(context.Background(), c))
}

func TestDefaults(t *testing.T) {
	c, err := NewClient(WithTalkJS("app", "sk"))
	require.NoError(t, err)
	assert.Equal(t, RetryPolicy{MaxRetries: 4, MinWait: 500 * time.Millisecond, MaxWait: 30 * time.Second}, c.policy)
	tr := c.rc.HTTPClient.Transport.(attemptTransport).rt.(*http.Transport)
	assert.Equal(t, 30*time.Second, tr.ResponseHeaderTimeout)
	assert.Equal(t, 30*time.Second, c.rc.HTTPClient.Transport.(attemptTransport).timeout, "one attempt as a whole")
	assert.Zero(t, c.rc.HTTPClient.Timeout, "the attempt's context bounds it, not http.Client.Timeout")
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 64)
	assert.Nil(t, c.rc.Logger, "retryablehttp's logger must be a true nil")

	c, err = NewClient(WithTalkJS("app", "sk"), WithRetry(RetryPolicy{MaxRetries: 2}))
	require.NoError(t, err)
	assert.Equal(t, RetryPolicy{MaxRetries: 2, MinWait: 500 * time.Millisecond, MaxWait: 30 * time.Second}, c.policy)
}

// closeCounter counts CloseIdleConnections calls on the caller's transport.
type closeCounter struct {
	http.RoundTripper
	closed int
}

func (c *closeCounter) CloseIdleConnections() { c.closed++ }

func TestFailedCallKeepsSharedPool(t *testing.T) {
	mt := httpmock.NewMockTransport()
	mt.RegisterResponder(http.MethodGet, talkjsUserURL, statusResponder(404))
	cc := &closeCounter{RoundTripper: mt}
	c, err := NewClient(WithTalkJS(testAppID, testTalkJSToken), WithHTTPClient(&http.Client{Transport: cc}), WithRetry(fastRetry))
	require.NoError(t, err)
	require.Error(t, safeCall(context.Background(), c))
	assert.Equal(t, 0, cc.closed, "a failed call must not flush the shared connection pool")
	c.CloseIdleConnections()
	assert.Equal(t, 1, cc.closed, "the caller may flush it")
}

func TestBackoffBounds(t *testing.T) {
	c := &Client{}
	for attempt := 0; attempt < 40; attempt++ {
		for range 50 {
			d := c.backoff(100*time.Millisecond, 2*time.Second, attempt, nil)
			want := 100 * time.Millisecond << attempt
			if attempt >= 5 || want > 2*time.Second {
				want = 2 * time.Second
			}
			require.GreaterOrEqual(t, d, want/2, "attempt %d", attempt)
			require.LessOrEqual(t, d, want, "attempt %d", attempt)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	d, ok := parseRetryAfter("7")
	assert.True(t, ok)
	assert.Equal(t, 7*time.Second, d)
	_, ok = parseRetryAfter("-1")
	assert.False(t, ok)
	_, ok = parseRetryAfter("soon")
	assert.False(t, ok)
	d, ok = parseRetryAfter(time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
	assert.True(t, ok)
	assert.Zero(t, d)
}

func TestPluginConnectionHidesToken(t *testing.T) {
	pc := PluginConnection{ID: "pc-wa", Token: testTokenWA}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoSecret(t, f, fmt.Sprintf(f, pc))
	}
}

func TestDeleteNotFoundAfterRetryIsDone(t *testing.T) {
	del := func(c *Client) error {
		return c.do(context.Background(), &request{
			api: c.talkjs, method: http.MethodDelete,
			path: "/conversations/{conversationID}", params: []string{"c1"},
		})
	}
	const u = "https://api.talkjs.com/v1/app1/conversations/c1"

	env := NewTestEnv(t)
	// The first attempt may have deleted it; the retry finds it gone.
	env.mt.RegisterResponder(http.MethodDelete, u, statusResponder(503).Then(statusResponder(404)))
	assert.NoError(t, del(env.c))
	assert.Equal(t, 2, env.mt.GetTotalCallCount())

	env = NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodDelete, u, statusResponder(404))
	assert.ErrorIs(t, del(env.c), ErrNotFound, "a 404 on the first try is a 404")

	env = NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodDelete, u, statusResponder(429).Then(statusResponder(404)))
	assert.ErrorIs(t, del(env.c), ErrNotFound, "a 429 was not applied: the 404 is real")
}

func TestExpandPathPlaceholderMismatch(t *testing.T) {
	_, err := expandPath("/v1/app", "/a/{x}/b/{y}", []string{"1"})
	assert.EqualError(t, err, `convo: internal error: path "/a/{x}/b/{y}" has more placeholders than values`)
	p, err := expandPath("/v1/app", "/a/{x}", []string{"é/1"})
	require.NoError(t, err)
	assert.Equal(t, "/v1/app/a/%C3%A9%2F1", p)
	p, err = expandPath("/v1/app", "/a", nil)
	require.NoError(t, err)
	assert.Equal(t, "/v1/app/a", p)
}

// redirectTarget is a Location that carries a secret in its query, on
// another host.
const redirectTarget = "https://evil.example.com/steal?token=" + testTalkJSToken + "&k=REDIRECT-MARK"

func TestRedirectNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			env := NewTestEnv(t)
			env.mt.RegisterResponder(http.MethodPost, talquiSessionsURL,
				httpmock.NewStringResponder(code, `<a href="`+redirectTarget+`">moved</a>`).
					HeaderSet(http.Header{"Location": {redirectTarget}}))
			env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, `{}`))
			err := startCall(context.Background(), env.c)
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, code, ae.StatusCode)
			assert.Equal(t, 1, ae.Attempts)
			assert.Empty(t, ae.Body, "a redirect's body repeats its Location")
			assert.ErrorIs(t, err, ErrOutcomeUnknown, "a session start answered by a redirect may have been applied")
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", ae), env.logs.String()} {
				assert.NotContains(t, s, "REDIRECT-MARK")
				assert.NotContains(t, s, "evil.example.com")
				assertNoSecret(t, "redirect error", s)
			}
			calls := env.Calls()
			require.Len(t, calls, 1, "the redirect must not be followed")
			assert.Equal(t, http.MethodPost, calls[0].Method)
			assert.Nil(t, env.hc.CheckRedirect, "the caller's client must not be changed")
		})
	}
}

func TestRedirectOnSafeCall(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, statusResponder(302, "Location", redirectTarget))
	err := safeCall(context.Background(), env.c)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 302, ae.StatusCode)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown, "a GET may be sent again")
	assert.Len(t, env.Calls(), 1)
}

func TestCallersClientNotChanged(t *testing.T) {
	mt := httpmock.NewMockTransport()
	mt.RegisterResponder(http.MethodGet, talkjsUserURL, statusResponder(307, "Location", "https://api.talkjs.com/elsewhere"))
	mt.RegisterResponder(http.MethodGet, "https://api.talkjs.com/elsewhere", statusResponder(200))
	var redirects int
	check := func(*http.Request, []*http.Request) error { redirects++; return nil }
	hc := &http.Client{Transport: mt, CheckRedirect: check, Timeout: time.Hour}
	c, err := NewClient(WithTalkJS(testAppID, testTalkJSToken), WithHTTPClient(hc), WithRetry(fastRetry))
	require.NoError(t, err)
	assert.ErrorContains(t, safeCall(context.Background(), c), "307")
	assert.Equal(t, 0, redirects, "the caller's CheckRedirect is not asked: the SDK never follows")
	assert.Equal(t, 1, mt.GetTotalCallCount())
	assert.Equal(t, time.Hour, hc.Timeout)
	assert.NotNil(t, hc.CheckRedirect)
	resp, err := hc.Get(talkjsUserURL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 1, redirects, "the caller's client still follows redirects for the caller")
}

const talkjsMessagesURL = "https://api.talkjs.com/v1/app1/conversations/c1/messages"

func sendCall(ctx context.Context, c *Client) error {
	_, err := c.Conversations.SendMessages(ctx, "c1", UserMessage("u1", "Hello"))
	return err
}

func TestAmbiguityIsSticky(t *testing.T) {
	long := WithRetry(RetryPolicy{MaxRetries: 3, MinWait: time.Hour, MaxWait: time.Hour})
	t.Run("context ends in the backoff after a 502", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		env := NewTestEnv(t, long, WithLogger(CancelOnRetry(cancel, nil)))
		env.mt.RegisterResponder(http.MethodPost, talkjsMessagesURL, statusResponder(502))
		err := sendCall(ctx, env.c)
		assert.ErrorIs(t, err, ErrOutcomeUnknown, "the send may have been applied")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, env.mt.GetTotalCallCount())
	})
	t.Run("context ends while a 201 body is read", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		env := NewTestEnv(t)
		env.mt.RegisterResponder(http.MethodPost, talquiSessionsURL, func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 201, Header: http.Header{}, ContentLength: -1,
				Body: io.NopCloser(readerFunc(func([]byte) (int, error) { cancel(); return 0, context.Canceled }))}, nil
		})
		err := startCall(ctx, env.c)
		assert.ErrorIs(t, err, ErrBadResponse, "Talqui answered 201: the session exists")
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, ErrOutcomeUnknown, "a 2xx arrived: the outcome is known")
		assert.Equal(t, 1, env.mt.GetTotalCallCount())
	})
	t.Run("a later dial failure", func(t *testing.T) {
		env := NewTestEnv(t)
		env.mt.RegisterResponder(http.MethodGet, talkjsUserURL,
			httpmock.NewErrorResponder(io.ErrUnexpectedEOF).Then(httpmock.NewErrorResponder(dialError())))
		err := safeCall(context.Background(), env.c)
		assert.ErrorIs(t, err, ErrOutcomeUnknown, "the first attempt may have been applied")
		assert.Equal(t, 4, env.mt.GetTotalCallCount())
	})
	t.Run("retries run out on a 429", func(t *testing.T) {
		env := NewTestEnv(t)
		env.mt.RegisterResponder(http.MethodPost, talkjsMessagesURL, statusResponder(503).Then(statusResponder(429)))
		err := sendCall(context.Background(), env.c)
		assert.ErrorIs(t, err, ErrRateLimited)
		assert.ErrorIs(t, err, ErrOutcomeUnknown, "the 503 may have been applied")
		assert.Equal(t, 4, env.mt.GetTotalCallCount())
	})
	t.Run("context ends in the backoff after a 429 only", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		env := NewTestEnv(t, long, WithLogger(CancelOnRetry(cancel, nil)))
		env.mt.RegisterResponder(http.MethodPost, talkjsMessagesURL, statusResponder(429))
		err := sendCall(ctx, env.c)
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, ErrOutcomeUnknown, "a 429 was not applied")
	})
}

// readerFunc is an io.Reader from a function.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// trickleServer answers 200 with a 100-byte Content-Length, then sends
// the body one byte a second until the client gives up.
func trickleServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.Header().Set("Content-Length", "100")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for range 100 {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestTimeoutBoundsTheBody(t *testing.T) {
	srv, seen := trickleServer(t)
	// Through a caller's client without a timeout, like most.
	env := NewTestEnv(t, WithHTTPClient(&http.Client{}), WithTalkJSURL(srv.URL), WithTalquiURL(srv.URL),
		WithTimeout(300*time.Millisecond), WithRetry(RetryPolicy{MaxRetries: 1, MinWait: time.Millisecond, MaxWait: time.Millisecond}))

	start := time.Now()
	err := startCall(context.Background(), env.c)
	assert.ErrorIs(t, err, ErrBadResponse, "the 2xx arrived; its body did not")
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.EqualValues(t, 1, seen.Load(), "a session start is not repeated")

	seen.Store(0)
	start = time.Now()
	err = safeCall(context.Background(), env.c)
	assert.ErrorIs(t, err, ErrBadResponse)
	assert.Less(t, time.Since(start), 3*time.Second, "two attempts of 300 ms each")
	assert.EqualValues(t, 2, seen.Load(), "a GET is tried again")
}

func TestTimeoutOption(t *testing.T) {
	c, err := NewClient(WithTalkJS("app", "sk"), WithTimeout(5*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, c.rc.HTTPClient.Transport.(attemptTransport).timeout)
	c, err = NewClient(WithTalkJS("app", "sk"), WithHTTPClient(&http.Client{Timeout: time.Second}))
	require.NoError(t, err)
	assert.Equal(t, time.Second, c.rc.HTTPClient.Timeout, "the caller's timeout stays, so the shorter one wins")
	assert.Equal(t, DefaultTimeout, c.rc.HTTPClient.Transport.(attemptTransport).timeout)
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := NewClient(WithTalkJS("app", "sk"), WithTimeout(d))
		var ve *ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "WithTimeout(d)", ve.Problems[0].Field)
	}
}

// bodyOf is a 2xx body of n bytes of JSON string content, or endless when
// n < 0; it allocates nothing as it is read.
type bodyOf struct{ n int64 }

func (b *bodyOf) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	if b.n > 0 && int64(len(p)) > b.n {
		p = p[:b.n]
	}
	for i := range p {
		p[i] = 'x'
	}
	if b.n > 0 {
		b.n -= int64(len(p))
	}
	return len(p), nil
}

func (*bodyOf) Close() error { return nil }

// sizedResponder answers 200 with a body of n bytes (endless when n < 0),
// announcing cl as its Content-Length (-1: none).
func sizedResponder(n, cl int64) httpmock.Responder {
	return func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: cl, Body: &bodyOf{n: n}}, nil
	}
}

// keepBody is a success body the test keeps as read, without decoding.
type keepBody struct{ n int }

func (k *keepBody) decodeBody(b []byte) error { k.n = len(b); return nil }

// allocated runs f and gives the bytes the process allocated meanwhile.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestSuccessBodyReadWithinTheCap(t *testing.T) {
	const n = 8 << 20
	get := func(c *Client) int {
		var k keepBody
		require.NoError(t, c.do(context.Background(), &request{api: c.talkjs, method: http.MethodGet, path: "/users", out: &k}))
		return k.n
	}
	env := NewTestEnv(t)
	env.mt.RegisterNoResponder(sizedResponder(n, n))
	var got int
	a := allocated(func() { got = get(env.c) })
	assert.Equal(t, n, got)
	assert.Less(t, a, uint64(n+n/8), "a body with its Content-Length is read into one buffer of its size")
	t.Logf("8 MiB body with Content-Length: %.1f MiB allocated", float64(a)/(1<<20))

	env = NewTestEnv(t)
	env.mt.RegisterNoResponder(sizedResponder(n, -1))
	a = allocated(func() { got = get(env.c) })
	assert.Equal(t, n, got)
	assert.Less(t, a, uint64(2*n+2<<20), "without Content-Length, about twice the body, no doubling growth")
	t.Logf("8 MiB body without Content-Length: %.1f MiB allocated", float64(a)/(1<<20))

	env = NewTestEnv(t)
	env.mt.RegisterNoResponder(sizedResponder(-1, -1))
	a = allocated(func() { assert.ErrorIs(t, safeCall(context.Background(), env.c), ErrBadResponse) })
	assert.Less(t, a, uint64(2*DefaultMaxResponseBytes), "an endless body holds at most about twice the default cap")
	t.Logf("endless body, default 16 MiB cap: %.1f MiB allocated", float64(a)/(1<<20))
}

// TestMemoryBoundedByTheCap runs concurrent calls against endless 2xx
// bodies with a lowered cap. What a call allocates (TotalAlloc, exact)
// bounds what it can hold; the sampled peak of HeapInuse is logged and
// checked against the same bound.
func TestMemoryBoundedByTheCap(t *testing.T) {
	const limit, calls = 4 << 20, 16
	env := NewTestEnv(t, WithMaxResponseBytes(limit))
	env.mt.RegisterNoResponder(sizedResponder(-1, -1))

	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	a := allocated(func() {
		var wg sync.WaitGroup
		for range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.ErrorIs(t, safeCall(context.Background(), env.c), ErrBadResponse)
			}()
		}
		wg.Wait()
	})
	close(stop)
	<-sampled
	perCall := a / calls
	assert.Less(t, perCall, uint64(2*limit), "a call holds at most about twice the cap")
	held := int64(peak.Load()) - int64(base.HeapInuse)
	assert.Less(t, held, int64(calls*2*limit), "peak heap of %d concurrent calls", calls)
	t.Logf("%d calls, cap %d MiB: %.2f MiB allocated a call; peak HeapInuse %.1f MiB over the base (%.2f MiB a call)",
		calls, limit>>20, float64(perCall)/(1<<20), float64(held)/(1<<20), float64(held)/calls/(1<<20))
}

func TestAPIErrorReasons(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, httpmock.NewStringResponder(400,
		`{"reasons": {"subject": "must be a string", "participants": ["must be an array of user ids", "must not be empty"], "custom": {"k": 1}}}`))
	err := safeCall(context.Background(), env.c)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, []Problem{
		{Field: "custom", Reason: `{"k": 1}`},
		{Field: "participants", Reason: "must be an array of user ids"},
		{Field: "participants", Reason: "must not be empty"},
		{Field: "subject", Reason: "must be a string"},
	}, ae.Problems, "sorted by field; a list or a single reason per field")
	assert.Equal(t, `custom: {"k": 1}; participants: must be an array of user ids; participants: must not be empty; subject: must be a string`, ae.Message)
	assert.Equal(t, `convo: talkjs GET /v1/app1/users/u1: 400 Bad Request: `+ae.Message, err.Error())
	assert.ErrorIs(t, err, ErrInvalidRequest)

	for body, want := range map[string]string{
		`{"message":"Invalid request","reasons":{"name":["is required"]}}`: "Invalid request: name: is required",
		`{"reasons":{}}`:             "",
		`{"reasons":"bad"}`:          "",
		`{"reasons":{"a":[null]}}`:   "a: null",
		`{"reasons":{"a":["x", 2]}}`: "a: x; a: 2",
	} {
		ps := reasonsFromBody([]byte(body))
		assert.Equal(t, want, withReasons(messageFromBody([]byte(body)), ps), body)
	}
}

// A provider option given bad input is reported once, as itself: not also
// as a provider missing, nor as the provider WithTalkJSTokenAuth needs.
func TestBadProviderOptionNotReportedMissing(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{[]Option{WithTalqui("", PluginConnection{ID: "pc", Token: "tok"})},
			"convo: validation failed: WithTalqui(tenantID): must not be empty"},
		{[]Option{WithTalkJS("app", " "), WithTalkJSTokenAuth()},
			"convo: validation failed: WithTalkJS(secretKey): must not be empty"},
		{[]Option{WithSelarti("bad key")},
			"convo: validation failed: WithSelarti(apiKey): must not hold whitespace or control characters"},
		{[]Option{WithTalkJSTokenAuth()},
			"convo: validation failed: opts: configure at least one provider: WithTalqui, WithTalkJS or WithSelarti; tokenAuth: WithTalkJSTokenAuth needs WithTalkJS"},
		{[]Option{WithSelartiWorkflows(SelartiWorkflows{})},
			"convo: validation failed: opts: configure at least one provider: WithTalqui, WithTalkJS or WithSelarti"},
	} {
		_, err := NewClient(tc.opts...)
		assert.EqualError(t, err, tc.want)
	}
}

// A base URL that already holds the path the client adds would send every
// call to a doubled path: it is refused, naming the option's field.
func TestBaseURLWithAPIPrefixRefused(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithTalkJSURL("https://api.talkjs.com/v1/app1"),
			"talkjsURL: must not hold /v1/{appId}, which the client adds from WithTalkJS: give the host, such as https://api.talkjs.com"},
		{WithTalkJSURL("https://api.talkjs.com/v1/"),
			"talkjsURL: must not hold /v1/{appId}, which the client adds from WithTalkJS: give the host, such as https://api.talkjs.com"},
		{WithTalquiURL("https://api.talqui.chat/tenants/t1"),
			"talquiURL: must not hold /tenants/{tenantID}, which the client adds from WithTalqui: give the host, such as https://api.talqui.chat"},
		{WithSelartiURL("https://selarti.com/api/1.1/wf"),
			"selartiURL: must not hold /wf/, which the client adds before each workflow: give the API's root, such as https://selarti.com/api/1.1"},
		{WithSelartiURL("https://selarti.com/api/1.1/api/1.1"),
			"selartiURL: holds /api/1.1 twice: give the API's root once, such as https://selarti.com/api/1.1"},
	} {
		_, err := NewClient(WithTalkJS("app1", "sk"), tc.opt)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve)
		require.Len(t, ve.Problems, 1)
		assert.Equal(t, tc.want, ve.Problems[0].String())
	}
	// A proxy's own path, and Bubble's development copy, are kept.
	env := NewTestEnv(t, WithTalkJSURL("https://proxy.example/talkjs/"), WithSelarti("key"),
		WithSelartiURL("https://selarti.com/version-test/api/1.1"), WithTalquiURL("https://proxy.example/talqui"))
	env.mt.RegisterResponder(http.MethodGet, "https://proxy.example/talkjs/v1/"+testAppID+"/users/u1", httpmock.NewStringResponder(200, `{"id":"u1"}`))
	_, err := env.c.Users.Get(context.Background(), "u1")
	require.NoError(t, err)
	assert.Equal(t, 1, env.mt.GetTotalCallCount())
}
