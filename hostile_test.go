package convo

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Bubble body that says UNAUTHORIZED earns the one repeat only when the
// answer itself leaves no doubt that nothing was applied: on a 5xx, a 408
// or a redirect (which may come after the send was applied), the send is
// not repeated and the error stays ambiguous.
func TestSelartiRefusalOnAnAmbiguousAnswerNotRepeated(t *testing.T) {
	const unauthorized = `{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"token expired"}}`
	for _, status := range []int{500, 502, 503, 408, 307} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			env := newSelartiEnv(t)
			env.answer("send_external_message", httpmock.NewStringResponder(status, unauthorized))
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			require.ErrorIs(t, err, ErrOutcomeUnknown)
			assert.Equal(t, 1, env.count("send_external_message"), "never sent twice")
			assert.EqualValues(t, 1, env.exchanges.Load())
		})
	}
}

// A transport error that quotes what the server sent back (a malformed
// status line echoing the Authorization it got) holds no token minted or
// exchanged at run time: not in the error, not in the retry log.
func TestRunTimeTokensRedactedFromTransportErrors(t *testing.T) {
	echo := httpmock.Responder(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("malformed HTTP status code %q", r.Header.Get("Authorization"))
	})
	check := func(t *testing.T, env *TestEnv, err error, token string) {
		t.Helper()
		require.NotEmpty(t, token)
		require.ErrorIs(t, err, ErrOutcomeUnknown)
		for _, verb := range []string{"%v", "%+v", "%#v", "%q"} {
			assert.NotContains(t, fmt.Sprintf(verb, err), token, verb)
		}
		assert.Contains(t, err.Error(), "[redacted]")
		assert.NotContains(t, env.logs.String(), token)
	}

	t.Run("TalkJS app token, retried", func(t *testing.T) {
		env := NewTestEnv(t, WithTalkJSTokenAuth())
		env.mt.RegisterNoResponder(echo)
		err := safeCall(context.Background(), env.c)
		require.Len(t, env.Calls(), fastRetry.MaxRetries+1)
		assert.Contains(t, env.logs.String(), "convo: retrying")
		check(t, env, err, strings.TrimPrefix(env.Calls()[0].Header.Get("Authorization"), "Bearer "))
	})
	t.Run("Selarti token", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("send_external_message", echo)
		_, err := env.c.Selarti.Send(context.Background(), sendMsg())
		assert.Equal(t, 1, env.count("send_external_message"))
		check(t, env.TestEnv, err, testSelartiToken(1))
	})
}

// An app token is single-use, and still a secret once used: the answer
// that echoes it is redacted, whatever tokens the client minted since.
func TestStaleAppTokenRedacted(t *testing.T) {
	env := NewTestEnv(t, WithTalkJSTokenAuth())
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	tokens := env.c.talkjs.cred.(*appTokens)
	tokens.now = clock.Now
	env.mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
		// Meanwhile, a concurrent call mints its own token.
		clock.Advance(appTokenTTL)
		_, _ = tokens.header(context.Background())
		return httpmock.NewStringResponse(403, `{"message":"refused `+r.Header.Get("Authorization")+`"}`), nil
	})
	err := safeCall(context.Background(), env.c)
	require.ErrorIs(t, err, ErrUnauthorized)
	stale := strings.TrimPrefix(env.Calls()[0].Header.Get("Authorization"), "Bearer ")
	next, _ := tokens.header(context.Background())
	require.NotEqual(t, stale, strings.TrimPrefix(next[0], "Bearer "))
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "refused Bearer [redacted]", ae.Message)
	assert.NotContains(t, string(ae.Body), stale)
	assert.NotContains(t, fmt.Sprintf("%+v", err), stale)
}

// The context ends just as an answer's headers arrive, before the
// pipeline looks at them: the answer still counts. A redirect answering a
// session start (not safe to repeat) leaves its outcome unknown.
func TestContextEndsAsTheAnswerArrives(t *testing.T) {
	for _, code := range []int{307, 502} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			env := NewTestEnv(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			env.mt.RegisterResponder(http.MethodPost, talquiSessionsURL, httpmock.NewStringResponder(code, `{}`))
			// The context ends after the transport has handed over the
			// answer. (Ending it inside the responder would race with
			// httpmock, which may then answer with the context's error.)
			mock := env.rec.rt
			env.rec.rt = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := mock.RoundTrip(r)
				cancel()
				return resp, err
			})
			err := startCall(ctx, env.c)
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, code, ae.StatusCode)
			assert.ErrorIs(t, err, ErrOutcomeUnknown)
			assert.ErrorIs(t, err, context.Canceled)
			assert.Len(t, env.Calls(), 1)
		})
	}
}

// Concurrent sends all refused on the first token share one re-exchange,
// and none is sent more than twice.
func TestSelartiConcurrentRefusalsShareOneReexchange(t *testing.T) {
	env := newSelartiEnv(t)
	env.answer("send_external_message", func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("Authorization") == "Bearer "+testSelartiToken(1) {
			return httpmock.NewStringResponse(401, `{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"expired"}}`), nil
		}
		return httpmock.NewStringResponse(200, okAnswer), nil
	})
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	assert.EqualValues(t, 2, env.exchanges.Load(), "one re-exchange for all")
	assert.LessOrEqual(t, env.count("send_external_message"), 2*n)
}

// A token exchange answered by a redirect is not followed: the key never
// goes to the Location, and the send is not made.
func TestSelartiExchangeRedirected(t *testing.T) {
	env := newSelartiEnv(t)
	env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", httpmock.NewStringResponder(307, "").
		HeaderSet(http.Header{"Location": {"https://evil.example.com/wf/auth?key=" + testSelartiKey}}))
	_, err := env.c.Selarti.Send(context.Background(), sendMsg())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 307, ae.StatusCode)
	assert.Equal(t, "/api/1.1/wf/auth", ae.Path)
	assert.Equal(t, 1, env.count("auth"))
	assert.Zero(t, env.count("send_external_message"))
	require.Len(t, env.Calls(), 1, "the redirect is not followed")
	assertNoSelartiSecret(t, "error", fmt.Sprintf("%+v", err))
	assert.NotContains(t, err.Error(), "evil.example.com")
}

// A request built by hand, as middleware or a test may pass it, has a
// nil Body (the server's never does): the handlers answer it, an empty
// body, with 400 rather than panic.
func TestHandlersAnswerANilBody(t *testing.T) {
	for name, h := range map[string]http.Handler{
		"selarti": NewSelartiHandler(func(context.Context, *SelartiEvent) error { return nil }, WithHandlerLogger(discardLogger())),
		"talkjs":  NewTalkJSHandler("sk_hook", func(context.Context, *TalkJSEvent) error { return nil }, WithHandlerLogger(discardLogger())),
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/hook", nil)
			req.Body = nil
			req.Header.Set("X-TalkJS-Signature", SignTalkJSWebhook("sk_hook", "1", nil))
			req.Header.Set("X-TalkJS-Timestamp", "1")
			rec := httptest.NewRecorder()
			require.NotPanics(t, func() { h.ServeHTTP(rec, req) })
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, rec.Code)
		})
	}
}

// roundTripperFunc adapts a function to http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
