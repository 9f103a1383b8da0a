package convo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of WithInbox: the handlers keeping deliveries in an inbox.

// recordingInbox is an Inbox that records what it is given and answers
// Add with err, or added once per id.
type recordingInbox struct {
	mu       sync.Mutex
	err      error
	adds     []Delivery
	seen     map[string]bool
	handlers map[Provider]func(context.Context, Delivery) error
}

func (r *recordingInbox) Add(_ context.Context, d Delivery) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return false, r.err
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.adds = append(r.adds, d)
	added := !r.seen[d.ID]
	r.seen[d.ID] = true
	return added, nil
}

func (r *recordingInbox) Handle(p Provider, fn func(context.Context, Delivery) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handlers == nil {
		r.handlers = map[Provider]func(context.Context, Delivery) error{}
	}
	r.handlers[p] = fn
}

func TestSelartiHandlerWithInbox(t *testing.T) {
	var in recordingInbox
	var got []Delivery
	fail := errors.New("talkjs: 503")
	h := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		d, ok := DeliveryFromContext(ctx)
		require.True(t, ok)
		assert.Equal(t, ev.MessageID, d.ID)
		got = append(got, d)
		return fail
	}, WithInbox(&in))
	require.NotNil(t, in.handlers[ProviderSelarti], "the constructor calls Handle")

	body := selartiBody(t, map[string]any{"message_id": "m-1", "external_chat_id": "chat-9", "message_type": "bot"})
	before := time.Now()
	assertOK(t, serveHook(h, hookRequest{body: body}))
	require.Len(t, in.adds, 1)
	d := in.adds[0]
	assert.Equal(t, ProviderSelarti, d.Provider)
	assert.Equal(t, "m-1", d.ID)
	assert.Equal(t, "chat-9", d.Key, "Selarti's key: external_chat_id")
	assert.Equal(t, body, d.Body, "the body exactly as received")
	assert.False(t, d.Received.Before(before))
	assert.Zero(t, d.Attempt)
	assert.Empty(t, got, "the callback is the inbox's to run")

	// A duplicate: 200 again, nothing run.
	assertOK(t, serveHook(h, hookRequest{body: body}))
	assert.Empty(t, got)

	// The inbox runs it: the typed event from the body, the delivery in
	// the context, the callback's error returned as it is.
	d.Attempt = 3
	err := in.handlers[ProviderSelarti](context.Background(), d)
	assert.Same(t, fail, err)
	require.Len(t, got, 1)
	assert.Equal(t, 3, got[0].Attempt)

	// Filtered deliveries are not kept.
	assertOK(t, serveHook(h, hookRequest{body: selartiBody(t, map[string]any{"message_id": "m-2", "message_type": "user"})}))
	assertOK(t, serveHook(h, hookRequest{body: selartiBody(t, map[string]any{"message_id": "m-3", "wh_type": "new_dialog"})}))
	assertJSONError(t, serveHook(h, hookRequest{body: []byte(`[1]`)}), http.StatusBadRequest, "want a JSON object")
	assert.Len(t, in.adds, 2)
}

func TestInboxHandlerRecoversPanics(t *testing.T) {
	var in recordingInbox
	var logs logBuffer
	NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error { panic("boom") },
		WithInbox(&in), WithHandlerLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	err := in.handlers[ProviderSelarti](context.Background(), Delivery{Provider: ProviderSelarti, ID: "m1", Body: selartiBody(t, nil), Attempt: 2})
	assert.EqualError(t, err, "panic: boom")
	assert.Contains(t, logs.String(), `level=ERROR msg="convo: webhook handler panicked" id=m1 attempt=2 panic=boom`)

	// A body that no longer decodes is a dead letter at once.
	err = in.handlers[ProviderSelarti](context.Background(), Delivery{Provider: ProviderSelarti, ID: "m1", Body: []byte(`[]`)})
	assert.ErrorIs(t, err, ErrPermanent)
	assert.ErrorIs(t, err, ErrInvalidPayload)
}

func TestTalkJSHandlerWithInbox(t *testing.T) {
	var in recordingInbox
	calls := 0
	h := NewTalkJSHandler(talkjsSecret, func(ctx context.Context, ev *TalkJSEvent) error {
		calls++
		return nil
	}, WithInbox(&in))
	assertOK(t, serveHook(h, signedHook(talkjsSecret, []byte(talkjsMessageSent))))
	user := []byte(`{"id":"evt_u1","type":"user.created","data":{"user":{"id":"u1","name":"A"}}}`)
	assertOK(t, serveHook(h, signedHook(talkjsSecret, user)))
	// Refused before anything is kept: a bad signature, a stale timestamp.
	assertJSONError(t, serveHook(h, signedHook("wrong", user)), http.StatusUnauthorized, "invalid signature")
	assertJSONError(t, serveHook(h, signedHookAt(talkjsSecret, talkjsTS, user)), http.StatusUnauthorized, "stale")

	require.Len(t, in.adds, 2)
	assert.Equal(t, "evt_AbC123", in.adds[0].ID)
	assert.Equal(t, "order_391_fc", in.adds[0].Key, "TalkJS's key: the conversation id")
	assert.Equal(t, ProviderTalkJS, in.adds[0].Provider)
	assert.Equal(t, "evt_u1", in.adds[1].ID)
	assert.Equal(t, "", in.adds[1].Key, "user.* events: no key")
	assert.Zero(t, calls)
	require.NoError(t, in.handlers[ProviderTalkJS](context.Background(), in.adds[0]))
	assert.Equal(t, 1, calls)
}

// Add failing: fail-closed, 503 without a call; fail-open (the Selarti
// handler's default), the callback in the request.
func TestInboxAddFails(t *testing.T) {
	in := &recordingInbox{err: errors.New("redis: connection refused")}
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var c hookCounter
	body := selartiBody(t, map[string]any{"message_id": "m-1", "message_type": "bot"})
	h := NewSelartiHandler(c.selarti, WithInbox(in), WithDedupFailClosed(), WithHandlerLogger(log))
	assertJSONError(t, serveHook(h, hookRequest{body: body}), http.StatusServiceUnavailable, "inbox unavailable")
	assert.Zero(t, c.count())
	assert.Contains(t, logs.String(), `level=ERROR msg="convo: webhook inbox failed" id=m-1 error="redis: connection refused" provider=selarti`)
	tbody := []byte(talkjsMessageSent)
	var tc hookCounter
	th := NewTalkJSHandler(talkjsSecret, tc.talkjs, WithInbox(in), WithHandlerLogger(log))
	assertJSONError(t, serveHook(th, signedHook(talkjsSecret, tbody)), http.StatusServiceUnavailable, "inbox unavailable")
	assert.Zero(t, tc.count(), "the TalkJS handler fails closed by default")

	h = NewSelartiHandler(c.selarti, WithInbox(in), WithHandlerLogger(log))
	assertOK(t, serveHook(h, hookRequest{body: body}))
	assert.Equal(t, 1, c.count())
	c.errs = []error{errors.New("down")}
	assertJSONError(t, serveHook(h, hookRequest{body: body}), http.StatusInternalServerError, "handler failed")
	assert.Contains(t, logs.String(), `level=WARN msg="convo: webhook inbox failed, handling in the request" id=m-1`)
}

// A delivery without an id cannot be deduplicated: it runs in the
// request, as without an inbox, and is logged.
func TestInboxDeliveryWithoutID(t *testing.T) {
	var in recordingInbox
	var logs logBuffer
	var c hookCounter
	h := NewTalkJSHandler(talkjsSecret, c.talkjs, WithInbox(&in), WithHandlerLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	body := []byte(`{"type":"message.read","data":{"conversation":{"id":"c1"}}}`)
	assertOK(t, serveHook(h, signedHook(talkjsSecret, body)))
	assert.Equal(t, 1, c.count())
	assert.Empty(t, in.adds)
	assert.Contains(t, logs.String(), `level=WARN msg="convo: webhook delivery without an id, handled in the request without the inbox" event=message.read provider=talkjs`)
	c.errs = []error{errors.New("down")}
	assertJSONError(t, serveHook(h, signedHook(talkjsSecret, body)), http.StatusInternalServerError, "handler failed")
}

func TestWithInboxPanics(t *testing.T) {
	fn := func(context.Context, *SelartiEvent) error { return nil }
	tfn := func(context.Context, *TalkJSEvent) error { return nil }
	in := NewMemoryInbox()
	assert.PanicsWithValue(t, "convo: NewSelartiHandler: WithInbox and WithDedupStore together: an inbox dedups deliveries itself, give one of them",
		func() { NewSelartiHandler(fn, WithInbox(in), WithDedupStore(NewMemoryDedupStore(1))) })
	assert.PanicsWithValue(t, "convo: NewTalkJSHandler: WithInbox and WithDedupStore together: an inbox dedups deliveries itself, give one of them",
		func() { NewTalkJSHandler("k", tfn, WithDedupStore(NewMemoryDedupStore(1)), WithInbox(in)) })
	assert.PanicsWithValue(t, "convo: WithInbox: nil inbox", func() { NewSelartiHandler(fn, WithInbox(nil)) })
	assert.NotPanics(t, func() { NewSelartiHandler(fn, WithInbox(in)); NewTalkJSHandler("k", tfn, WithInbox(in)) })
}

// End to end with the memory inbox: a callback failing for a while does
// not lose the delivery, the sender's redelivery does not double it, and
// the handler answers 200 throughout.
func TestHandlerWithMemoryInbox(t *testing.T) {
	in := NewMemoryInbox(WithInboxBackoff(time.Millisecond, time.Millisecond))
	var mu sync.Mutex
	var attempts []int
	done := make(chan struct{})
	h := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		d, _ := DeliveryFromContext(ctx)
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, d.Attempt)
		if d.Attempt < 3 {
			return errors.New("talkjs: 503")
		}
		close(done)
		return nil
	}, WithInbox(in))
	body := selartiBody(t, map[string]any{"message_id": "m-1", "message_type": "bot"})
	assertOK(t, serveHook(h, hookRequest{body: body}))
	startRun(t, in)
	await(t, done, "the third attempt")
	assertOK(t, serveHook(h, hookRequest{body: body}))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{1, 2, 3}, attempts)
}

// Add gets the WithDedupTimeout budget: an inbox that does not answer
// counts as failed.
func TestInboxAddHasADeadline(t *testing.T) {
	in := &blockingInbox{ended: make(chan error, 1)}
	var c hookCounter
	h := NewTalkJSHandler(talkjsSecret, c.talkjs, WithInbox(in), WithDedupTimeout(20*time.Millisecond),
		WithHandlerLogger(slog.New(slog.NewTextHandler(&logBuffer{}, nil))))
	assertJSONError(t, serveHook(h, signedHook(talkjsSecret, []byte(talkjsMessageSent))), http.StatusServiceUnavailable, "inbox unavailable")
	assert.ErrorIs(t, <-in.ended, context.DeadlineExceeded, "Add's context ended at the budget")
}

// blockingInbox's Add waits for its context to end, and sends its error
// to ended.
type blockingInbox struct{ ended chan error }

func (b *blockingInbox) Add(ctx context.Context, _ Delivery) (bool, error) {
	<-ctx.Done()
	b.ended <- ctx.Err()
	return false, ctx.Err()
}

func (b *blockingInbox) Handle(Provider, func(context.Context, Delivery) error) {}

// BenchmarkSelartiHandlerInbox measures deliveries acknowledged per
// second (acks/s) by the Selarti handler, each delivery a new message id:
// in-request runs the callback inside the request with the default
// in-memory dedup store, as without WithInbox; memory-inbox keeps the
// delivery in a MemoryInbox, whose Run (4 workers) runs the callback
// meanwhile. The callback does nothing, so the figures are the handler's
// and the inbox's own costs.
//
// The burst-1000 cases time a burst of 1,000 deliveries whose callback
// takes 1 ms (a relay to TalkJS): in the request, each waits for its
// callback; with the inbox, each is answered once kept (the inbox is
// drained between bursts, outside the timer).
func BenchmarkSelartiHandlerInbox(b *testing.B) {
	noop := func(context.Context, *SelartiEvent) error { return nil }
	b.Run("in-request", func(b *testing.B) {
		benchAcks(b, NewSelartiHandler(noop), nil)
	})
	b.Run("memory-inbox", func(b *testing.B) {
		in := NewMemoryInbox(WithInboxCapacity(1 << 20))
		benchAcks(b, NewSelartiHandler(noop, WithInbox(in)), in)
	})
	slow := func(context.Context, *SelartiEvent) error { time.Sleep(time.Millisecond); return nil }
	b.Run("burst-1000/in-request", func(b *testing.B) {
		benchBurst(b, NewSelartiHandler(slow), nil)
	})
	b.Run("burst-1000/memory-inbox", func(b *testing.B) {
		in := NewMemoryInbox(WithInboxWorkers(16))
		benchBurst(b, NewSelartiHandler(slow, WithInbox(in)), in)
	})
}

// benchBody is a Selarti delivery with message id i, in one of 100 chats.
func benchBody(buf []byte, i int) []byte {
	buf = append(buf[:0], `{"wh_type":"all_messages","message_type":"bot","message_text":"Your order ships today.","external_chat_id":"chat-`...)
	buf = strconv.AppendInt(buf, int64(i%100), 10)
	buf = append(buf, `","message_id":"m-`...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	return append(buf, `"}`...)
}

// benchAcks serves b.N deliveries, each with a new id, while in (if any)
// runs, and reports acks/s.
func benchAcks(b *testing.B, h http.Handler, in *MemoryInbox) {
	if in != nil {
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- in.Run(ctx) }()
		defer func() { cancel(); <-ran }()
	}
	req := httptest.NewRequest(http.MethodPost, "/hook", nil)
	w := &statusWriter{discardWriter: discardWriter{h: http.Header{}}}
	var buf []byte
	rd := bytes.NewReader(nil)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		buf = benchBody(buf, i)
		rd.Reset(buf)
		req.Body, req.ContentLength = io.NopCloser(rd), int64(len(buf))
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("delivery %d: status %d", i, w.status)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "acks/s")
}

// benchBurst times bursts of 1,000 deliveries; with an inbox, it waits
// for the inbox to run them all between bursts, outside the timer.
func benchBurst(b *testing.B, h http.Handler, in *MemoryInbox) {
	const burst = 1000
	if in != nil {
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- in.Run(ctx) }()
		defer func() { cancel(); <-ran }()
	}
	req := httptest.NewRequest(http.MethodPost, "/hook", nil)
	w := &statusWriter{discardWriter: discardWriter{h: http.Header{}}}
	var buf []byte
	rd := bytes.NewReader(nil)
	var acked int
	var elapsed time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		start := time.Now()
		for i := n * burst; i < (n+1)*burst; i++ {
			buf = benchBody(buf, i)
			rd.Reset(buf)
			req.Body, req.ContentLength = io.NopCloser(rd), int64(len(buf))
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("delivery %d: status %d", i, w.status)
			}
		}
		elapsed += time.Since(start)
		acked += burst
		if in != nil {
			b.StopTimer()
			for {
				in.mu.Lock()
				live := in.live
				in.mu.Unlock()
				if live == 0 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(acked)/elapsed.Seconds(), "acks/s")
}

// statusWriter is a discardWriter that keeps the status.
type statusWriter struct {
	discardWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s }

// stuckInbox is an Inbox whose Add ignores its context and returns only
// once release is closed.
type stuckInbox struct {
	recordingInbox
	release chan struct{}
}

func (s *stuckInbox) Add(context.Context, Delivery) (bool, error) {
	<-s.release
	return true, nil
}

// An inbox's Add has the WithDedupTimeout budget even when it ignores its
// context, as a dedup store's calls do: the handler stops waiting and
// answers (503 fail-closed) within the budget, so that the sender is
// answered in time.
func TestHandlerStopsWaitingForAnInboxThatIgnoresItsContext(t *testing.T) {
	in := &stuckInbox{release: make(chan struct{})}
	defer close(in.release)
	h := NewSelartiHandler(func(context.Context, *SelartiEvent) error { return nil },
		WithInbox(in), WithDedupFailClosed(), WithDedupTimeout(20*time.Millisecond))
	body := selartiBody(t, map[string]any{"message_id": "m-1", "external_chat_id": "chat-9", "message_type": "bot"})
	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() { answered <- serveHook(h, hookRequest{body: body}) }()
	select {
	case rec := <-answered:
		assertJSONError(t, rec, http.StatusServiceUnavailable, "inbox unavailable")
	case <-time.After(10 * time.Second):
		t.Fatal("the handler still waits for Add after 10 s; its budget is 20 ms")
	}
}
