package convo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type (
	obsCallKey    struct{}
	obsAttemptKey struct{}
)

// watcher records every event an Observer gets, with the context values
// the earlier hooks put in.
type watcher struct {
	mu       sync.Mutex
	calls    []CallInfo
	attempts []AttemptInfo
	results  []AttemptResult
	done     []CallResult
	ctxs     []string // "<hook> <call value> <attempt value>"
}

func (w *watcher) note(hook string, ctx context.Context) {
	c, _ := ctx.Value(obsCallKey{}).(string)
	a, _ := ctx.Value(obsAttemptKey{}).(int)
	w.ctxs = append(w.ctxs, fmt.Sprintf("%s %s %d", hook, c, a))
}

func (w *watcher) observer() Observer {
	return Observer{
		CallStart: func(ctx context.Context, c CallInfo) context.Context {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.calls = append(w.calls, c)
			return context.WithValue(ctx, obsCallKey{}, c.Operation)
		},
		AttemptStart: func(ctx context.Context, a AttemptInfo) context.Context {
			a.Header.Set("traceparent", "00-trace-attempt-"+strconv.Itoa(a.Attempt))
			a.Header.Set("Authorization", "Bearer stolen")
			a.Header.Set("X-Bad", "a\r\nb")
			w.mu.Lock()
			defer w.mu.Unlock()
			w.note("attempt-start", ctx)
			a.Header = AttemptHeader{} // kept for the checks; the map is the request's
			w.attempts = append(w.attempts, a)
			return context.WithValue(ctx, obsAttemptKey{}, a.Attempt)
		},
		AttemptDone: func(ctx context.Context, a AttemptResult) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.note("attempt-done", ctx)
			w.results = append(w.results, a)
		},
		CallDone: func(ctx context.Context, c CallResult) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.note("call-done", ctx)
			w.done = append(w.done, c)
		},
	}
}

// all renders every event, for the checks that nothing leaks.
func (w *watcher) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%#v %#v %#v %#v %+v %+v %+v %+v", w.calls, w.attempts, w.results, w.done,
		w.calls, w.attempts, w.results, w.done)
}

// sequence answers the responders in turn, the last one for good.
func sequence(rs ...httpmock.Responder) httpmock.Responder {
	var n atomic.Int32
	return func(req *http.Request) (*http.Response, error) {
		i := int(n.Add(1)) - 1
		return rs[min(i, len(rs)-1)](req)
	}
}

func newWatched(t *testing.T, opts ...Option) (*TestEnv, *watcher) {
	w := &watcher{}
	return NewTestEnv(t, append([]Option{WithObserver(w.observer())}, opts...)...), w
}

func TestObserverSeesEveryAttemptOfARetriedCall(t *testing.T) {
	env, w := newWatched(t)
	var callCtx []string
	c, _, _ := env.Answer(sequence(
		statusResponder(503),
		statusResponder(429, "X-Request-Id", "req-2"),
		func(req *http.Request) (*http.Response, error) {
			callCtx = append(callCtx, fmt.Sprint(req.Context().Value(obsCallKey{})))
			return httpmock.NewStringResponse(200, `{}`), nil
		},
	))
	require.NoError(t, c.Users.Upsert(context.Background(), "12081", UserUpdate{Name: "Alice"}))

	info := CallInfo{Provider: ProviderTalkJS, Operation: "talkjs.users.upsert", Method: http.MethodPut,
		PathTemplate: "/v1/{appID}/users/{userID}", ServerAddress: "api.talkjs.com", ServerPort: 443}
	assert.Equal(t, []CallInfo{info}, w.calls)
	assert.Equal(t, []AttemptInfo{{Call: info, Attempt: 1}, {Call: info, Attempt: 2}, {Call: info, Attempt: 3}}, w.attempts)
	require.Len(t, w.results, 3)
	for i, want := range []struct {
		status int
		out    Outcome
		reqID  string
	}{{503, OutcomeUnknown, ""}, {429, OutcomeRateLimited, "req-2"}, {200, OutcomeOK, ""}} {
		r := w.results[i]
		assert.Equal(t, info, r.Call)
		assert.Equal(t, i+1, r.Attempt, "attempt")
		assert.Equal(t, want.status, r.Status, "attempt %d status", i+1)
		assert.Equal(t, want.out, r.Outcome, "attempt %d outcome", i+1)
		assert.Equal(t, want.reqID, r.RequestID, "attempt %d request id", i+1)
		assert.Positive(t, r.Duration)
	}
	require.Len(t, w.done, 1)
	d := w.done[0]
	assert.Equal(t, CallResult{Call: info, Attempts: 3, Status: 200, Outcome: OutcomeOK, Duration: d.Duration}, d)
	assert.GreaterOrEqual(t, d.Duration, w.results[0].Duration+w.results[1].Duration+w.results[2].Duration)

	// The context of CallStart reaches every hook and the request; each
	// attempt's own context reaches its AttemptDone.
	assert.Equal(t, []string{
		"attempt-start talkjs.users.upsert 0", "attempt-done talkjs.users.upsert 1",
		"attempt-start talkjs.users.upsert 0", "attempt-done talkjs.users.upsert 2",
		"attempt-start talkjs.users.upsert 0", "attempt-done talkjs.users.upsert 3",
		"call-done talkjs.users.upsert 0",
	}, w.ctxs)
	assert.Equal(t, []string{"talkjs.users.upsert"}, callCtx)

	// Each attempt carries its own header; the client's own headers and
	// a value with a line break are refused.
	calls := env.Calls()
	require.Len(t, calls, 3)
	for i, call := range calls {
		assert.Equal(t, []string{"00-trace-attempt-" + strconv.Itoa(i+1)}, call.Header["Traceparent"])
		assert.Equal(t, "Bearer "+testTalkJSToken, call.Header.Get("Authorization"))
		assert.Empty(t, call.Header.Values("X-Bad"))
	}
}

func TestObserverOutcomeOfEachClass(t *testing.T) {
	reset := httpmock.NewErrorResponder(io.ErrUnexpectedEOF)
	upsert := func(c *Client) error { return c.Users.Upsert(context.Background(), "12081", UserUpdate{Name: "Alice"}) }
	get := func(c *Client) error { _, err := c.Users.Get(context.Background(), "12081"); return err }
	cases := []struct {
		name     string
		answer   httpmock.Responder
		call     func(*Client) error
		op       string
		attempts int
		status   int
		out      Outcome
		each     []Outcome // every attempt's outcome
	}{
		{"ok", statusResponder(200), upsert, "talkjs.users.upsert", 1, 200, OutcomeOK, []Outcome{OutcomeOK}},
		{"validation", statusResponder(200), func(c *Client) error {
			return c.Users.Upsert(context.Background(), "12081", UserUpdate{Clear: []string{"nope"}})
		}, "talkjs.users.upsert", 0, 0, OutcomeValidation, nil},
		{"validation of a path segment", statusResponder(200), func(c *Client) error {
			_, err := c.Users.Get(context.Background(), "..")
			return err
		}, "talkjs.users.get", 0, 0, OutcomeValidation, nil},
		{"not found", statusResponder(404), get, "talkjs.users.get", 1, 404, OutcomeNotFound, []Outcome{OutcomeNotFound}},
		{"unauthorized", statusResponder(401), get, "talkjs.users.get", 1, 401, OutcomeUnauthorized, []Outcome{OutcomeUnauthorized}},
		{"invalid request", statusResponder(422), upsert, "talkjs.users.upsert", 1, 422, OutcomeInvalidRequest, []Outcome{OutcomeInvalidRequest}},
		{"rate limited until retries run out", statusResponder(429), get, "talkjs.users.get", 4, 429, OutcomeRateLimited,
			[]Outcome{OutcomeRateLimited, OutcomeRateLimited, OutcomeRateLimited, OutcomeRateLimited}},
		{"server error without doubt", statusResponder(501), get, "talkjs.users.get", 1, 501, OutcomeServerError, []Outcome{OutcomeServerError}},
		{"other status", statusResponder(418), get, "talkjs.users.get", 1, 418, OutcomeAPIError, []Outcome{OutcomeAPIError}},
		{"outcome unknown: a 500 on a send", statusResponder(500), func(c *Client) error { return startCall(context.Background(), c) },
			"talqui.sessions.start", 1, 500, OutcomeUnknown, []Outcome{OutcomeUnknown}},
		{"outcome unknown: a redirect on a send", statusResponder(307), func(c *Client) error { return startCall(context.Background(), c) },
			"talqui.sessions.start", 1, 307, OutcomeUnknown, []Outcome{OutcomeUnknown}},
		{"a redirect on a get", statusResponder(307), get, "talkjs.users.get", 1, 307, OutcomeAPIError, []Outcome{OutcomeAPIError}},
		{"outcome unknown: a reset on a send", reset, func(c *Client) error { return startCall(context.Background(), c) },
			"talqui.sessions.start", 1, 0, OutcomeUnknown, []Outcome{OutcomeUnknown}},
		{"outcome unknown: resets until retries run out", reset, upsert, "talkjs.users.upsert", 4, 0, OutcomeUnknown,
			[]Outcome{OutcomeUnknown, OutcomeUnknown, OutcomeUnknown, OutcomeUnknown}},
		{"bad response", httpmock.NewStringResponder(200, `<html>`), get, "talkjs.users.get", 1, 200, OutcomeBadResponse, []Outcome{OutcomeBadResponse}},
		{"bad response after a retry", sequence(statusResponder(503), httpmock.NewStringResponder(200, ``)), get, "talkjs.users.get", 2, 200,
			OutcomeBadResponse, []Outcome{OutcomeUnknown, OutcomeBadResponse}},
		{"transport: dial failures", httpmock.NewErrorResponder(dialError()), get, "talkjs.users.get", 4, 0, OutcomeTransport,
			[]Outcome{OutcomeTransport, OutcomeTransport, OutcomeTransport, OutcomeTransport}},
		{"transport: a context already done", statusResponder(200), func(c *Client) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return c.Users.Upsert(ctx, "12081", UserUpdate{Name: "Alice"})
		}, "talkjs.users.upsert", 0, 0, OutcomeTransport, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, w := newWatched(t)
			c, _, _ := env.Answer(tc.answer)
			err := tc.call(c)
			if tc.out == OutcomeOK {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
			require.Len(t, w.done, 1)
			d := w.done[0]
			assert.Equal(t, tc.op, d.Call.Operation)
			assert.Equal(t, tc.attempts, d.Attempts, "attempts")
			assert.Equal(t, tc.status, d.Status, "status")
			assert.Equal(t, tc.out, d.Outcome, "outcome of %v", err)
			assert.Len(t, env.Calls(), tc.attempts, "requests sent")
			var each []Outcome
			for i, r := range w.results {
				assert.Equal(t, i+1, r.Attempt)
				each = append(each, r.Outcome)
			}
			assert.Equal(t, tc.each, each, "attempt outcomes")
			assert.Len(t, w.attempts, tc.attempts, "AttemptStart calls")
		})
	}
}

func TestObserverSeesRefusedCalls(t *testing.T) {
	bg := context.Background()
	env, w := newWatched(t)
	c, _, _ := env.Answer(statusResponder(200))
	_, err := c.Conversations.SendMessages(bg, "order_391_fc", OutgoingMessage{Type: MessageTypeUser, Text: "no sender"})
	require.ErrorIs(t, err, ErrValidation)
	err = c.Users.UpsertMany(bg, map[string]UserUpdate{"": {Name: "x"}})
	require.ErrorIs(t, err, ErrValidation)
	for _, err = range c.Users.List(bg, &ListOptions{Limit: -1}) {
	}
	require.ErrorIs(t, err, ErrValidation)
	_, err = c.Conversations.Open(bg, "", OpenConversation{})
	require.ErrorIs(t, err, ErrValidation)
	_, err = c.Sessions.Start(bg, WhatsAppOfficial{Phone: "12"})
	require.ErrorIs(t, err, ErrValidation)
	_, err = c.Sessions.Start(bg, nil)
	require.ErrorIs(t, err, ErrValidation)
	require.ErrorIs(t, c.Conversations.ImportMessages(bg, "c1", ImportMessage{Text: "no sender"}), ErrValidation)
	require.ErrorIs(t, c.Conversations.EditMessage(bg, "c1", "m1", MessageEdit{}), ErrValidation)
	require.ErrorIs(t, c.Conversations.TriggerNotifications(bg, "c1", NotificationTrigger{}), ErrValidation)
	_, err = c.Users.Presence(bg, PresenceQuery{UserIDs: []string{""}})
	require.ErrorIs(t, err, ErrValidation)
	var nilCtx context.Context // a caller's forgotten context
	require.ErrorIs(t, c.Users.Upsert(nilCtx, "12081", UserUpdate{}), ErrValidation)

	onlyTalkJS, err := NewClient(WithTalkJS("app", "sk_x"), WithObserver(w.observer()))
	require.NoError(t, err)
	_, err = onlyTalkJS.Sessions.Start(bg, WhatsAppBusiness{Phone: "+55 27 99999-9999", Text: "Hi"})
	require.ErrorIs(t, err, ErrNotConfigured)

	assert.Empty(t, env.Calls(), "nothing is sent")
	assert.Empty(t, w.attempts)
	var got []string
	for i, d := range w.done {
		assert.Equal(t, w.calls[i], d.Call)
		assert.Zero(t, d.Attempts)
		assert.Zero(t, d.Status)
		got = append(got, fmt.Sprintf("%s %s %s %s", d.Call.Provider, d.Call.Operation, d.Call.PathTemplate, d.Outcome))
	}
	assert.Equal(t, []string{
		"talkjs talkjs.conversations.send_messages /v1/{appID}/conversations/{conversationID}/messages validation",
		"talkjs talkjs.users.upsert_many /v1/{appID}/users validation",
		"talkjs talkjs.users.list /v1/{appID}/users validation",
		"talkjs talkjs.conversations.open /v1/{appID} validation",
		"talqui talqui.sessions.start /tenants/{tenantID}/sessions validation",
		"talqui talqui.sessions.start /tenants/{tenantID}/sessions validation",
		"talkjs talkjs.conversations.import_messages /v1/{appID}/import/conversations/{conversationID}/messages validation",
		"talkjs talkjs.conversations.edit_message /v1/{appID}/conversations/{conversationID}/messages/{messageID} validation",
		"talkjs talkjs.conversations.trigger_notifications /v1/{appID}/conversations/{conversationID}/notifications validation",
		"talkjs talkjs.users.presence /v1/{appID}/presences validation",
		"talkjs talkjs.users.upsert /v1/{appID}/users/{userID} validation",
		"talqui talqui.sessions.start /tenants/{tenantID}/sessions validation",
	}, got)
}

// TestObserverOperations names every endpoint's operation and template.
func TestObserverOperations(t *testing.T) {
	bg := context.Background()
	env, w := newWatched(t, WithTalkJSURL("http://127.0.0.1:8099/proxy"))
	c, _, _ := env.Answer(func(req *http.Request) (*http.Response, error) {
		switch {
		case req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "s"):
			return httpmock.NewStringResponse(200, `{"data":[]}`), nil
		case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/messages"):
			return httpmock.NewStringResponse(200, `[{"id":"m1"}]`), nil
		case strings.HasPrefix(req.URL.Path, "/tenants/"):
			return httpmock.NewStringResponse(200, `{"contact":{},"session":{},"message":{}}`), nil
		}
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	u := UserUpdate{Name: "Alice"}
	_, err := c.Sessions.Start(bg, WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "+55 27 99999-9999", Text: "Hi"})
	require.NoError(t, err)
	require.NoError(t, c.Users.Upsert(bg, "12081", u))
	require.NoError(t, c.Users.UpsertMany(bg, map[string]UserUpdate{"1": u, "2": u}))
	_, err = c.Users.Get(bg, "12081")
	require.NoError(t, err)
	for _, err := range c.Users.List(bg, nil) {
		require.NoError(t, err)
	}
	for _, err := range c.Users.Conversations(bg, "12081", nil) {
		require.NoError(t, err)
	}
	require.NoError(t, c.Conversations.Upsert(bg, "order_391_fc", ConversationUpdate{Subject: "s"}))
	_, err = c.Conversations.Get(bg, "order_391_fc")
	require.NoError(t, err)
	for _, err := range c.Conversations.List(bg, nil) {
		require.NoError(t, err)
	}
	require.NoError(t, c.Conversations.Delete(bg, "order_391_fc"))
	require.NoError(t, c.Conversations.Join(bg, "order_391_fc", "12081", Participation{}))
	require.NoError(t, c.Conversations.UpdateParticipation(bg, "order_391_fc", "12081", Participation{Notify: NotifyOff}))
	require.NoError(t, c.Conversations.Leave(bg, "order_391_fc", "12081"))
	_, err = c.Conversations.SendMessages(bg, "order_391_fc", UserMessage("12081", "Hi"))
	require.NoError(t, err)
	for _, err := range c.Conversations.Messages(bg, "order_391_fc", nil) {
		require.NoError(t, err)
	}
	_, err = c.Conversations.Message(bg, "order_391_fc", "msg_1")
	require.NoError(t, err)
	require.NoError(t, c.Conversations.EditMessage(bg, "order_391_fc", "msg_1", MessageEdit{Text: "edited"}))
	require.NoError(t, c.Conversations.DeleteMessage(bg, "order_391_fc", "msg_1"))
	require.NoError(t, c.Conversations.ImportMessages(bg, "order_391_fc",
		ImportMessage{Sender: "12081", Text: "old", Timestamp: time.UnixMilli(1700000000000)}))
	require.NoError(t, c.Conversations.TriggerNotifications(bg, "order_391_fc",
		NotificationTrigger{Channels: []NotificationChannel{ChannelEmail}}))
	_, err = c.Users.Presence(bg, PresenceQuery{})
	require.NoError(t, err)

	var got []string
	for _, d := range w.done {
		i := d.Call
		got = append(got, fmt.Sprintf("%s %s %s %s:%d", i.Operation, i.Method, i.PathTemplate, i.ServerAddress, i.ServerPort))
		assert.Equal(t, OutcomeOK, d.Outcome, i.Operation)
		assert.Regexp(t, `^(talqui|talkjs|selarti)\.[a-z_]+\.[a-z_]+$`, i.Operation)
	}
	const tj = " /proxy/v1/{appID}"
	const host = " 127.0.0.1:8099"
	assert.Equal(t, []string{
		"talqui.sessions.start POST /tenants/{tenantID}/sessions api.talqui.chat:443",
		"talkjs.users.upsert PUT" + tj + "/users/{userID}" + host,
		"talkjs.users.upsert_many PUT" + tj + "/users" + host,
		"talkjs.users.get GET" + tj + "/users/{userID}" + host,
		"talkjs.users.list GET" + tj + "/users" + host,
		"talkjs.users.conversations GET" + tj + "/users/{userID}/conversations" + host,
		"talkjs.conversations.upsert PUT" + tj + "/conversations/{conversationID}" + host,
		"talkjs.conversations.get GET" + tj + "/conversations/{conversationID}" + host,
		"talkjs.conversations.list GET" + tj + "/conversations" + host,
		"talkjs.conversations.delete DELETE" + tj + "/conversations/{conversationID}" + host,
		"talkjs.conversations.join PUT" + tj + "/conversations/{conversationID}/participants/{userID}" + host,
		"talkjs.conversations.update_participation PATCH" + tj + "/conversations/{conversationID}/participants/{userID}" + host,
		"talkjs.conversations.leave DELETE" + tj + "/conversations/{conversationID}/participants/{userID}" + host,
		"talkjs.conversations.send_messages POST" + tj + "/conversations/{conversationID}/messages" + host,
		"talkjs.conversations.messages GET" + tj + "/conversations/{conversationID}/messages" + host,
		"talkjs.conversations.message GET" + tj + "/conversations/{conversationID}/messages/{messageID}" + host,
		"talkjs.conversations.edit_message PUT" + tj + "/conversations/{conversationID}/messages/{messageID}" + host,
		"talkjs.conversations.delete_message DELETE" + tj + "/conversations/{conversationID}/messages/{messageID}" + host,
		"talkjs.conversations.import_messages POST" + tj + "/import/conversations/{conversationID}/messages" + host,
		"talkjs.conversations.trigger_notifications POST" + tj + "/conversations/{conversationID}/notifications" + host,
		"talkjs.users.presence POST" + tj + "/presences" + host,
	}, got)
}

// TestObserverNoSecretNoFilledPath: no event holds a credential, an id of
// the path or a query value, whatever the call and its outcome.
func TestObserverNoSecretNoFilledPath(t *testing.T) {
	bg := context.Background()
	env, w := newWatched(t)
	c, _, _ := env.Answer(sequence(statusResponder(503, "X-Request-Id", "req-1"), statusResponder(200),
		httpmock.NewErrorResponder(io.ErrUnexpectedEOF), statusResponder(401)))
	_ = c.Users.Upsert(bg, "user-ID-4711", UserUpdate{Name: "Alice"})
	_ = startCall(bg, c)
	for _, err := range c.Conversations.Messages(bg, "conv-ID-0815", &ListOptions{StartingAfter: "cursor-VALUE-99"}) {
		_ = err
	}
	_, _ = c.Conversations.SendMessages(bg, "conv-ID-0815", UserMessage("", testTalkJSToken))
	_, _ = c.Sessions.Start(bg, WhatsAppBusiness{ConnectionID: testTokenWA, Phone: "+55 27 99999-9999", Text: "Hi"})
	require.Len(t, w.done, 5)

	s := w.all() + env.logs.String()[strings.Index(env.logs.String(), "convo: call done"):]
	assertNoSecret(t, "observer events", w.all())
	for _, filled := range []string{"user-ID-4711", "conv-ID-0815", "cursor-VALUE-99", "/v1/app1", "tenant-1", "5527999999999"} {
		assert.NotContains(t, w.all(), filled)
	}
	lines := regexp.MustCompile(`(?m)^.*convo: call done.*$`).FindAllString(s, -1)
	require.Len(t, lines, 5)
	for _, l := range lines {
		assertNoSecret(t, "call done line", l)
		for _, filled := range []string{"user-ID-4711", "conv-ID-0815", "cursor-VALUE-99", "/v1/app1", "tenant-1"} {
			assert.NotContains(t, l, filled)
		}
	}
}

// TestCallDoneLogLine: one debug line ends every call, with or without an
// Observer, and says exactly this.
func TestCallDoneLogLine(t *testing.T) {
	bg := context.Background()
	env := NewTestEnv(t)
	c, _, _ := env.Answer(sequence(statusResponder(503), statusResponder(200, "X-Request-Id", "req-42"),
		statusResponder(404, "Request-Id", "req-43")))
	require.NoError(t, c.Users.Upsert(bg, "12081", UserUpdate{Name: "Alice"}))
	_, err := c.Users.Get(bg, "12081")
	require.ErrorIs(t, err, ErrNotFound)
	require.Error(t, c.Users.Upsert(bg, "", UserUpdate{}))

	durs := regexp.MustCompile(`duration=([0-9.]+(ns|µs|ms|s))`)
	var got []string
	for _, l := range strings.Split(env.logs.String(), "\n") {
		if !strings.Contains(l, `msg="convo: call done"`) {
			continue
		}
		m := durs.FindStringSubmatch(l)
		require.NotNil(t, m, l)
		d, err := time.ParseDuration(m[1])
		require.NoError(t, err)
		assert.Positive(t, d)
		l = l[strings.Index(l, "level="):]
		got = append(got, durs.ReplaceAllString(l, "duration=D"))
	}
	assert.Equal(t, []string{
		`level=DEBUG msg="convo: call done" provider=talkjs operation=talkjs.users.upsert method=PUT path=/v1/{appID}/users/{userID} status=200 attempts=2 duration=D request_id=req-42 outcome=ok`,
		`level=DEBUG msg="convo: call done" provider=talkjs operation=talkjs.users.get method=GET path=/v1/{appID}/users/{userID} status=404 attempts=1 duration=D request_id=req-43 outcome=not_found`,
		`level=DEBUG msg="convo: call done" provider=talkjs operation=talkjs.users.upsert method=PUT path=/v1/{appID}/users/{userID} status=0 attempts=0 duration=D request_id="" outcome=validation`,
	}, got)
}

func TestObserverUnsetOrEmpty(t *testing.T) {
	c, err := NewClient(WithTalkJS("app", "sk_x"), WithObserver(Observer{}))
	require.NoError(t, err)
	assert.Nil(t, c.observer, "an Observer without hooks is no observer")
	assert.False(t, c.observing(context.Background()), "no observer, no logger")

	var ends atomic.Int32
	c, err = NewClient(WithTalkJS("app", "sk_x"), WithObserver(Observer{CallDone: func(context.Context, CallResult) { ends.Add(1) }}))
	require.NoError(t, err)
	_, err = c.Users.Get(context.Background(), "")
	require.ErrorIs(t, err, ErrValidation)
	assert.EqualValues(t, 1, ends.Load(), "a single hook is enough")
}

// TestObserverConcurrentBatches: UpsertMany's concurrent batches are one
// observed call each (run it with -race).
func TestObserverConcurrentBatches(t *testing.T) {
	env, w := newWatched(t)
	c, _, _ := env.Answer(statusResponder(200))
	users := map[string]UserUpdate{}
	for i := range 3*UpsertManyBatchSize + 1 {
		users["u"+strconv.Itoa(i)] = UserUpdate{Name: "n"}
	}
	require.NoError(t, c.Users.UpsertMany(context.Background(), users))
	require.Len(t, w.done, 4)
	ops := make([]string, 0, 4)
	for _, d := range w.done {
		ops = append(ops, fmt.Sprint(d.Call.Operation, d.Attempts, d.Outcome))
	}
	assert.Equal(t, slices.Repeat([]string{"talkjs.users.upsert_many1ok"}, 4), ops)
}

// TestObserverSelarti: the token exchange is a call of its own, within the
// call that needed it; a refused token makes one call of two attempts.
func TestObserverSelarti(t *testing.T) {
	w := &watcher{}
	env := newSelartiEnv(t, WithObserver(w.observer()))
	env.answer("send_external_message", sequence(
		httpmock.NewStringResponder(401, `{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"expired"}}`),
		httpmock.NewStringResponder(200, okAnswer)))
	env.answer("add_target", httpmock.NewStringResponder(200, okAnswer))
	ctx := context.Background()
	_, err := env.c.Selarti.Send(ctx, sendMsg())
	require.NoError(t, err)
	require.NoError(t, env.c.Selarti.AddTarget(ctx, testTask, "@maria"))
	_, err = env.c.Selarti.Send(ctx, SelartiMessage{ChatID: "tg-1"})
	require.ErrorIs(t, err, ErrValidation)

	var got []string
	for _, d := range w.done {
		got = append(got, fmt.Sprint(d.Call.Operation, " ", d.Call.PathTemplate, " ", d.Attempts, " ", d.Status, " ", d.Outcome))
	}
	assert.Equal(t, []string{
		"selarti.auth.exchange /api/1.1/wf/auth 1 200 ok",
		"selarti.auth.exchange /api/1.1/wf/auth 1 200 ok",
		"selarti.selarti.send /api/1.1/wf/{workflow} 2 200 ok",
		"selarti.selarti.add_target /api/1.1/wf/{workflow} 1 200 ok",
		"selarti.selarti.send /api/1.1/wf/{workflow} 0 0 validation",
	}, got)
	var sends []string
	for _, r := range w.results {
		if r.Call.Operation == "selarti.selarti.send" {
			sends = append(sends, fmt.Sprint(r.Attempt, " ", r.Status, " ", r.Outcome))
		}
	}
	assert.Equal(t, []string{"1 401 unauthorized", "2 200 ok"}, sends)
	assertNoSelartiSecret(t, "observer events", w.all())
	assert.NotContains(t, w.all(), "send_external_message")
}
