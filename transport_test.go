package convo

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queued lists the attempts in w's queue, head first.
func (w *watchdog) queued() []*attemptCtx {
	w.mu.Lock()
	defer w.mu.Unlock()
	var as []*attemptCtx
	for a := w.head; a != nil; a = a.next {
		as = append(as, a)
	}
	return as
}

// The watchdog ends each attempt at its deadline, in order; an attempt
// that ends first leaves the queue, and its context says Canceled.
func TestWatchdogDeadlines(t *testing.T) {
	w := &watchdog{}
	ctx := context.Background()
	a1 := w.start(ctx, 50*time.Millisecond)
	a2 := w.start(ctx, 50*time.Millisecond)
	a3 := w.start(ctx, 80*time.Millisecond)
	require.Equal(t, []*attemptCtx{a1, a2, a3}, w.queued())
	d, ok := a1.Deadline()
	assert.True(t, ok)
	assert.Equal(t, a1.deadline, d)
	assert.NoError(t, a1.Err())

	a2.end()
	assert.ErrorIs(t, a2.Err(), context.Canceled)
	<-a2.Done() // closed already
	assert.Equal(t, []*attemptCtx{a1, a3}, w.queued())

	<-a1.Done()
	assert.ErrorIs(t, a1.Err(), context.DeadlineExceeded)
	assert.False(t, time.Now().Before(a1.deadline), "not before its deadline")
	<-a3.Done()
	assert.ErrorIs(t, a3.Err(), context.DeadlineExceeded)
	assert.False(t, time.Now().Before(a3.deadline), "not before its deadline")
	assert.Empty(t, w.queued())

	a1.end() // ending an attempt that has passed its deadline changes nothing
	assert.ErrorIs(t, a1.Err(), context.DeadlineExceeded)

	// The timer is set again for the next attempt.
	a4 := w.start(ctx, 10*time.Millisecond)
	<-a4.Done()
	assert.ErrorIs(t, a4.Err(), context.DeadlineExceeded)
}

// The attempt's context ends with the call's, with the call's error, and
// carries the call's values and its earlier deadline.
func TestAttemptContextFollowsTheCall(t *testing.T) {
	w := &watchdog{}
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	a := w.start(parent, time.Minute)
	done := a.Done()
	assert.Equal(t, "v", a.Value(key{}))
	cancel()
	<-done
	assert.ErrorIs(t, a.Err(), context.Canceled)
	a.end()
	assert.Empty(t, w.queued())

	soon := time.Now().Add(time.Second)
	parent, cancel = context.WithDeadline(context.Background(), soon)
	defer cancel()
	a = w.start(parent, time.Minute)
	d, _ := a.Deadline()
	assert.Equal(t, soon, d, "the call's deadline comes first")
	a.end()
	assert.ErrorIs(t, a.Err(), context.Canceled)

	// Done asked after the end is closed at once.
	a = w.start(context.Background(), time.Minute)
	a.end()
	<-a.Done()
	assert.Empty(t, w.queued())
}

// The timer stays set when the queue empties (no timer operations a
// call), and once it fires for an empty queue it is not set again: an idle
// client wakes once.
func TestWatchdogIdle(t *testing.T) {
	w := &watchdog{}
	a := w.start(context.Background(), 20*time.Millisecond)
	a.end()
	w.mu.Lock()
	assert.True(t, w.armed, "left set for the next attempt")
	w.mu.Unlock()
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.armed
	}, 5*time.Second, time.Millisecond, "fired for an empty queue, not set again")
	assert.ErrorIs(t, a.Err(), context.Canceled, "an ended attempt stays ended")

	// The next attempt sets it again.
	a = w.start(context.Background(), 10*time.Millisecond)
	<-a.Done()
	assert.ErrorIs(t, a.Err(), context.DeadlineExceeded)
}

// Many attempts start and end at once, some past their deadlines: none is
// left in the queue (run under -race).
func TestWatchdogConcurrent(t *testing.T) {
	w := &watchdog{}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				a := w.start(context.Background(), time.Duration(i%3)*time.Millisecond+time.Microsecond)
				if j%2 == 0 {
					<-a.Done()
				}
				a.end()
			}
		}()
	}
	wg.Wait()
	assert.Empty(t, w.queued())
}

// Every attempt of every call leaves the watchdog's queue when the call
// ends: successes, retries, errors.
func TestAttemptsEndWithTheCall(t *testing.T) {
	env := NewTestEnv(t)
	n := 0
	env.mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		n++
		if n%2 == 1 {
			return httpmock.NewStringResponse(503, `{}`), nil
		}
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	w := env.c.rc.HTTPClient.Transport.(attemptTransport).w
	require.NoError(t, safeCall(context.Background(), env.c))
	assert.Empty(t, w.queued())
	require.NoError(t, env.c.Users.Upsert(context.Background(), "u1", UserUpdate{Name: "U"}))
	assert.Empty(t, w.queued())
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(404, `{"message":"no"}`))
	require.Error(t, safeCall(context.Background(), env.c))
	assert.Empty(t, w.queued())
	calls := env.Calls()
	require.Len(t, calls, 5, "each call retried once after its 503, the 404 not")
	for _, c := range calls[2:4] {
		assert.Equal(t, `{"name":"U"}`, string(c.Body), "the retry sends the whole body again")
		assert.Equal(t, []string{"application/json"}, c.Header["Content-Type"])
	}
}

// A call whose own deadline comes before the attempt's needs no attempt
// context: the transport gets the call's.
func TestAttemptUsesAnEarlierCallDeadline(t *testing.T) {
	var got []context.Context
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Context())
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	tr := attemptTransport{rt: rt, timeout: time.Minute, w: &watchdog{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1/", nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	assert.Same(t, req, resp.Request, "the response names its request")
	require.Len(t, got, 1)
	assert.Equal(t, ctx, got[0])

	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel2()
	resp, err = tr.RoundTrip(req.WithContext(ctx2))
	require.NoError(t, err)
	a, ok := got[1].(*attemptCtx)
	require.True(t, ok, "a later call deadline: the attempt's own bounds it")
	assert.Same(t, a, resp.Request.Context())
	a.end()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A context derived from an attempt's (as net/http derives one for every
// request) ends with it through AfterFunc, without a goroutine waiting
// for it; context.AfterFunc's functions run, and a stopped one does not.
func TestAttemptContextDerived(t *testing.T) {
	w := &watchdog{}
	a := w.start(context.Background(), time.Minute)
	child, cancel := context.WithCancelCause(a)
	defer cancel(nil)
	a.mu.Lock()
	require.Len(t, a.afters, 1, "the child is registered with the attempt, not watched by a goroutine")
	a.mu.Unlock()
	ran := make(chan struct{})
	context.AfterFunc(a, func() { close(ran) })
	stop := context.AfterFunc(a, func() { t.Error("a stopped function ran") })
	assert.True(t, stop())
	a.end()
	<-child.Done()
	assert.ErrorIs(t, child.Err(), context.Canceled)
	<-ran

	// Derived after the end: done at once.
	late, cancel2 := context.WithCancel(a)
	defer cancel2()
	<-late.Done()

	// At the deadline, the child sees DeadlineExceeded.
	a = w.start(context.Background(), 5*time.Millisecond)
	child, cancel = context.WithCancelCause(a)
	defer cancel(nil)
	<-child.Done()
	assert.ErrorIs(t, child.Err(), context.DeadlineExceeded)
	a.end()
}

// The first attempt's request is made with that attempt's context, which
// the transport starts: the request is not copied to carry it. A retry's
// attempt gets a context of its own, under the call's.
func TestFirstAttemptContextMadeWithTheRequest(t *testing.T) {
	var reqs []*http.Request
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		reqs = append(reqs, r)
		code := http.StatusServiceUnavailable
		if len(reqs) == 2 {
			code = http.StatusOK
		}
		return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader(`{}`)), Header: http.Header{}}, nil
	})
	c, err := NewClient(WithTalkJS(testAppID, testTalkJSToken), WithHTTPClient(&http.Client{Transport: rt}), WithRetry(fastRetry))
	require.NoError(t, err)
	require.NoError(t, c.Users.Upsert(context.Background(), "u1", UserUpdate{Name: "U"}))
	require.Len(t, reqs, 2)

	a1, ok := reqs[0].Context().(*attemptCtx)
	require.True(t, ok, "the first attempt runs under an attempt's context")
	st := stateOf(a1)
	assert.Same(t, &st.first, a1, "the context the pipeline made the request with: no copy of the request")
	assert.False(t, a1.pending, "started by the transport")
	assert.False(t, a1.deadline.IsZero(), "bounded by the attempt's timeout")
	assert.ErrorIs(t, a1.Err(), context.Canceled, "ended with its attempt")

	a2, ok := reqs[1].Context().(*attemptCtx)
	require.True(t, ok, "the retry runs under an attempt's context")
	assert.NotSame(t, a1, a2, "its own")
	assert.Equal(t, context.Context(st), a2.Context, "under the call's context, not the first attempt's")
	assert.ErrorIs(t, a2.Err(), context.Canceled)
}

// A call leaves nothing waiting on its context: every attempt's context
// ends with the call, the first one's too when the call's own deadline
// came first and it was never started (a context made for it, as net/http
// makes one, waits on the call's context until it ends).
func TestAttemptContextsEndWithTheCall(t *testing.T) {
	var got context.Context
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Context()
		_ = got.Done() // as net/http does: it waits on it
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(`{}`)), Header: http.Header{}}, nil
	})
	c, err := NewClient(WithTalkJS(testAppID, testTalkJSToken), WithHTTPClient(&http.Client{Transport: rt}))
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		started bool
	}{
		{"call deadline first", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Second)
		}, false},
		{"attempt deadline first", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			require.NoError(t, c.Users.Upsert(ctx, "u1", UserUpdate{Name: "U"}))
			a, ok := got.(*attemptCtx)
			require.True(t, ok)
			assert.Equal(t, tc.started, !a.deadline.IsZero())
			require.NoError(t, ctx.Err(), "the call's context is still live")
			assert.ErrorIs(t, a.Err(), context.Canceled, "the attempt's context ended with the call")
		})
	}
}

// A request that kept an attempt's context after that attempt ran (a
// transport resending it) goes under the call's context, not the ended
// attempt's, whichever deadline comes first.
func TestStaleAttemptContextReplaced(t *testing.T) {
	var got []context.Context
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Context())
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}}, nil
	})
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{{"attempt deadline first", time.Minute}, {"call deadline first", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			tr := attemptTransport{rt: rt, timeout: tc.timeout, w: &watchdog{}}
			call, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			st := &callState{Context: call}
			st.first = attemptCtx{Context: st, pending: true}
			req, err := http.NewRequestWithContext(&st.first, http.MethodGet, "http://127.0.0.1/", nil)
			require.NoError(t, err)
			_, err = tr.RoundTrip(req)
			require.NoError(t, err)
			st.end()
			require.ErrorIs(t, st.first.Err(), context.Canceled, "the first attempt ended")

			_, err = tr.RoundTrip(req) // the same request again
			require.NoError(t, err, "not sent under the ended attempt's context")
			require.Len(t, got, 2)
			assert.NotEqual(t, context.Context(&st.first), got[1])
			assert.Same(t, st, stateOf(got[1]), "under the call's state")
			if a, ok := got[1].(*attemptCtx); ok {
				a.end()
			}
		})
	}
}
