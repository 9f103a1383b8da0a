package convo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of the second hostile review (issue 20).

// newSelartiTokenEnv is a Selarti harness whose /wf/auth answers the
// token tok, JSON-encoded.
func newSelartiTokenEnv(t *testing.T, tok string, opts ...Option) *TestEnv {
	t.Helper()
	env := NewTestEnv(t, append([]Option{WithSelarti(testSelartiKey)}, opts...)...)
	body := fmt.Sprintf(`{"status":"success","response":{"token":%q}}`, tok)
	env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", httpmock.NewStringResponder(200, body))
	return env
}

// jsonForms are the forms a server echoes s in: as is, by encoding/json
// (HTML escapes), by PHP (a slash as "\/", "<" left raw), URL-escaped.
func jsonForms(s string) []string {
	goForm := strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`).Replace(s)
	return []string{s, goForm, strings.ReplaceAll(s, "/", `\/`), url.QueryEscape(s)}
}

// assertRedactedForms fails when err, its Body or Message holds any form
// of secret, or the body holds no [redacted].
func assertRedactedForms(t *testing.T, err error, secret string) {
	t.Helper()
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Contains(t, string(ae.Body), "[redacted]")
	for _, f := range jsonForms(secret) {
		for what, s := range map[string]string{"Body": string(ae.Body), "Message": ae.Message,
			"Error": err.Error(), "%+v": fmt.Sprintf("%+v", err)} {
			assert.NotContains(t, s, f, "%s holds the form %q", what, f)
		}
	}
}

// An exchanged Selarti token echoed escaped, as Go, PHP and a URL escape
// it, is redacted in the body, the message and the error's text.
func TestExchangedTokenRedactedInEscapedForms(t *testing.T) {
	const tok = "sel/tok<SE>&CRET+9"
	forms := jsonForms(tok)
	for i, f := range forms {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			env := newSelartiTokenEnv(t, tok)
			body := `{"statusCode":400,"body":{"status":"INVALID_DATA","message":"bad token ` + strings.ReplaceAll(f, `\`, `\\`) +
				`"},"echo":"` + f + `","url":"https://x.example/?t=` + forms[3] + `"}`
			env.mt.RegisterResponder(http.MethodPost, selartiBase+"send_external_message", httpmock.NewStringResponder(400, body))
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			assertRedactedForms(t, err, tok)
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "INVALID_DATA: bad token [redacted]", ae.Message)
		})
	}
}

// A configured secret echoed PHP-style ("\/", with "<" left raw) is
// redacted.
func TestSecretRedactedPHPStyle(t *testing.T) {
	const secret = "sk_live/Se<cr>et"
	env := NewTestEnv(t, WithTalkJS(testAppID, secret))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(400, `{"message":"bad key sk_live\/Se<cr>et","key":"sk_live\/Se<cr>et"}`))
	err := safeCall(context.Background(), env.c)
	assertRedactedForms(t, err, secret)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, `{"message":"bad key [redacted]","key":"[redacted]"}`, string(ae.Body))
}

// No prefix of a run-time token survives the 64 KiB cut of an error body:
// the body is read as far past the cut as the longest token's form.
func TestRunTimeTokenPrefixNotLeftAtTheCut(t *testing.T) {
	t.Run("Selarti token", func(t *testing.T) {
		tok := "sel_tok_" + strings.Repeat("S", 192)
		env := newSelartiTokenEnv(t, tok)
		env.mt.RegisterResponder(http.MethodPost, selartiBase+"send_external_message",
			httpmock.NewStringResponder(400, strings.Repeat("x", maxErrorBody-40)+tok+strings.Repeat("y", 300)))
		_, err := env.c.Selarti.Send(context.Background(), sendMsg())
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, strings.Repeat("x", maxErrorBody-40)+"[redacted]"+strings.Repeat("y", 30), string(ae.Body))
	})
	t.Run("TalkJS app token", func(t *testing.T) {
		env := NewTestEnv(t, WithTalkJSTokenAuth())
		env.mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			// Past the mark, which is found wherever it stands.
			cut := len(env.c.talkjs.cred.(*appTokens).mark) + 10
			// A filler that is not a JWT character ends the token.
			return httpmock.NewStringResponse(400, strings.Repeat("x", maxErrorBody-cut)+tok+strings.Repeat(" ", 300)), nil
		})
		err := safeCall(context.Background(), env.c)
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		cut := len(env.c.talkjs.cred.(*appTokens).mark) + 10
		assert.Equal(t, strings.Repeat("x", maxErrorBody-cut)+"[redacted]"+strings.Repeat(" ", cut-10), string(ae.Body))
	})
}

// A secret shorter than 8 bytes (a test key such as "k") is redacted only
// where it stands as a whole token, never inside a word.
func TestShortSecretRedactedOnlyAsAWholeToken(t *testing.T) {
	env := NewTestEnv(t, WithTalkJS(testAppID, "k"))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(400, `{"message":"token k is unknown","key":"k","url":"/?key=k&x=1"}`))
	err := safeCall(context.Background(), env.c)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, `{"message":"token [redacted] is unknown","key":"[redacted]","url":"/?key=[redacted]&x=1"}`, string(ae.Body))
	assert.Equal(t, "token [redacted] is unknown", ae.Message)
}

// replayServer is a Talqui that closes, after reading it, the first
// session start that arrives on a connection it has served before (a
// reused keep-alive connection), without answering; it answers every
// other one. It counts the starts it got by their text.
type replayServer struct {
	*httptest.Server
	mu     sync.Mutex
	seen   map[string]bool // remote addresses served
	got    map[string]int  // starts received, by text
	closed string          // the text of the start it closed
}

// startText finds the text of a start sent by runStarts.
var startText = regexp.MustCompile(`start \d+`)

func newReplayServer(t *testing.T) *replayServer {
	s := &replayServer{seen: map[string]bool{}, got: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		text := startText.FindString(string(b))
		s.mu.Lock()
		s.got[text]++
		closeIt := s.seen[r.RemoteAddr] && s.closed == ""
		s.seen[r.RemoteAddr] = true
		if closeIt {
			s.closed = text
		}
		s.mu.Unlock()
		if closeIt {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, startAnswer)
	}))
	t.Cleanup(s.Close)
	return s
}

// runStarts sends session starts until one fails (at most 50) and gives
// the error and the text of the failed one ("" when none failed).
func (s *replayServer) runStarts(t *testing.T, c *Client) (string, error) {
	t.Helper()
	for i := range 50 {
		text := fmt.Sprintf("start %d", i)
		_, err := c.Sessions.Start(context.Background(), WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "+55 27 99999-9999", Text: text})
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if err != nil || closed != "" {
			return text, err
		}
	}
	t.Fatal("no start went over a reused connection")
	return "", nil
}

// No header set by an observer or by the caller's transport makes net/http
// replay a session start when the server closes a reused connection after
// it got the request: the server gets it once, and the call's error says
// the outcome is unknown.
func TestSessionStartNeverReplayedByNetHTTP(t *testing.T) {
	idem := func(h interface{ Set(string, string) }, n int) {
		h.Set("Idempotency-Key", fmt.Sprint("key-", n))
		h.Set("X-Idempotency-Key", fmt.Sprint("key-", n))
	}
	var n atomic.Int32
	for name, opts := range map[string]func() []Option{
		"observer": func() []Option {
			return []Option{WithObserver(Observer{AttemptStart: func(ctx context.Context, a AttemptInfo) context.Context {
				idem(a.Header, int(n.Add(1)))
				return ctx
			}})}
		},
		"caller's transport": func() []Option {
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			return []Option{WithHTTPClient(&http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				idem(r.Header, int(n.Add(1)))
				return tr.RoundTrip(r)
			})})}
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newReplayServer(t)
			c, err := NewClient(append([]Option{WithTalqui(testTenant, PluginConnection{ID: "pc-wa", Token: testTokenWA}),
				WithTalquiURL(srv.URL), WithRetry(fastRetry)}, opts()...)...)
			require.NoError(t, err)
			defer c.CloseIdleConnections()
			text, err := srv.runStarts(t, c)
			srv.mu.Lock()
			defer srv.mu.Unlock()
			require.Equal(t, text, srv.closed, "the start the server closed is the one that returns: %v %v", err, srv.got)
			assert.Equal(t, 1, srv.got[text], "the server got the start once")
			assert.ErrorIs(t, err, ErrOutcomeUnknown)
		})
	}
}

// An observer cannot set Idempotency-Key on a call that is not safe to
// repeat; it still can on one that is.
func TestAttemptHeaderRefusesIdempotencyKeyOnceOnly(t *testing.T) {
	env := NewTestEnv(t, WithObserver(Observer{AttemptStart: func(ctx context.Context, a AttemptInfo) context.Context {
		a.Header.Set("idempotency-key", "k1")
		a.Header.Set("X-Idempotency-Key", "k2")
		a.Header.Set("X-Trace", "t1")
		return ctx
	}}))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, startAnswer))
	require.NoError(t, startCall(context.Background(), env.c))
	require.NoError(t, safeCall(context.Background(), env.c))
	calls := env.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, []string{"", "", "t1"}, []string{calls[0].Header.Get("Idempotency-Key"), calls[0].Header.Get("X-Idempotency-Key"), calls[0].Header.Get("X-Trace")})
	assert.Equal(t, []string{"k1", "k2", "t1"}, []string{calls[1].Header.Get("Idempotency-Key"), calls[1].Header.Get("X-Idempotency-Key"), calls[1].Header.Get("X-Trace")})
}

// A panic during the token exchange (an observer's, a log handler's) goes
// up to the caller, and the next call exchanges again instead of waiting
// forever for the exchange that panicked.
func TestSelartiExchangePanicDoesNotBlockLaterCalls(t *testing.T) {
	var panicked atomic.Bool
	env := newSelartiEnv(t, WithObserver(Observer{CallStart: func(ctx context.Context, c CallInfo) context.Context {
		if c.Operation == "selarti.auth.exchange" && panicked.CompareAndSwap(false, true) {
			panic("observer broke")
		}
		return ctx
	}}))
	env.answer("send_external_message", httpmock.NewStringResponder(200, okAnswer))
	assert.PanicsWithValue(t, "observer broke", func() { _, _ = env.c.Selarti.Send(context.Background(), sendMsg()) })

	// A deadline, so that the bug fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := env.c.Selarti.Send(ctx, sendMsg())
	require.NoError(t, err)
	assert.EqualValues(t, 1, env.exchanges.Load(), "the next call exchanged the key")
	assert.Equal(t, 1, env.count("send_external_message"))
}

// An exchanged token that no header value can hold (a control byte) is a
// bad exchange answer: the call is not sent and the token not cached, so
// the next call exchanges again.
func TestSelartiTokenWithControlByteRefused(t *testing.T) {
	for _, bad := range []string{"sel\x00tok", "sel\x01tok", "sel\x7ftok", "sel\ttok"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			env := NewTestEnv(t, WithSelarti(testSelartiKey))
			var n atomic.Int32
			env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", func(*http.Request) (*http.Response, error) {
				tok := bad
				if n.Add(1) > 1 {
					tok = "sel_tok_good"
				}
				b, _ := json.Marshal(map[string]any{"status": "success", "response": map[string]string{"token": tok}})
				return httpmock.NewBytesResponse(200, b), nil
			})
			env.mt.RegisterResponder(http.MethodPost, selartiBase+"send_external_message", httpmock.NewStringResponder(200, okAnswer))
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "/api/1.1/wf/auth", ae.Path)
			assert.Contains(t, ae.Message, "control character")
			assert.NotErrorIs(t, err, ErrOutcomeUnknown)
			assert.NotErrorIs(t, err, ErrBadResponse)
			assert.Zero(t, env.mt.GetCallCountInfo()["POST "+selartiBase+"send_external_message"], "nothing sent")

			_, err = env.c.Selarti.Send(context.Background(), sendMsg())
			require.NoError(t, err)
			assert.EqualValues(t, 2, n.Load(), "the bad token was not cached")
		})
	}
}

// A 431 refuses the headers, the token's too: the token is dropped, the
// key exchanged anew and the call repeated once.
func TestSelartiTokenDroppedOn431(t *testing.T) {
	env := newSelartiEnv(t)
	var n atomic.Int32
	env.answer("send_external_message", func(r *http.Request) (*http.Response, error) {
		if n.Add(1) == 1 {
			return httpmock.NewStringResponse(431, ""), nil
		}
		return httpmock.NewStringResponse(200, okAnswer), nil
	})
	_, err := env.c.Selarti.Send(context.Background(), sendMsg())
	require.NoError(t, err)
	assert.EqualValues(t, 2, env.exchanges.Load())
	calls := env.Calls()
	require.Len(t, calls, 4)
	assert.Equal(t, "Bearer "+testSelartiToken(1), calls[1].Header.Get("Authorization"))
	assert.Equal(t, "Bearer "+testSelartiToken(2), calls[3].Header.Get("Authorization"))
}

// The sending and retrying lines name the path template, as the call done
// line does: a filled-in path holds ids, personal data.
func TestLogLinesNameThePathTemplate(t *testing.T) {
	env := NewTestEnv(t)
	var n atomic.Int32
	env.mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		switch n.Add(1) {
		case 1:
			return httpmock.NewStringResponse(503, `{}`), nil
		case 2:
			return nil, io.ErrUnexpectedEOF
		}
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	var out map[string]any
	require.NoError(t, env.c.do(context.Background(), &request{api: env.c.talkjs, method: http.MethodGet,
		path: "/users/{userID}", params: []string{"+5527999999999"}, out: &out}))
	logs := env.logs.String()
	assert.Equal(t, 3, strings.Count(logs, "msg=\"convo: sending\""))
	assert.Equal(t, 2, strings.Count(logs, "msg=\"convo: retrying\""))
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		assert.Contains(t, l, "path=/v1/{appID}/users/{userID}")
		assert.NotContains(t, l, "5527999999999")
	}
}

// When the credential step of a retry fails (the token was dropped during
// the backoff and the re-exchange fails), the call's error is the
// exchange's, not the 429 before it: the retry was not sent.
func TestReexchangeFailingInARetryIsTheError(t *testing.T) {
	env := newSelartiEnv(t)
	tok := env.c.selarti.api.cred.(*selartiToken)
	env.answer("send_external_message", func(*http.Request) (*http.Response, error) {
		// Meanwhile, a concurrent call's token was refused, and the
		// exchange now fails.
		env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", httpmock.NewStringResponder(400, `{"status":"MISSING_DATA","message":"no key"}`))
		tok.refused(tok.h)
		return httpmock.NewStringResponse(429, `{}`), nil
	})
	_, err := env.c.Selarti.Send(context.Background(), sendMsg())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "/api/1.1/wf/auth", ae.Path)
	assert.Equal(t, 400, ae.StatusCode)
	assert.NotErrorIs(t, err, ErrRateLimited)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown)
	assert.Equal(t, 1, env.count("send_external_message"))
}

// A credential step is never ambiguous (its failure leaves the call
// unsent): its 503 attempts and the exchange call are server_error, its
// unreadable 2xx bad_response, never ok.
func TestCredentialStepOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer httpmock.Responder
		out    Outcome
		each   []Outcome
	}{
		{"503", httpmock.NewStringResponder(503, `{}`), OutcomeServerError, []Outcome{OutcomeServerError, OutcomeServerError, OutcomeServerError, OutcomeServerError}},
		{"unreadable 200", httpmock.NewStringResponder(200, `{"response":{}}`), OutcomeBadResponse, []Outcome{OutcomeBadResponse}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			got := map[string][]Outcome{}
			env := NewTestEnv(t, WithSelarti(testSelartiKey), WithObserver(Observer{
				AttemptDone: func(_ context.Context, a AttemptResult) {
					mu.Lock()
					defer mu.Unlock()
					got["attempt "+a.Call.Operation] = append(got["attempt "+a.Call.Operation], a.Outcome)
				},
				CallDone: func(_ context.Context, c CallResult) {
					mu.Lock()
					defer mu.Unlock()
					got[c.Call.Operation] = append(got[c.Call.Operation], c.Outcome)
				},
			}))
			env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", tc.answer)
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			require.Error(t, err)
			assert.Equal(t, map[string][]Outcome{
				"attempt selarti.auth.exchange": tc.each,
				"selarti.auth.exchange":         {tc.out},
				"selarti.selarti.send":          {tc.out},
			}, got)
		})
	}
}
