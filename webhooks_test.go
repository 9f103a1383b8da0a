package convo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of webhooks.go and dedup.go: the handler core both handlers share, its
// options and the dedup stores, with the helpers the provider tests use.

func TestMemoryDedupStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryDedupStore(2)
	// claim claims id with a token of its own, as a new delivery does, and
	// returns the state and the token.
	n := 0
	claim := func(id string) (ClaimState, string) {
		n++
		token := "t" + strconv.Itoa(n)
		st, err := s.Claim(ctx, id, token)
		require.NoError(t, err)
		return st, token
	}
	state := func(id string) ClaimState { st, _ := claim(id); return st }
	st, ta := claim("a")
	assert.Equal(t, ClaimNew, st)
	assert.Equal(t, ClaimInProgress, state("a"))
	assert.ErrorIs(t, s.Release(ctx, "a", "other"), ErrClaimLost, "another token cannot release it")
	assert.ErrorIs(t, s.Complete(ctx, "a", "other"), ErrClaimLost, "nor complete it")
	assert.ErrorIs(t, s.Renew(ctx, "a", "other"), ErrClaimLost, "nor renew it")
	require.NoError(t, s.Release(ctx, "a", ta))
	st, ta = claim("a")
	assert.Equal(t, ClaimNew, st)
	st, err := s.Claim(ctx, "a", ta)
	require.NoError(t, err)
	assert.Equal(t, ClaimNew, st, "a claim retried with its token is new")
	require.NoError(t, s.Renew(ctx, "a", ta))
	require.NoError(t, s.Complete(ctx, "a", ta))
	assert.Equal(t, ClaimDone, state("a"))
	assert.ErrorIs(t, s.Renew(ctx, "a", ta), ErrClaimLost, "a done id has no claim to renew")
	require.NoError(t, s.Release(ctx, "a", ta), "releasing a done id does nothing")
	assert.Equal(t, ClaimDone, state("a"))

	for _, id := range []string{"b", "c"} {
		st, tok := claim(id)
		assert.Equal(t, ClaimNew, st)
		require.NoError(t, s.Complete(ctx, id, tok))
	}
	assert.Equal(t, ClaimNew, state("a"), "the oldest done id is forgotten past capacity")
	assert.Equal(t, ClaimDone, state("b"))
	assert.Equal(t, ClaimDone, state("c"))
	assert.ErrorIs(t, s.Complete(ctx, "a", "t-none"), ErrClaimLost, "a is held by the claim above")
	require.NoError(t, s.Release(ctx, "a", "t"+strconv.Itoa(n-2)))
	require.NoError(t, s.Complete(ctx, "a", "t-none"), "an id held by nobody is completed by any token")
	assert.Equal(t, ClaimNew, state("b"))
	assert.Equal(t, ClaimDone, state("c"))
	assert.Len(t, s.done, 2)

	assert.Equal(t, "in progress", ClaimInProgress.String())
	assert.Equal(t, "ClaimState(0)", ClaimState(0).String())
	assert.Equal(t, DefaultMemoryLease, s.Lease())
	assert.Panics(t, func() { NewMemoryDedupStore(0) })
	assert.Panics(t, func() { WithMemoryLease(0) })
}

// TestMemoryDedupStoreLease: a claim not renewed within the lease is taken
// over by the next claim; its holder's Complete and Release then find it
// lost; a renewed claim is not taken over.
func TestMemoryDedupStoreLease(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryDedupStore(10, WithMemoryLease(time.Hour))
	now := time.Now()
	require.NoError(t, func() error { _, err := s.Claim(ctx, "a", "t1"); return err }())
	// Age the claim by hand rather than wait for it.
	s.mu.Lock()
	s.inFlight["a"] = memoryClaim{token: "t1", expires: now.Add(-time.Millisecond)}
	s.mu.Unlock()
	st, err := s.Claim(ctx, "a", "t2")
	require.NoError(t, err)
	assert.Equal(t, ClaimNew, st, "a claim whose lease ran out is taken over")
	assert.ErrorIs(t, s.Renew(ctx, "a", "t1"), ErrClaimLost)
	assert.ErrorIs(t, s.Complete(ctx, "a", "t1"), ErrClaimLost)
	assert.ErrorIs(t, s.Release(ctx, "a", "t1"), ErrClaimLost)
	st, _ = s.Claim(ctx, "a", "t3")
	assert.Equal(t, ClaimInProgress, st, "t2's claim stands")

	// A lease that ran out with nobody else claiming: the late Complete
	// records the work.
	_, _ = s.Claim(ctx, "b", "t4")
	s.mu.Lock()
	s.inFlight["b"] = memoryClaim{token: "t4", expires: now.Add(-time.Millisecond)}
	s.mu.Unlock()
	require.NoError(t, s.Complete(ctx, "b", "t4"))
	st, _ = s.Claim(ctx, "b", "t5")
	assert.Equal(t, ClaimDone, st)
}

func TestMemoryDedupStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryDedupStore(100)
	var news atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := strconv.Itoa(i)
			st, _ := s.Claim(ctx, "same", token)
			if st == ClaimNew {
				news.Add(1)
				_ = s.Complete(ctx, "same", token)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), news.Load())
}

type hookRequest struct {
	method string
	target string
	body   []byte
	header map[string]string
}

func serveHook(h http.Handler, r hookRequest) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.target == "" {
		r.target = "/hook"
	}
	req := httptest.NewRequest(r.method, r.target, bytes.NewReader(r.body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// hookCounter is an fn for the handlers that counts its calls and returns the
// errors queued in errs, one a call.
type hookCounter struct {
	mu    sync.Mutex
	calls int
	errs  []error
	ids   []string
}

func (c *hookCounter) next(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.ids = append(c.ids, id)
	if len(c.errs) > 0 {
		err := c.errs[0]
		c.errs = c.errs[1:]
		return err
	}
	return nil
}

func (c *hookCounter) selarti(_ context.Context, ev *SelartiEvent) error { return c.next(ev.MessageID) }
func (c *hookCounter) talkjs(_ context.Context, ev *TalkJSEvent) error   { return c.next(ev.ID) }

func (c *hookCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func assertJSONError(t *testing.T, rec *httptest.ResponseRecorder, status int, msg string) {
	t.Helper()
	assert.Equal(t, status, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	assert.Contains(t, body.Error, msg)
}

func assertOK(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "{}", rec.Body.String())
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
}

func TestHandlerConstructionPanics(t *testing.T) {
	fn := func(context.Context, *SelartiEvent) error { return nil }
	tfn := func(context.Context, *TalkJSEvent) error { return nil }
	assert.PanicsWithValue(t, "convo: NewSelartiHandler: nil fn", func() { NewSelartiHandler(nil) })
	assert.PanicsWithValue(t, "convo: WithSharedSecret: empty secret", func() { NewSelartiHandler(fn, WithSharedSecret("")) })
	assert.Panics(t, func() { NewSelartiHandler(fn, WithBodyLimit(0)) })
	assert.Panics(t, func() { NewSelartiHandler(fn, WithDedupStore(nil)) })
	assert.PanicsWithValue(t, "convo: NewTalkJSHandler: empty secret", func() { NewTalkJSHandler("", tfn) })
	assert.Panics(t, func() { NewTalkJSHandler("k", nil) })
	assert.Panics(t, func() { NewTalkJSHandler("k", tfn, WithExtraSecrets("")) })
	assert.PanicsWithValue(t, "convo: WithMaxAge: the age must not be negative", func() { NewTalkJSHandler("k", tfn, WithMaxAge(-1)) })
	assert.PanicsWithValue(t, "convo: WithReadTimeout: the timeout must not be negative", func() { NewSelartiHandler(fn, WithReadTimeout(-1)) })
	assert.NotPanics(t, func() { NewTalkJSHandler("k", tfn, WithBodyLimit(10), WithExtraSecrets("k2"), WithMaxAge(time.Minute)) })
	assert.NotPanics(t, func() { NewTalkJSHandler("k", tfn, WithMaxAge(0), WithReadTimeout(0)) })
}

// failingStore fails the calls named in fail.
type failingStore struct {
	*MemoryDedupStore
	claim, complete, release error
	state                    ClaimState
}

func (s *failingStore) Claim(ctx context.Context, id, token string) (ClaimState, error) {
	if s.claim != nil || s.state != 0 {
		return s.state, s.claim
	}
	return s.MemoryDedupStore.Claim(ctx, id, token)
}

func (s *failingStore) Complete(ctx context.Context, id, token string) error {
	if s.complete != nil {
		return s.complete
	}
	return s.MemoryDedupStore.Complete(ctx, id, token)
}

func (s *failingStore) Release(ctx context.Context, id, token string) error {
	if s.release != nil {
		return s.release
	}
	return s.MemoryDedupStore.Release(ctx, id, token)
}

func TestHandlerDedupStoreFailures(t *testing.T) {
	fixture := readSelartiFixture(t)
	down := errors.New("redis down")

	t.Run("claim error is 503 with no call", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupFailClosed(), WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), claim: down}))
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusServiceUnavailable, "dedup store")
		assert.Equal(t, 0, c.count())
	})
	t.Run("unknown state is 503 with no call", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupFailClosed(), WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), state: 42}))
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusServiceUnavailable, "dedup store")
		assert.Equal(t, 0, c.count())
	})
	t.Run("complete error still 200", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), complete: down}))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assert.Equal(t, 1, c.count())
	})
	t.Run("release error still 500", func(t *testing.T) {
		c := hookCounter{errs: []error{errors.New("fail")}}
		h := NewSelartiHandler(c.selarti, WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), release: down}))
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusInternalServerError, "handler failed")
		assert.Equal(t, 1, c.count())
	})
	t.Run("ids are namespaced by provider", func(t *testing.T) {
		store := NewMemoryDedupStore(10)
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupStore(store))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		st, err := store.Claim(context.Background(), "selarti:1731336491876x582725124419040400", "another")
		require.NoError(t, err)
		assert.Equal(t, ClaimDone, st)
	})
}

type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestHandlerBodyReadError(t *testing.T) {
	var c hookCounter
	h := NewSelartiHandler(c.selarti)
	req := httptest.NewRequest(http.MethodPost, "/hook", brokenBody{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assertJSONError(t, rec, http.StatusBadRequest, "could not read body")
	assert.Equal(t, 0, c.count())
}

func TestHandlerLogsFailures(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	c := hookCounter{errs: []error{errors.New("relay down")}}
	h := NewTalkJSHandler(talkjsSecret, c.talkjs, WithHandlerLogger(logger))
	delivery := signedHook(talkjsSecret, []byte(talkjsMessageSent))
	rec := serveHook(h, delivery)
	assertJSONError(t, rec, http.StatusInternalServerError, "handler failed")
	assert.NotContains(t, rec.Body.String(), "relay down", "fn's error stays in the log")
	assert.Contains(t, logs.String(), "relay down")
	assert.Contains(t, logs.String(), "id=evt_AbC123")
	assert.NotContains(t, logs.String(), talkjsSecret)
	assert.NotContains(t, logs.String(), delivery.header["X-TalkJS-Signature"])
}

func TestHandlerPermanentFailureIsNotRedelivered(t *testing.T) {
	c := &hookCounter{errs: []error{fmt.Errorf("chat gone: %w", ErrPermanent)}}
	h := NewSelartiHandler(c.selarti)
	body := readSelartiFixture(t)
	assertOK(t, serveHook(h, hookRequest{body: body}))
	assertOK(t, serveHook(h, hookRequest{body: body}))
	assert.Equal(t, 1, c.count(), "a permanent failure is remembered like a success")

	c = &hookCounter{errs: []error{errors.New("database down")}}
	h = NewSelartiHandler(c.selarti)
	assertJSONError(t, serveHook(h, hookRequest{body: body}), http.StatusInternalServerError, "handler failed")
	assertOK(t, serveHook(h, hookRequest{body: body}))
	assert.Equal(t, 2, c.count(), "any other failure lets the redelivery through")
}

// The handlers leave no goroutine behind once their server shuts down,
// even with a delivery whose client gave up while fn was running.
func TestHandlersLeaveNoGoroutines(t *testing.T) {
	noLeak := GoroutineCheck(t)
	release := make(chan struct{})
	running := make(chan struct{}) // closed when fn runs the slow delivery
	selarti := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		if ev.MessageID == "slow" {
			close(running)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	})
	const secret = "whsec_test"
	talkjs := NewTalkJSHandler(secret, func(context.Context, *TalkJSEvent) error { return nil })
	mux := http.NewServeMux()
	mux.Handle("/selarti", selarti)
	mux.Handle("/talkjs", talkjs)
	srv := httptest.NewServer(mux)

	post := func(ctx context.Context, path string, body []byte, h map[string]string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, bytes.NewReader(body))
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}
	for i := range 20 {
		post(context.Background(), "/selarti", selartiBody(t, map[string]any{"message_id": strconv.Itoa(i)}), nil)
		ev := []byte(`{"id":"evt_` + strconv.Itoa(i) + `","type":"user.updated","createdAt":1,"data":{"user":{"id":"u"}}}`)
		post(context.Background(), "/talkjs", ev, signedHook(secret, ev).header)
	}
	post(context.Background(), "/selarti", []byte("not json"), nil)
	// The client gives up once fn runs (not after a guessed delay, which
	// could end the request before it reached fn).
	ctx, cancel := context.WithCancel(context.Background())
	slow, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/selarti",
		bytes.NewReader(selartiBody(t, map[string]any{"message_id": "slow"})))
	require.NoError(t, err)
	gaveUp := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(slow)
		if err == nil {
			resp.Body.Close()
		}
		gaveUp <- err
	}()
	<-running
	cancel()
	require.ErrorIs(t, <-gaveUp, context.Canceled)

	close(release)
	srv.Close()
	srv.Client().CloseIdleConnections()
	noLeak()
}

// alwaysNewStore claims every id as new, so each benchmark delivery runs
// the whole path: read, verify, parse, claim, call, complete.
type alwaysNewStore struct{}

func (alwaysNewStore) Claim(context.Context, string, string) (ClaimState, error) {
	return ClaimNew, nil
}
func (alwaysNewStore) Renew(context.Context, string, string) error    { return nil }
func (alwaysNewStore) Complete(context.Context, string, string) error { return nil }
func (alwaysNewStore) Release(context.Context, string, string) error  { return nil }
func (alwaysNewStore) Lease() time.Duration                           { return time.Minute }

// discardWriter is an http.ResponseWriter that keeps nothing but its header
// and takes read deadlines as a server's does.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// SetReadDeadline lets the handlers set their deadline, as on a server.
func (w *discardWriter) SetReadDeadline(time.Time) error { return nil }

// benchHandler serves the same delivery b.N times; the request is built
// once and only its body is renewed, so the figures are the handler's.
func benchHandler(b *testing.B, h http.Handler, body []byte, header map[string]string) {
	req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(body)
	rc := io.NopCloser(rd)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rd.Reset(body)
		req.Body = rc
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func TestHandlerOptionOfTheOtherProviderPanics(t *testing.T) {
	fn := func(context.Context, *SelartiEvent) error { return nil }
	tfn := func(context.Context, *TalkJSEvent) error { return nil }
	assert.PanicsWithValue(t, "convo: NewTalkJSHandler: WithSharedSecret is an option of the selarti handler",
		func() { NewTalkJSHandler("k", tfn, WithSharedSecret("s")) })
	assert.PanicsWithValue(t, "convo: NewTalkJSHandler: WithUserMessages is an option of the selarti handler",
		func() { NewTalkJSHandler("k", tfn, WithUserMessages()) })
	assert.PanicsWithValue(t, "convo: NewSelartiHandler: WithMaxAge is an option of the talkjs handler",
		func() { NewSelartiHandler(fn, WithMaxAge(time.Minute)) })
	assert.PanicsWithValue(t, "convo: NewSelartiHandler: WithExtraSecrets is an option of the talkjs handler",
		func() { NewSelartiHandler(fn, WithExtraSecrets("k2")) })
	assert.PanicsWithValue(t, "convo: NewSelartiHandler: zero HandlerOption", func() { NewSelartiHandler(fn, HandlerOption{}) })
	// The shared options serve both.
	shared := []HandlerOption{WithBodyLimit(10), WithDedupStore(NewMemoryDedupStore(1)), WithHandlerLogger(nil)}
	assert.NotPanics(t, func() { NewSelartiHandler(fn, shared...) })
	assert.NotPanics(t, func() { NewTalkJSHandler("k", tfn, shared...) })
}

func TestReadAllSizedFromContentLength(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 3000)
	for _, size := range []int64{3000, -1, 10, 5000} {
		got, err := readAll(bytes.NewReader(body), size)
		require.NoError(t, err)
		assert.Equal(t, body, got, "size %d", size)
	}
	rd := bytes.NewReader(body)
	allocs := testing.AllocsPerRun(20, func() {
		rd.Reset(body)
		_, _ = readAll(rd, int64(len(body)))
	})
	assert.Equal(t, 1.0, allocs, "a body of the announced length is read into one buffer")
}

func TestHandlerDedupFailOpen(t *testing.T) {
	fixture := readSelartiFixture(t)
	down := errors.New("redis down")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	t.Run("claim error: handled without dedup, with a warning, and recorded", func(t *testing.T) {
		logs.Reset()
		c := hookCounter{errs: []error{nil, errors.New("relay down")}}
		store := &flakyStore{MemoryDedupStore: NewMemoryDedupStore(10)}
		store.down.Store(true)
		h := NewSelartiHandler(c.selarti, WithDedupStore(store), WithDedupFailOpen(), WithHandlerLogger(logger))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assert.Equal(t, 1, c.count(), "handled fail-open, then a duplicate on this replica while the store is down")
		other := []byte(strings.Replace(string(fixture), "1731336491876x582725124419040400", "m-other", 1))
		assertJSONError(t, serveHook(h, hookRequest{body: other}), http.StatusInternalServerError, "handler failed")
		assert.Contains(t, logs.String(), "level=WARN")
		assert.Contains(t, logs.String(), "handling without dedup")
		assert.Contains(t, logs.String(), "store down")
		// The store answers again: the done mark is written, and the id
		// is a duplicate for every replica.
		store.down.Store(false)
		waitState(t, store.MemoryDedupStore, "selarti:1731336491876x582725124419040400", ClaimDone)
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assert.Equal(t, 2, c.count(), "the failed one ran; the recorded one did not run again")
		st, err := store.MemoryDedupStore.Claim(context.Background(), "selarti:m-other", "x")
		require.NoError(t, err)
		assert.Equal(t, ClaimNew, st, "the failed delivery is not recorded")
	})
	t.Run("unknown state: handled without dedup", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupFailOpen(),
			WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), state: 42}))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assert.Equal(t, 1, c.count())
	})
	t.Run("TalkJS handler too", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs, WithDedupFailOpen(),
			WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), claim: down}))
		assertOK(t, serveHook(h, signedHook(talkjsSecret, []byte(talkjsMessageSent))))
		assert.Equal(t, 1, c.count())
	})
	t.Run("a working store still deduplicates", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupFailOpen())
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assert.Equal(t, 1, c.count())
	})
}

// tricklePost sends a POST announcing a body of n bytes over a raw
// connection to addr, then one byte every interval until the connection
// fails or stop is closed. It returns the connection, to read the answer.
func tricklePost(t *testing.T, addr string, n int, interval time.Duration, stop <-chan struct{}) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /hook HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", addr, n)
	require.NoError(t, err)
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 1; i < n; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	return conn
}

// A client that trickles its body cannot hold a handler goroutine past the
// read timeout, on a server without ReadTimeout: neither while the handler
// reads the body, nor while the server discards it after an early answer.
func TestHandlerReadTimeout(t *testing.T) {
	tests := []struct {
		name   string
		opts   []HandlerOption
		status int
	}{
		{"trickled body", nil, http.StatusRequestTimeout},
		{"answered before the body", []HandlerOption{WithSharedSecret("s")}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c hookCounter
			returned := make(chan time.Duration, 1)
			h := NewSelartiHandler(c.selarti, append(tt.opts, WithReadTimeout(300*time.Millisecond))...)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				start := time.Now()
				h.ServeHTTP(w, r)
				returned <- time.Since(start)
			}))
			defer srv.Close()
			require.Zero(t, srv.Config.ReadTimeout)

			stop := make(chan struct{})
			defer close(stop)
			// 100 bytes at one every 100 ms would take 10 s.
			conn := tricklePost(t, srv.Listener.Addr().String(), 100, 100*time.Millisecond, stop)
			select {
			case d := <-returned:
				assert.Less(t, d, 3*time.Second)
			case <-time.After(5 * time.Second):
				t.Fatal("the handler is still held by the trickled body")
			}
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Zero(t, c.count())
		})
	}
}

// The read deadline covers the body only: fn may take longer than the read
// timeout without its context being cancelled.
func TestHandlerReadTimeoutSparesFn(t *testing.T) {
	var ctxErr error
	h := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		time.Sleep(400 * time.Millisecond)
		ctxErr = ctx.Err()
		return nil
	}, WithReadTimeout(100*time.Millisecond))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/hook", "application/json", bytes.NewReader(readSelartiFixture(t)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NoError(t, ctxErr)
}

func TestHandlerReadTimeoutDefault(t *testing.T) {
	fn := func(context.Context, *SelartiEvent) error { return nil }
	assert.Equal(t, 10*time.Second, NewSelartiHandler(fn).(*webhookHandler).readTimeout)
	assert.Equal(t, 10*time.Second, NewTalkJSHandler("k", func(context.Context, *TalkJSEvent) error { return nil }).(*webhookHandler).readTimeout)
	assert.Equal(t, time.Second, NewSelartiHandler(fn, WithReadTimeout(time.Second)).(*webhookHandler).readTimeout)
}

func TestMemoryDedupStoreLongIDs(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryDedupStore(10)
	long := strings.Repeat("a", 100)
	other := long[:99] + "b"
	st, _ := s.Claim(ctx, long, "t1")
	assert.Equal(t, ClaimNew, st)
	st, _ = s.Claim(ctx, long, "t2")
	assert.Equal(t, ClaimInProgress, st)
	require.NoError(t, s.Complete(ctx, long, "t1"))
	st, _ = s.Claim(ctx, long, "t3")
	assert.Equal(t, ClaimDone, st)
	st, _ = s.Claim(ctx, other, "t4")
	assert.Equal(t, ClaimNew, st, "ids that differ in their last byte stay apart")
	require.NoError(t, s.Release(ctx, other, "t4"))
	st, _ = s.Claim(ctx, other, "t5")
	assert.Equal(t, ClaimNew, st)

	// An id of up to 64 bytes is kept as it is; a digest key can equal none.
	assert.Equal(t, strings.Repeat("x", 64), dedupKey(strings.Repeat("x", 64)))
	assert.Len(t, dedupKey(long), 71)
	st, _ = s.Claim(ctx, dedupKey(long)[:64], "t6")
	assert.Equal(t, ClaimNew, st)
	for k := range s.done {
		assert.LessOrEqual(t, len(k), 71)
	}
}

// 1,000 deliveries with 900 KiB message ids keep the default store under
// 8 MiB: it holds digests of long ids, not the ids.
func TestMemoryDedupStoreMemoryBoundedByCapacity(t *testing.T) {
	store := NewMemoryDedupStore(defaultDedupCapacity)
	var calls int
	h := NewSelartiHandler(func(context.Context, *SelartiEvent) error { calls++; return nil }, WithDedupStore(store))
	id := bytes.Repeat([]byte("m"), 900<<10)
	body := []byte(`{"wh_type":"all_messages","message_type":"bot","message_text":"hi","message_id":"` + string(id) + `"}`)
	at := bytes.Index(body, id) // where the id starts: its first bytes change per delivery
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// 1,000 ids of 900 KiB would take 880 MiB unhashed; under the race
	// detector, which makes the parsing slow, and under -short, 100
	// (88 MiB) prove as much.
	n := 1000
	if RaceEnabled || testing.Short() {
		n = 100
	}
	for i := range n {
		copy(body[at:], fmt.Sprintf("%06d", i))
		assertOK(t, serveHook(h, hookRequest{body: body}))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	assert.Equal(t, n, calls)
	assert.Len(t, store.done, n)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grown by %d KiB for %d ids of 900 KiB", grown>>10, n)
	assert.Less(t, grown, int64(8<<20))
	runtime.KeepAlive(store)
	runtime.KeepAlive(h)
}

// Without WithHandlerLogger, failures go to slog.Default(). Not parallel:
// it replaces the default logger for its duration.
func TestHandlerLogsToSlogDefault(t *testing.T) {
	var logs bytes.Buffer
	prior := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prior) })
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))

	c := hookCounter{errs: []error{errors.New("relay down")}}
	h := NewSelartiHandler(c.selarti)
	assertJSONError(t, serveHook(h, hookRequest{body: readSelartiFixture(t)}), http.StatusInternalServerError, "handler failed")
	assert.Contains(t, logs.String(), "level=ERROR")
	assert.Contains(t, logs.String(), "convo: webhook handler failed")
	assert.Contains(t, logs.String(), "relay down")
	assert.Contains(t, logs.String(), "provider=selarti")

	logs.Reset()
	th := NewTalkJSHandler(talkjsSecret, c.talkjs, WithHandlerLogger(nil))
	assertJSONError(t, serveHook(th, signedHook("sk_test_wrong", []byte(talkjsMessageSent))), http.StatusUnauthorized, "invalid signature")
	assert.Contains(t, logs.String(), "level=WARN", "nil is the default logger too")
	assert.Contains(t, logs.String(), "status=401")

	// A logger given wins over the default.
	logs.Reset()
	var own bytes.Buffer
	h = NewSelartiHandler(c.selarti, WithHandlerLogger(slog.New(slog.NewTextHandler(&own, nil))))
	assertJSONError(t, serveHook(h, hookRequest{body: []byte("{")}), http.StatusBadRequest, "not valid JSON")
	assert.Empty(t, logs.String())
	assert.Contains(t, own.String(), "status=400")
}
