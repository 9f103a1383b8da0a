package convo_test

// The fault suite: every endpoint against every fault, on the convotest
// fake over real loopback connections. Each cell asserts the outcome, the
// number of tries the server saw, and, for every send that can reach a
// person (a session start, messages, a message to Selarti's AI), that the
// fake delivered it at most once.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// faultRetry allows 3 retries (4 tries) with short waits; MaxWait is
// below the Retry-After of the "429 Retry-After 120" fault.
var faultRetry = convo.RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond}

// headerTimeout is the per-attempt wait for response headers in the suite;
// slowHeaderTimeout is the shorter one of the "slow headers" fault.
const (
	headerTimeout     = 10 * time.Second
	slowHeaderTimeout = 500 * time.Millisecond
	// attemptTimeout is WithTimeout of the "trickled body" fault, whose
	// body comes a byte every trickleEvery: past it even for a 2-byte body.
	attemptTimeout = 600 * time.Millisecond
	trickleEvery   = 2 * time.Second
)

// redirectLocation is where the redirect faults point: the fake itself,
// so that a redirect followed would be a request it sees.
const redirectLocation = "/v1/redirected?token=REDIRECT-SECRET"

// faultEndpoint is one SDK call under test.
type faultEndpoint struct {
	name   string
	method string
	path   string // the fake's path pattern of the call
	safe   bool   // the pipeline may repeat it after it may have reached the server
	// setup prepares the fake's state (users, conversations) before the call.
	setup func(t *testing.T, c *convo.Client)
	call  func(ctx context.Context, c *convo.Client) error
	// delivered counts what reached a person on the fake; nil for calls
	// that send nothing to a person.
	delivered func(srv *convotest.Server) int
	// discards: a POST whose success body is not read.
	discards bool
	// streamed: the body is a stream that is not repeatable, so it is not
	// sent again after a 429 either; once: it cannot be rewound, so it is
	// never sent again, not even after a dial failure.
	streamed, once bool
	// onMessage, when set, is the call instead of call, given the id of
	// the message oneMessage sent (read from the fake's state, so that no
	// request of the cell's client goes to finding it).
	onMessage func(ctx context.Context, c *convo.Client, msgID string) error
}

// run makes the endpoint's call.
func (ep faultEndpoint) run(ctx context.Context, c *convo.Client, srv *convotest.Server) error {
	if ep.onMessage == nil {
		return ep.call(ctx, c)
	}
	msgID := "msg_missing"
	if msgs := srv.Messages("conv1"); len(msgs) > 0 {
		msgID = msgs[0].ID
	}
	return ep.onMessage(ctx, c, msgID)
}

// outcome is what a fault must lead to on one endpoint.
type outcome struct {
	tries int   // requests the fake saw for the call
	err   error // nil (and status 0): the call succeeds; else errors.Is must match
	also  error // when not nil, errors.Is must match it too
	// status, when not 0, is the StatusCode of the *APIError the call
	// must fail with.
	status int
	// acted: the fake applied the call at least once, so a send is
	// delivered exactly once; otherwise not at all.
	acted bool
}

// faultCase is one fault and the outcome it must have on an endpoint.
type faultCase struct {
	name   string
	faults func(ep faultEndpoint) []convotest.Fault
	expect func(ep faultEndpoint) outcome
	slow   bool // the server handles a request after the client gave up on it
	// heavy marks a cell that costs seconds or tens of MiB: under
	// -short it runs on shortEndpoints only.
	heavy bool
	// opts, when not nil, gives more options for the client under test;
	// cancel ends the call's context.
	opts func(cancel context.CancelFunc) []convo.Option
}

func one(f convotest.Fault) func(faultEndpoint) []convotest.Fault {
	return func(ep faultEndpoint) []convotest.Fault {
		f.Method, f.Path = ep.method, ep.path
		return []convotest.Fault{f}
	}
}

// retriedWhenSafe: a safe call is tried again and then succeeds; an unsafe
// one gives errUnsafe after one try.
func retriedWhenSafe(errUnsafe error, acted bool) func(faultEndpoint) outcome {
	return func(ep faultEndpoint) outcome {
		if ep.safe {
			return outcome{tries: 2, acted: true}
		}
		return outcome{tries: 1, err: errUnsafe, acted: acted}
	}
}

func always(o outcome) func(faultEndpoint) outcome {
	return func(faultEndpoint) outcome { return o }
}

var faultCases = []faultCase{
	{
		name:   "reset before the response, server did not act",
		faults: one(convotest.Fault{Drop: true}),
		expect: retriedWhenSafe(convo.ErrOutcomeUnknown, false),
	},
	{
		name:   "reset before the response, server acted",
		faults: one(convotest.Fault{Drop: true, AfterApply: true}),
		expect: retriedWhenSafe(convo.ErrOutcomeUnknown, true),
	},
	{
		name:   "reset after the response started (truncated body), server acted",
		faults: one(convotest.Fault{Status: 200, Truncate: true, AfterApply: true}),
		expect: func(ep faultEndpoint) outcome {
			if !ep.decodes() {
				return outcome{tries: 1, acted: true} // a 2xx is the whole answer
			}
			return retriedWhenSafe(convo.ErrBadResponse, true)(ep)
		},
	},
	{
		name:   "429 without Retry-After, twice",
		faults: one(convotest.Fault{Status: 429, Times: 2}),
		expect: rateLimitedTwice,
	},
	{
		name:   "429 with Retry-After 0, twice",
		faults: one(convotest.Fault{Status: 429, RetryAfter: "0", Times: 2}),
		expect: rateLimitedTwice,
	},
	{
		name:   "429 with Retry-After above MaxWait",
		faults: one(convotest.Fault{Status: 429, RetryAfter: "120"}),
		expect: always(outcome{tries: 1, err: convo.ErrRateLimited}),
	},
	{
		name:   "500, server did not act",
		faults: one(convotest.Fault{Status: 500}),
		expect: retriedWhenSafe(convo.ErrServer, false),
	},
	{
		name:   "500, server acted",
		faults: one(convotest.Fault{Status: 500, AfterApply: true}),
		expect: retriedWhenSafe(convo.ErrServer, true),
	},
	{
		name:   "502 with an HTML body",
		faults: one(convotest.Fault{Status: 502, Body: "<html><body>Bad Gateway</body></html>"}),
		expect: retriedWhenSafe(convo.ErrServer, false),
	},
	{
		name:   "503",
		faults: one(convotest.Fault{Status: 503}),
		expect: retriedWhenSafe(convo.ErrServer, false),
	},
	{
		name:   "504, server acted",
		faults: one(convotest.Fault{Status: 504, AfterApply: true}),
		expect: retriedWhenSafe(convo.ErrServer, true),
	},
	{
		name:   "503 four times: retries exhausted",
		faults: one(convotest.Fault{Status: 503, Times: 4}),
		expect: func(ep faultEndpoint) outcome {
			if ep.safe {
				return outcome{tries: 4, err: convo.ErrServer}
			}
			return outcome{tries: 1, err: convo.ErrServer}
		},
	},
	{
		name:   "slow headers past the per-attempt timeout, server acted late",
		faults: one(convotest.Fault{Delay: slowHeaderTimeout + 300*time.Millisecond}),
		expect: retriedWhenSafe(convo.ErrOutcomeUnknown, true),
		slow:   true,
		heavy:  true,
	},
	{
		name:   "HTML instead of JSON on success, server acted",
		faults: one(convotest.Fault{Status: 200, Body: "<!doctype html><p>ok</p>", AfterApply: true}),
		expect: func(ep faultEndpoint) outcome {
			if ep.decodes() {
				return outcome{tries: 1, err: convo.ErrBadResponse, acted: true}
			}
			return outcome{tries: 1, acted: true}
		},
	},
	{
		name:   "empty body on success, server acted",
		faults: one(convotest.Fault{Status: 200, Body: " ", AfterApply: true}),
		expect: func(ep faultEndpoint) outcome {
			if ep.decodes() {
				return outcome{tries: 1, err: convo.ErrBadResponse, acted: true}
			}
			return outcome{tries: 1, acted: true}
		},
	},
	{
		heavy:  true,
		name:   "a 20 MiB body on success, server acted",
		faults: one(convotest.Fault{Status: 200, Body: `{"data":"` + strings.Repeat("x", 20<<20) + `"}`, AfterApply: true}),
		expect: func(ep faultEndpoint) outcome {
			if ep.decodes() {
				return outcome{tries: 1, err: convo.ErrBadResponse, acted: true}
			}
			return outcome{tries: 1, acted: true}
		},
	},
	{
		heavy:  true,
		name:   "a 20 MiB error body",
		faults: one(convotest.Fault{Status: 500, Body: strings.Repeat("e", 20<<20)}),
		expect: retriedWhenSafe(convo.ErrServer, false),
	},
	redirect(301), redirect(302), redirect(303), redirect(307), redirect(308),
	{
		// A safe call waits to try again, and its context ends meanwhile;
		// a session start is not retried after a 502 at all.
		name:   "context ends in the backoff after the call may have reached the server",
		faults: one(convotest.Fault{Status: 502, AfterApply: true}),
		opts: func(cancel context.CancelFunc) []convo.Option {
			return []convo.Option{
				convo.WithRetry(convo.RetryPolicy{MaxRetries: 3, MinWait: time.Hour, MaxWait: time.Hour}),
				convo.WithLogger(convo.CancelOnRetry(cancel, nil)),
			}
		},
		expect: func(ep faultEndpoint) outcome {
			if ep.safe {
				return outcome{tries: 1, err: convo.ErrOutcomeUnknown, also: context.Canceled, acted: true}
			}
			return outcome{tries: 1, err: convo.ErrOutcomeUnknown, acted: true}
		},
	},
	{
		name:   "2xx body trickled past the attempt timeout, server acted",
		faults: one(convotest.Fault{Status: 200, Trickle: trickleEvery, AfterApply: true}),
		opts: func(context.CancelFunc) []convo.Option {
			return []convo.Option{convo.WithTimeout(attemptTimeout)}
		},
		expect: func(ep faultEndpoint) outcome {
			if !ep.decodes() {
				return outcome{tries: 1, acted: true} // a 2xx is the whole answer
			}
			return retriedWhenSafe(convo.ErrBadResponse, true)(ep)
		},
		slow:  true,
		heavy: true,
	},
}

// rateLimitedTwice: a call is tried again after each 429 and then
// succeeds; but a stream that was sent is not sent again (a raw upload
// that is not Repeatable, or cannot be rewound).
func rateLimitedTwice(ep faultEndpoint) outcome {
	if ep.streamed || ep.once {
		return outcome{tries: 1, err: convo.ErrRateLimited}
	}
	return outcome{tries: 3, acted: true}
}

// redirect is the fault of a 3xx pointing back at the fake: never
// followed nor repeated, an *APIError with its status; on a call that is
// not safe to repeat, it may have been applied.
func redirect(code int) faultCase {
	return faultCase{
		name: fmt.Sprintf("redirect %d", code),
		faults: one(convotest.Fault{Status: code, Body: `<a href="` + redirectLocation + `">moved</a>`,
			Header: http.Header{"Location": {redirectLocation}}}),
		expect: func(ep faultEndpoint) outcome {
			if ep.safe {
				return outcome{tries: 1, status: code}
			}
			return outcome{tries: 1, status: code, err: convo.ErrOutcomeUnknown}
		},
	}
}

// decodes reports whether the endpoint reads the success body (a PUT or
// DELETE answers {} and its body is discarded, like the POSTs marked
// discards).
func (ep faultEndpoint) decodes() bool {
	return (ep.method == http.MethodGet || ep.method == http.MethodPost) && !ep.discards
}

func faultClient(t *testing.T, srv *convotest.Server, tr http.RoundTripper, more ...convo.Option) *convo.Client {
	t.Helper()
	opts := []convo.Option{convo.WithHTTPClient(&http.Client{Transport: tr}), convo.WithRetry(faultRetry)}
	if os.Getenv("CONVO_FAULT_LOG") != "" {
		opts = append(opts, convo.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	opts = append(opts, more...)
	c, err := srv.Client(opts...)
	require.NoError(t, err)
	return c
}

// suiteTransport opens a new connection for every request, so the count
// of tries is exactly the count of requests (net/http replays an idempotent
// request that fails on a reused connection by itself), and waits timeout
// for response headers.
func suiteTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: timeout}
}

func TestFaultSuite(t *testing.T) {
	if convo.RaceEnabled {
		// The suite's outcomes depend on a per-attempt timeout, which the
		// race detector's slowdown (5-10x, with 20 MiB bodies) would trip;
		// it runs in the plain `go test ./...`.
		t.Skip("timing-based: runs without -race")
	}
	noLeak := convo.GoroutineCheck(t)
	cells := 0
	t.Run("cells", func(t *testing.T) { cells = runFaultCells(t) })
	noLeak()
	t.Logf("fault suite: %d endpoints x (%d faults + dial failure) = %d cells", len(faultEndpoints()), len(faultCases), cells)
}

// shortEndpoints are the endpoints that get the heavy faults under -short:
// a session start, never repeated, and a message send, repeated safely by
// its idempotency keys. Every other fault runs on every endpoint in any
// mode, and every fault on every endpoint without -short.
var shortEndpoints = map[string]bool{"Sessions.Start": true, "Conversations.SendMessages": true}

func runFaultCells(t *testing.T) int {
	cells := 0
	for _, ep := range faultEndpoints() {
		for _, fc := range faultCases {
			cells++
			t.Run(ep.name+"/"+fc.name, func(t *testing.T) {
				if testing.Short() && fc.heavy && !shortEndpoints[ep.name] {
					t.Skip("heavy: runs on every endpoint without -short")
				}
				t.Parallel()
				srv := convotest.NewServer()
				defer srv.Close()
				timeout := headerTimeout
				if fc.slow {
					timeout = slowHeaderTimeout
				}
				tr := suiteTransport(timeout)
				defer tr.CloseIdleConnections()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var more []convo.Option
				if fc.opts != nil {
					more = fc.opts(cancel)
				}
				c := faultClient(t, srv, tr, more...)
				if ep.setup != nil {
					ep.setup(t, c)
				}
				srv.ClearRequests()
				srv.Inject(fc.faults(ep)...)
				want := fc.expect(ep)

				err := ep.run(ctx, c, srv)

				checkOutcome(t, err, want)
				assert.Equal(t, want.tries, srv.RequestCount(ep.method, ep.path), "tries")
				exchanges := 0
				if strings.HasPrefix(ep.path, selartiWF) {
					// The fault hits the workflow, not the token exchange.
					exchanges = 1
					assert.Equal(t, 1, srv.RequestCount(http.MethodPost, selartiWF+"auth"), "token exchanges")
				}
				assert.Len(t, srv.Requests(), want.tries+exchanges, "requests of any path: nothing followed a redirect")
				if fc.slow {
					// Let the late first attempt finish on the server.
					waitFor(t, func() bool { return settled(srv) })
				}
				if ep.delivered != nil {
					n := ep.delivered(srv)
					assert.LessOrEqual(t, n, 1, "delivered more than once")
					if want.acted {
						assert.Equal(t, 1, n, "delivered")
					} else {
						assert.Equal(t, 0, n, "delivered")
					}
				}
			})
		}
	}
	for _, ep := range faultEndpoints() {
		cells++
		t.Run(ep.name+"/dial failure", func(t *testing.T) {
			t.Parallel()
			srv := convotest.NewServer()
			defer srv.Close()
			c := faultClient(t, srv, suiteTransport(headerTimeout))
			if ep.setup != nil {
				ep.setup(t, c)
			}
			var dials atomic.Int32
			refuse := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
			}}
			c = faultClient(t, srv, refuse)
			err := ep.run(context.Background(), c, srv)
			require.Error(t, err)
			assert.False(t, errors.Is(err, convo.ErrOutcomeUnknown), "nothing was sent: %v", err)
			want := 1 + faultRetry.MaxRetries
			if ep.once {
				want = 1 // a stream that cannot be rewound is never sent again
			}
			assert.EqualValues(t, want, dials.Load(), "tries")
			if ep.delivered != nil {
				assert.Equal(t, 0, ep.delivered(srv))
			}
		})
	}
	return cells
}

// checkOutcome asserts the error a call ended with.
func checkOutcome(t *testing.T, err error, want outcome) {
	t.Helper()
	if want.err == nil && want.status == 0 {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	for _, target := range []error{want.err, want.also} {
		if target != nil {
			require.ErrorIs(t, err, target)
		}
	}
	if want.status != 0 {
		var ae *convo.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, want.status, ae.StatusCode)
		assert.NotContains(t, err.Error(), "REDIRECT-SECRET")
		if want.err == nil {
			assert.NotErrorIs(t, err, convo.ErrOutcomeUnknown, "a call safe to repeat")
		}
	}
}

// settled reports whether the fake has answered every request it received.
func settled(srv *convotest.Server) bool {
	for _, r := range srv.Requests() {
		if r.Status == 0 && (r.Fault == nil || !r.Fault.Drop) {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// drain runs a list to its end and returns its first error.
func drain[T any](seq iter.Seq2[*T, error]) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return nil
}

// talkjsSetup creates two users and a conversation between them.
func talkjsSetup(t *testing.T, c *convo.Client) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, c.Users.Upsert(ctx, "alice", convo.UserUpdate{Name: "Alice"}))
	require.NoError(t, c.Users.Upsert(ctx, "bob", convo.UserUpdate{Name: "Bob"}))
	require.NoError(t, c.Conversations.Upsert(ctx, "conv1", convo.ConversationUpdate{Participants: []string{"alice", "bob"}, Subject: "Order"}))
}

const app = "/v1/" + convotest.DefaultAppID

// selartiWF is where the fake serves Selarti's workflows.
const selartiWF = "/api/1.1/wf/"

func faultEndpoints() []faultEndpoint {
	return []faultEndpoint{
		{
			name: "Sessions.Start", method: http.MethodPost, path: "/tenants/*",
			call: func(ctx context.Context, c *convo.Client) error {
				_, err := c.Sessions.Start(ctx, convo.WhatsAppOfficial{
					Phone: "+55 27 99999-9999", Name: "Maria", ModelID: "order_update", Variables: []string{"Maria"},
				})
				return err
			},
			delivered: func(srv *convotest.Server) int { return srv.Stats().TalquiSessions },
		},
		{
			name: "Conversations.SendMessages", method: http.MethodPost, path: app + "/conversations/conv1/messages", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				ids, err := c.Conversations.SendMessages(ctx, "conv1", convo.UserMessage("bob", "Your order is ready"))
				if err == nil && len(ids) != 1 {
					return fmt.Errorf("got %d ids", len(ids))
				}
				return err
			},
			delivered: func(srv *convotest.Server) int { return srv.Stats().TalkJSMessages },
		},
		{
			name: "Users.Upsert", method: http.MethodPut, path: app + "/users/carol", safe: true,
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Users.Upsert(ctx, "carol", convo.UserUpdate{Name: "Carol", Email: []string{"carol@example.com"}})
			},
		},
		{
			name: "Users.UpsertMany", method: http.MethodPut, path: app + "/users", safe: true,
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Users.UpsertMany(ctx, map[string]convo.UserUpdate{"carol": {Name: "Carol"}, "dave": {Name: "Dave"}})
			},
		},
		{
			name: "Users.Get", method: http.MethodGet, path: app + "/users/alice", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				u, err := c.Users.Get(ctx, "alice")
				if err == nil && u.Name != "Alice" {
					return fmt.Errorf("got user %+v", u)
				}
				return err
			},
		},
		{
			name: "Users.List", method: http.MethodGet, path: app + "/users", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error { return drain(c.Users.List(ctx, nil)) },
		},
		{
			name: "Users.Conversations", method: http.MethodGet, path: app + "/users/alice/conversations", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				return drain(c.Users.Conversations(ctx, "alice", nil))
			},
		},
		{
			name: "Conversations.Upsert", method: http.MethodPut, path: app + "/conversations/conv2", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Conversations.Upsert(ctx, "conv2", convo.ConversationUpdate{Participants: []string{"alice"}, Subject: "Hi"})
			},
		},
		{
			name: "Conversations.Get", method: http.MethodGet, path: app + "/conversations/conv1", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				_, err := c.Conversations.Get(ctx, "conv1")
				return err
			},
		},
		{
			name: "Conversations.List", method: http.MethodGet, path: app + "/conversations", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error { return drain(c.Conversations.List(ctx, nil)) },
		},
		{
			name: "Conversations.Delete", method: http.MethodDelete, path: app + "/conversations/conv1", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error { return c.Conversations.Delete(ctx, "conv1") },
		},
		{
			name: "Conversations.Join", method: http.MethodPut, path: app + "/conversations/conv1/participants/carol", safe: true,
			setup: func(t *testing.T, c *convo.Client) {
				talkjsSetup(t, c)
				require.NoError(t, c.Users.Upsert(context.Background(), "carol", convo.UserUpdate{Name: "Carol"}))
			},
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Conversations.Join(ctx, "conv1", "carol", convo.Participation{Access: convo.AccessRead})
			},
		},
		{
			name: "Conversations.UpdateParticipation", method: http.MethodPatch, path: app + "/conversations/conv1/participants/bob", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Conversations.UpdateParticipation(ctx, "conv1", "bob", convo.Participation{Notify: convo.NotifyMentionsOnly})
			},
		},
		{
			name: "Conversations.Leave", method: http.MethodDelete, path: app + "/conversations/conv1/participants/bob", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error { return c.Conversations.Leave(ctx, "conv1", "bob") },
		},
		{
			name: "Selarti.Send", method: http.MethodPost, path: selartiWF + "send_external_message",
			call: func(ctx context.Context, c *convo.Client) error {
				_, err := c.Selarti.Send(ctx, convo.SelartiMessage{TaskID: convotest.DefaultSelartiTaskID, ChatID: "tg-1", Text: "Where is my order?"})
				return err
			},
			delivered: func(srv *convotest.Server) int { return srv.Stats().SelartiMessages },
		},
		{
			name: "Selarti.AddTarget", method: http.MethodPost, path: selartiWF + "add_target",
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Selarti.AddTarget(ctx, convotest.DefaultSelartiTaskID, "@maria")
			},
			delivered: func(srv *convotest.Server) int { return srv.Stats().SelartiTargets },
		},
		{
			name: "Conversations.Messages", method: http.MethodGet, path: app + "/conversations/conv1/messages", safe: true,
			setup: func(t *testing.T, c *convo.Client) {
				talkjsSetup(t, c)
				_, err := c.Conversations.SendMessages(context.Background(), "conv1", convo.SystemMessage("Order #391 created"))
				require.NoError(t, err)
			},
			call: func(ctx context.Context, c *convo.Client) error {
				return drain(c.Conversations.Messages(ctx, "conv1", nil))
			},
		},
		{
			name: "Conversations.Message", method: http.MethodGet, path: app + "/conversations/conv1/messages/*", safe: true, setup: oneMessage,
			onMessage: func(ctx context.Context, c *convo.Client, msgID string) error {
				m, err := c.Conversations.Message(ctx, "conv1", msgID)
				if err == nil && m.Text != "Order #391 created" {
					return fmt.Errorf("got message %+v", m)
				}
				return err
			},
		},
		{
			name: "Conversations.EditMessage", method: http.MethodPut, path: app + "/conversations/conv1/messages/*", safe: true, setup: oneMessage,
			onMessage: func(ctx context.Context, c *convo.Client, msgID string) error {
				return c.Conversations.EditMessage(ctx, "conv1", msgID, convo.MessageEdit{Text: "Order #391 shipped"})
			},
		},
		{
			name: "Conversations.DeleteMessage", method: http.MethodDelete, path: app + "/conversations/conv1/messages/*", safe: true, setup: oneMessage,
			onMessage: func(ctx context.Context, c *convo.Client, msgID string) error {
				return c.Conversations.DeleteMessage(ctx, "conv1", msgID)
			},
		},
		{
			name: "Conversations.ImportMessages", method: http.MethodPost, path: app + "/import/conversations/conv1/messages", setup: talkjsSetup, discards: true,
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Conversations.ImportMessages(ctx, "conv1", convo.ImportMessage{
					Sender: "alice", Text: "Is my order on its way?", Timestamp: time.Date(2021, 1, 1, 9, 0, 0, 0, time.UTC),
				})
			},
			delivered: func(srv *convotest.Server) int { return srv.Stats().TalkJSImported },
		},
		{
			name: "Conversations.TriggerNotifications", method: http.MethodPost, path: app + "/conversations/conv1/notifications", setup: talkjsSetup, discards: true,
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Conversations.TriggerNotifications(ctx, "conv1", convo.NotificationTrigger{
					Channels: []convo.NotificationChannel{convo.ChannelEmail}, Recipients: []string{"bob"},
				})
			},
			delivered: func(srv *convotest.Server) int { return srv.Stats().TalkJSNotifications },
		},
		{
			name: "Conversations.MarkAsRead", method: http.MethodPost, path: app + "/conversations/conv1/readBy/bob", safe: true, setup: oneMessage, discards: true,
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Conversations.MarkAsRead(ctx, "conv1", "bob")
			},
		},
		{
			name: "Raw.GET", method: http.MethodGet, path: app + "/users/alice", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				var u struct{ Name string }
				err := c.Raw(ctx, convo.RawRequest{Provider: convo.ProviderTalkJS, Method: http.MethodGet, Path: "/users/alice"}, &u)
				if err == nil && u.Name != "Alice" {
					return fmt.Errorf("got user %+v", u)
				}
				return err
			},
		},
		{
			// Messages without idempotency keys: not safe to repeat.
			name: "Raw.POST", method: http.MethodPost, path: app + "/conversations/conv1/messages", setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				var ids []struct{ ID string }
				return c.Raw(ctx, convo.RawRequest{Provider: convo.ProviderTalkJS, Method: http.MethodPost, Path: "/conversations/conv1/messages",
					Body: []map[string]string{{"text": "Your order is ready", "sender": "bob", "type": "UserMessage"}}}, &ids)
			},
			delivered: func(srv *convotest.Server) int { return srv.Stats().TalkJSMessages },
		},
		{
			name: "Raw.POST Repeatable", method: http.MethodPost, path: app + "/presences", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				var out json.RawMessage
				return c.Raw(ctx, convo.RawRequest{Provider: convo.ProviderTalkJS, Method: http.MethodPost, Path: "/presences",
					Body: map[string]any{"userIds": []string{"alice"}}, Repeatable: true}, &out)
			},
		},
		{
			name: "Raw.upload", method: http.MethodPost, path: app + "/files", streamed: true,
			call:      func(ctx context.Context, c *convo.Client) error { return rawUpload(ctx, c, false, false) },
			delivered: func(srv *convotest.Server) int { return srv.Stats().TalkJSFiles },
		},
		{
			// Uploading twice stores the file twice, which harms nothing.
			name: "Raw.upload Repeatable", method: http.MethodPost, path: app + "/files", safe: true,
			call: func(ctx context.Context, c *convo.Client) error { return rawUpload(ctx, c, true, false) },
		},
		{
			name: "Raw.upload from a reader that cannot be rewound", method: http.MethodPost, path: app + "/files", once: true,
			call:      func(ctx context.Context, c *convo.Client) error { return rawUpload(ctx, c, true, true) },
			delivered: func(srv *convotest.Server) int { return srv.Stats().TalkJSFiles },
		},
		{
			name: "Raw.Selarti", method: http.MethodPost, path: selartiWF + "add_target", discards: true,
			call: func(ctx context.Context, c *convo.Client) error {
				return c.Raw(ctx, convo.RawRequest{Provider: convo.ProviderSelarti, Method: http.MethodPost, Path: "/wf/add_target",
					Body: map[string]string{"task": convotest.DefaultSelartiTaskID, "target": "@maria"}}, nil)
			},
			delivered: func(srv *convotest.Server) int { return srv.Stats().SelartiTargets },
		},
		{
			name: "Users.Presence", method: http.MethodPost, path: app + "/presences", safe: true, setup: talkjsSetup,
			call: func(ctx context.Context, c *convo.Client) error {
				_, err := c.Users.Presence(ctx, convo.PresenceQuery{UserIDs: []string{"alice"}})
				return err
			},
		},
	}
}

// oneMessage is talkjsSetup plus one system message in conv1.
func oneMessage(t *testing.T, c *convo.Client) {
	t.Helper()
	talkjsSetup(t, c)
	_, err := c.Conversations.SendMessages(context.Background(), "conv1", convo.SystemMessage("Order #391 created"))
	require.NoError(t, err)
}

// rawUpload uploads a file to TalkJS through Client.Raw, as TalkJS's
// example does: a multipart form with the file and its name. The form is
// read from a bytes.Buffer, which cannot be rewound, when once is set.
func rawUpload(ctx context.Context, c *convo.Client, repeatable, once bool) error {
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, err := mw.CreateFormFile("file", "receipt.txt")
	if err != nil {
		return err
	}
	_, _ = fw.Write([]byte("Order #391: 2 x boots"))
	_ = mw.WriteField("filename", "Receipt")
	if err := mw.Close(); err != nil {
		return err
	}
	var body io.Reader = bytes.NewReader(form.Bytes())
	if once {
		body = &form
	}
	var out struct {
		AttachmentToken string `json:"attachmentToken"`
	}
	err = c.Raw(ctx, convo.RawRequest{Provider: convo.ProviderTalkJS, Method: http.MethodPost, Path: "/files",
		Body: body, ContentType: mw.FormDataContentType(), Repeatable: repeatable}, &out)
	if err == nil && !strings.HasPrefix(out.AttachmentToken, "att_") {
		return fmt.Errorf("got %+v", out)
	}
	return err
}
