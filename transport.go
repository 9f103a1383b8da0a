package convo

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// The transport under the pipeline: retryablehttp configured with the
// pipeline's hooks, a pooled http.Transport, and the wrapper that bounds
// each attempt and never follows a redirect.

// newRetryClient configures retryablehttp around hc (or a pooled transport
// when hc is nil) with the pipeline's hooks; its defaults are never used.
// Each attempt is bounded by timeout as a whole, body included.
func (c *Client) newRetryClient(hc *http.Client, timeout time.Duration) *retryablehttp.Client {
	if hc == nil {
		hc = &http.Client{Transport: newTransport()}
	}
	// retryablehttp closes the client's idle connections after every failed
	// call, which would flush the pool that concurrent calls share. The
	// wrapper hides CloseIdleConnections from it.
	inner := hc.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	// A copy, so that the caller's client is never changed: it never
	// follows a redirect (a 3xx is the answer, see finish). A Timeout the
	// caller set stays, so the shorter of it and timeout wins.
	wrapped := *hc
	wrapped.Transport = attemptTransport{rt: inner, timeout: timeout, w: &watchdog{}}
	wrapped.CheckRedirect = noRedirect
	if off(offRedirect) {
		wrapped.CheckRedirect = nil
	}
	c.onResponse = func(resp *http.Response) error {
		// attemptTransport sets resp.Request, whose context holds the state.
		return c.readBody(stateOf(resp.Request.Context()), resp)
	}
	return &retryablehttp.Client{
		HTTPClient:   &wrapped,
		RetryWaitMin: c.policy.MinWait,
		RetryWaitMax: c.policy.MaxWait,
		RetryMax:     c.policy.MaxRetries,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		ErrorHandler: passthrough,
		// Logger stays a true nil: the pipeline logs for itself.
		RequestLogHook: countAttempt,
		PrepareRetry:   prepareRetry,
	}
}

// CloseIdleConnections closes the idle connections of the client's
// transport (the caller's, with WithHTTPClient). The pipeline itself never
// does: the pool is shared by concurrent calls.
func (c *Client) CloseIdleConnections() {
	if c == nil || c.rc == nil {
		return // a nil Client, or one NewClient did not make, has no connection
	}
	if ci, ok := c.rc.HTTPClient.Transport.(attemptTransport).rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// newTransport is a pooled transport that keeps enough idle connections
// for 64 concurrent calls to one host and waits at most 30 s for response
// headers.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2 * defaultIdleConnsToHost,
		MaxIdleConnsPerHost:   defaultIdleConnsToHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: defaultHeaderTimeout,
	}
}

// attemptTransport is the transport of every attempt. It bounds the
// attempt as a whole, connection, headers and body, by timeout: the
// attempt's context ends at its deadline, and readBody reads the body
// within the attempt, which the pipeline ends (callState.endAttempt) once
// the body is read or dropped. The deadlines are kept by the client's
// watchdog, one timer for every attempt in flight, rather than a context
// and timer of the standard library per attempt (6 allocations; bench/
// has the figures). It also hides the wrapped transport's
// CloseIdleConnections: retryablehttp closes idle connections after every
// failed call, which would flush the pool that concurrent calls share.
type attemptTransport struct {
	rt      http.RoundTripper
	timeout time.Duration
	w       *watchdog
}

// RoundTrip sends r through the wrapped transport, within the timeout.
// The pipeline makes the request of a call's first attempt with that
// attempt's context, not yet started (callState.first): RoundTrip starts
// it, which spares a copy of the request and an allocation of the context
// on every call. A retry's request has the call's context: its attempt
// gets a context of its own.
func (t attemptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	parent := r.Context()
	a, first := parent.(*attemptCtx)
	if first {
		first = a.pending
		a.pending = false
		parent = a.Context
		if !first {
			// Started only once: a request that kept an attempt's
			// context after it ran goes under the call's (retrying
			// gives a retry the call's, so only a caller's transport
			// that resends a request can bring one here).
			r = r.WithContext(parent)
		}
	}
	if d, ok := parent.Deadline(); ok && time.Until(d) <= t.timeout || off(offDeadline) {
		// The call's own deadline comes first: it bounds the attempt,
		// body included (an attempt's context not started behaves as
		// the call's).
		resp, err := t.rt.RoundTrip(r)
		return named(resp, r), err
	}
	if first {
		t.w.begin(a, t.timeout)
	} else {
		a = t.w.start(parent, t.timeout)
		r = r.WithContext(a)
	}
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		a.end()
		return nil, err
	}
	stateOf(parent).attempt = a
	return named(resp, r), nil
}

// named makes sure that resp names the request it answers, r (a
// RoundTripper need not set it): the pipeline's response handler reads
// the request's context.
func named(resp *http.Response, r *http.Request) *http.Response {
	if resp != nil && resp.Request == nil {
		resp.Request = r
	}
	return resp
}

func passthrough(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err }

// noRedirect makes an http.Client return a 3xx as the response: a redirect
// would re-send a POST and the Authorization header to wherever a server
// points.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// attemptCtx is the context of one attempt: its call's, ended at the
// attempt's deadline by the watchdog, or when the attempt ends.
type attemptCtx struct {
	context.Context             // the call's
	w               *watchdog   // nil until the attempt starts
	deadline        time.Time   // zero until the attempt starts
	pending         bool        // made with its request, not started yet (see RoundTrip)
	prev, next      *attemptCtx // in w's queue, guarded by w.mu
	queued          bool        // in w's queue, guarded by w.mu

	mu         sync.Mutex
	done       chan struct{} // made by the first Done
	err        error         // set once the attempt's context has ended
	stopParent func() bool   // stops the call's context from ending this one
	afters     []func()      // see AfterFunc; nil once called or stopped
	afterBuf   [2]func()     // afters' first array
}

// AfterFunc arranges for f to be called once the attempt's context ends
// (at once if it has), and gives the stop that cancels that. The context
// package looks for this method: a context derived from this one (net/http
// derives one for every request it sends) then ends with it through f,
// instead of through a goroutine that waits for it, as for a context
// type it does not know.
func (a *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if a.afters == nil {
		a.afters = a.afterBuf[:0]
	}
	i := len(a.afters)
	a.afters = append(a.afters, f)
	a.mu.Unlock()
	return func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.err != nil || a.afters[i] == nil {
			return false
		}
		a.afters[i] = nil
		return true
	}
}

// Deadline is the attempt's deadline, or the call's when it comes first
// or the attempt has not started.
func (a *attemptCtx) Deadline() (time.Time, bool) {
	if a.deadline.IsZero() {
		return a.Context.Deadline()
	}
	if d, ok := a.Context.Deadline(); ok && d.Before(a.deadline) {
		return d, true
	}
	return a.deadline, true
}

// Done is closed when the attempt's deadline passes, the attempt ends,
// or the call's context ends.
func (a *attemptCtx) Done() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done == nil {
		a.done = make(chan struct{})
		switch {
		case a.err != nil:
			close(a.done)
		case a.Context.Done() != nil:
			a.stopParent = context.AfterFunc(a.Context, func() { a.cancel(a.Context.Err()) })
		}
	}
	return a.done
}

// Err is the call's context's error, or context.DeadlineExceeded past
// the attempt's deadline, or context.Canceled once the attempt ended.
func (a *attemptCtx) Err() error {
	if err := a.Context.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Value is the call's context's: the attempt adds none.
func (a *attemptCtx) Value(key any) any { return a.Context.Value(key) }

// cancel ends the attempt's context with err, once, and then calls the
// functions given to AfterFunc (outside the lock: they may stop theirs).
func (a *attemptCtx) cancel(err error) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		return
	}
	a.err = err
	if a.done != nil {
		close(a.done)
	}
	if a.stopParent != nil {
		a.stopParent()
	}
	afters := a.afters
	a.mu.Unlock()
	for _, f := range afters {
		if f != nil {
			f()
		}
	}
}

// end ends the attempt: it leaves the watchdog's queue and its context
// ends, as a context of the standard library does when cancelled.
func (a *attemptCtx) end() {
	if a.w != nil {
		a.w.remove(a)
	}
	a.cancel(context.Canceled)
}

// watchdog ends the context of every attempt of a client that passes its
// deadline, with one timer. The attempts of a client all have the same
// timeout, so their deadlines come in the order they started: the queue
// is in deadline order, and the timer is set for its head.
type watchdog struct {
	mu         sync.Mutex
	head, tail *attemptCtx
	timer      *time.Timer // made by the first attempt
	armed      bool        // timer will fire, at due, no later than head's deadline
	due        time.Time
}

// start begins an attempt of the call whose context is parent, bounded
// by timeout.
func (w *watchdog) start(parent context.Context, timeout time.Duration) *attemptCtx {
	a := &attemptCtx{Context: parent}
	w.begin(a, timeout)
	return a
}

// begin starts a, an attempt not started yet, bounded by timeout.
func (w *watchdog) begin(a *attemptCtx, timeout time.Duration) {
	a.w = w
	w.mu.Lock()
	defer w.mu.Unlock()
	a.deadline = time.Now().Add(timeout) // under mu: the queue stays in order
	a.prev, a.queued = w.tail, true
	if w.tail != nil {
		w.tail.next = a
	} else {
		w.head = a
	}
	w.tail = a
	// The attempts of a client all have the same timeout, so a timer set
	// for an earlier attempt (even one that ended) fires first; only a
	// shorter timeout (the watchdog's tests) moves it.
	if !w.armed || a.deadline.Before(w.due) {
		if w.timer == nil {
			w.timer = time.AfterFunc(timeout, w.fire)
		} else {
			w.timer.Reset(timeout)
		}
		w.armed, w.due = true, a.deadline
	}
}

// remove takes a out of the queue.
func (w *watchdog) remove(a *attemptCtx) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !a.queued {
		return
	}
	a.queued = false
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		w.head = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else {
		w.tail = a.prev
	}
	a.prev, a.next = nil, nil
	// The timer stays set, even for an empty queue: it may fire before
	// the new head's deadline, and fire sets it again (or leaves it unset
	// for an empty queue). Stopping it here and setting it again for the
	// next attempt would cost two timer operations a call; an idle client
	// wakes once, within one timeout of its last attempt.
}

// fire ends every attempt past its deadline and sets the timer for the
// next one.
func (w *watchdog) fire() {
	w.mu.Lock()
	w.armed = false
	now := time.Now()
	var over *attemptCtx // a list through next
	for a := w.head; a != nil && !now.Before(a.deadline); a = w.head {
		w.head = a.next
		if w.head != nil {
			w.head.prev = nil
		} else {
			w.tail = nil
		}
		a.queued, a.prev, a.next = false, nil, over
		over = a
	}
	if w.head != nil {
		w.timer.Reset(w.head.deadline.Sub(now))
		w.armed, w.due = true, w.head.deadline
	}
	w.mu.Unlock()
	for a := over; a != nil; {
		next := a.next
		a.next = nil
		a.cancel(context.DeadlineExceeded)
		a = next
	}
}
