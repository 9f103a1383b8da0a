package convo

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of dedup_claims.go: the handler's side of the DedupStore contract
// through store faults, on MemoryDedupStore wrapped to fail on cue. The
// same faults on real Redis processes are in redisdedup's tests.

var errStoreDown = errors.New("store down")

// flakyStore is a MemoryDedupStore that fails on cue: every call while
// down; the next failCompletes Completes; the next lostReplies Claims
// after making the claim (a reply lost on the wire). It counts calls.
type flakyStore struct {
	*MemoryDedupStore
	down          atomic.Bool
	failCompletes atomic.Int32
	lostReplies   atomic.Int32
	claims        atomic.Int32
	renews        atomic.Int32
	completes     atomic.Int32
	releases      atomic.Int32
}

func (s *flakyStore) Claim(ctx context.Context, id, token string) (ClaimState, error) {
	s.claims.Add(1)
	if s.down.Load() {
		return 0, errStoreDown
	}
	st, err := s.MemoryDedupStore.Claim(ctx, id, token)
	if err == nil && s.lostReplies.Add(-1) >= 0 {
		return 0, errors.New("read: connection reset by peer")
	}
	return st, err
}

func (s *flakyStore) Renew(ctx context.Context, id, token string) error {
	s.renews.Add(1)
	if s.down.Load() {
		return errStoreDown
	}
	return s.MemoryDedupStore.Renew(ctx, id, token)
}

func (s *flakyStore) Complete(ctx context.Context, id, token string) error {
	s.completes.Add(1)
	if s.down.Load() || s.failCompletes.Add(-1) >= 0 {
		return errStoreDown
	}
	return s.MemoryDedupStore.Complete(ctx, id, token)
}

func (s *flakyStore) Release(ctx context.Context, id, token string) error {
	s.releases.Add(1)
	if s.down.Load() {
		return errStoreDown
	}
	return s.MemoryDedupStore.Release(ctx, id, token)
}

// waitState waits until a claim of id with a token of its own finds want
// (releasing a claim it makes), or fails t after 10 s.
func waitState(t *testing.T, s *MemoryDedupStore, id string, want ClaimState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.Claim(context.Background(), id, "waitState")
		require.NoError(t, err)
		if st == ClaimNew {
			require.NoError(t, s.Release(context.Background(), id, "waitState"))
		}
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after 10s, want %v", id, st, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A callback that runs for many leases keeps its claim: a redelivery
// meanwhile, on another replica, is answered 409 and runs nothing.
func TestDedupRenewalKeepsLongCallback(t *testing.T) {
	// Long enough that a loaded machine's late timer does not lose it.
	const lease = time.Second
	mem := NewMemoryDedupStore(10, WithMemoryLease(lease))
	fixture := readSelartiFixture(t)
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	fn := func(ctx context.Context, ev *SelartiEvent) error {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return ctx.Err()
	}
	store := &flakyStore{MemoryDedupStore: mem}
	a := NewSelartiHandler(fn, WithDedupStore(store))
	b := NewSelartiHandler(fn, WithDedupStore(store))
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serveHook(a, hookRequest{body: fixture}) }()
	<-started
	// Wait for four renewals: more than a lease.
	for store.renews.Load() < 4 {
		time.Sleep(lease / 3)
	}
	assertJSONError(t, serveHook(b, hookRequest{body: fixture}), http.StatusConflict, "in progress")
	close(release)
	assertOK(t, <-done)
	assert.Equal(t, int32(1), calls.Load())
	assertOK(t, serveHook(b, hookRequest{body: fixture}))
	assert.Equal(t, int32(1), calls.Load())
}

// Without renewal (a store whose lease the handler does not know), the
// same long callback is taken over: the check that the test above can fail.
func TestDedupWithoutRenewalIsTakenOver(t *testing.T) {
	const lease = 30 * time.Millisecond
	mem := NewMemoryDedupStore(10, WithMemoryLease(lease))
	fixture := readSelartiFixture(t)
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	fn := func(ctx context.Context, ev *SelartiEvent) error {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return nil
	}
	a := NewSelartiHandler(fn, WithDedupStore(noLease{mem}))
	b := NewSelartiHandler(fn, WithDedupStore(mem))
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serveHook(a, hookRequest{body: fixture}) }()
	<-started
	waitState(t, mem, "selarti:1731336491876x582725124419040400", ClaimNew)
	assertOK(t, serveHook(b, hookRequest{body: fixture}))
	close(release)
	<-done
	assert.Equal(t, int32(2), calls.Load(), "taken over after the lease")
}

// noLease hides the store's lease from the handler.
type noLease struct{ *MemoryDedupStore }

func (noLease) Lease() time.Duration { return 0 }

// A claim lost while the callback runs (the store cannot renew it for a
// whole lease) ends the callback's context with ErrClaimLost, logged as an
// error.
func TestDedupClaimLostEndsContext(t *testing.T) {
	const lease = 30 * time.Millisecond
	store := &flakyStore{MemoryDedupStore: NewMemoryDedupStore(10, WithMemoryLease(lease))}
	var logs logBuffer
	started := make(chan struct{})
	var cause error
	h := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		close(started)
		<-ctx.Done()
		cause = context.Cause(ctx)
		return ctx.Err()
	}, WithDedupStore(store), WithHandlerLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serveHook(h, hookRequest{body: readSelartiFixture(t)}) }()
	<-started
	store.down.Store(true)
	resp := <-done
	store.down.Store(false)
	assertJSONError(t, resp, http.StatusInternalServerError, "handler failed")
	assert.ErrorIs(t, cause, ErrClaimLost)
	assert.Contains(t, logs.String(), "level=ERROR msg=\"convo: webhook claim lost while the callback runs")
}

// A Complete that fails after the callback is retried after the answer,
// with the claim's token: the id ends done, and a redelivery on another
// replica runs nothing.
func TestDedupCompleteRetried(t *testing.T) {
	store := &flakyStore{MemoryDedupStore: NewMemoryDedupStore(10)}
	store.failCompletes.Store(3)
	var c hookCounter
	a := NewTalkJSHandler(talkjsSecret, c.talkjs, WithDedupStore(store))
	b := NewTalkJSHandler(talkjsSecret, c.talkjs, WithDedupStore(store))
	assertOK(t, serveHook(a, signedHook(talkjsSecret, []byte(talkjsMessageSent))))
	waitState(t, store.MemoryDedupStore, "talkjs:evt_AbC123", ClaimDone)
	assert.Equal(t, int32(4), store.completes.Load(), "three failures, then the write")
	assertOK(t, serveHook(b, signedHook(talkjsSecret, []byte(talkjsMessageSent))))
	assert.Equal(t, 1, c.count())
}

// A claim whose reply was lost (the store made it) is released with its
// token before the 503, so that the sender's retry, on either replica, is
// handled rather than refused for the lease.
func TestDedupLostClaimReplyReleased(t *testing.T) {
	for _, sameReplica := range []bool{true, false} {
		store := &flakyStore{MemoryDedupStore: NewMemoryDedupStore(10)}
		store.lostReplies.Store(1)
		var c hookCounter
		a := NewTalkJSHandler(talkjsSecret, c.talkjs, WithDedupStore(store))
		b := NewTalkJSHandler(talkjsSecret, c.talkjs, WithDedupStore(store))
		assertJSONError(t, serveHook(a, signedHook(talkjsSecret, []byte(talkjsMessageSent))), http.StatusServiceUnavailable, "dedup store")
		assert.Equal(t, 0, c.count())
		retry := b
		if sameReplica {
			retry = a
		}
		assertOK(t, serveHook(retry, signedHook(talkjsSecret, []byte(talkjsMessageSent))))
		assert.Equal(t, 1, c.count(), "the retry is handled")
		assert.Equal(t, int32(1), store.releases.Load(), "the lost claim was released")
	}
}

// The same lost reply with Selarti (fail-open by default): handled once,
// and the orphan claim completed with its token, so a redelivery elsewhere
// is a duplicate.
func TestDedupLostClaimReplySelartiFailOpen(t *testing.T) {
	store := &flakyStore{MemoryDedupStore: NewMemoryDedupStore(10)}
	store.lostReplies.Store(1)
	var c hookCounter
	a := NewSelartiHandler(c.selarti, WithDedupStore(store))
	b := NewSelartiHandler(c.selarti, WithDedupStore(store))
	fixture := readSelartiFixture(t)
	assertOK(t, serveHook(a, hookRequest{body: fixture}))
	waitState(t, store.MemoryDedupStore, "selarti:1731336491876x582725124419040400", ClaimDone)
	assertOK(t, serveHook(b, hookRequest{body: fixture}))
	assert.Equal(t, 1, c.count())
}

// hangStore never answers until closed, and ignores its context.
type hangStore struct {
	*MemoryDedupStore
	hang chan struct{}
	op   string // the call that hangs
}

func (s *hangStore) wait(op string) {
	if op == s.op {
		<-s.hang
	}
}

func (s *hangStore) Claim(ctx context.Context, id, token string) (ClaimState, error) {
	s.wait("claim")
	return s.MemoryDedupStore.Claim(ctx, id, token)
}

func (s *hangStore) Complete(ctx context.Context, id, token string) error {
	s.wait("complete")
	return s.MemoryDedupStore.Complete(ctx, id, token)
}

// A store that hangs (and ignores its context) does not hold the answer
// past the time budget: 503 from TalkJS's handler, fail-open from
// Selarti's, 200 after the callback when Complete hangs.
func TestDedupTimeBudget(t *testing.T) {
	fixture := readSelartiFixture(t)
	for _, op := range []string{"claim", "complete"} {
		store := &hangStore{MemoryDedupStore: NewMemoryDedupStore(10), hang: make(chan struct{}), op: op}
		var c hookCounter
		tj := NewTalkJSHandler(talkjsSecret, c.talkjs, WithDedupStore(store), WithDedupTimeout(20*time.Millisecond))
		sel := NewSelartiHandler(c.selarti, WithDedupStore(store), WithDedupTimeout(20*time.Millisecond))
		if op == "claim" {
			assertJSONError(t, serveHook(tj, signedHook(talkjsSecret, []byte(talkjsMessageSent))), http.StatusServiceUnavailable, "dedup store")
			assert.Equal(t, 0, c.count())
		} else {
			assertOK(t, serveHook(tj, signedHook(talkjsSecret, []byte(talkjsMessageSent))))
			assert.Equal(t, 1, c.count())
		}
		before := c.count()
		assertOK(t, serveHook(sel, hookRequest{body: fixture}))
		assert.Equal(t, before+1, c.count(), op)
		close(store.hang)
	}
}

// The defaults per provider: Selarti's handler fails open (Selarti never
// retries), TalkJS's answers 503 (TalkJS retries once); both overridable.
func TestDedupFailureDefaultsPerProvider(t *testing.T) {
	down := &flakyStore{MemoryDedupStore: NewMemoryDedupStore(10)}
	down.down.Store(true)
	var c hookCounter
	assertOK(t, serveHook(NewSelartiHandler(c.selarti, WithDedupStore(down)), hookRequest{body: readSelartiFixture(t)}))
	assert.Equal(t, 1, c.count())
	assertJSONError(t, serveHook(NewSelartiHandler(c.selarti, WithDedupStore(down), WithDedupFailClosed()), hookRequest{body: readSelartiFixture(t)}),
		http.StatusServiceUnavailable, "dedup store")
	assertJSONError(t, serveHook(NewTalkJSHandler(talkjsSecret, c.talkjs, WithDedupStore(down)), signedHook(talkjsSecret, []byte(talkjsMessageSent))),
		http.StatusServiceUnavailable, "dedup store")
	assert.Equal(t, 1, c.count())
	assertOK(t, serveHook(NewTalkJSHandler(talkjsSecret, c.talkjs, WithDedupStore(down), WithDedupFailOpen()), signedHook(talkjsSecret, []byte(talkjsMessageSent))))
	assert.Equal(t, 2, c.count())
	assert.Panics(t, func() { NewSelartiHandler(c.selarti, WithDedupTimeout(0)) })
}

// simple is a store of the earlier contract.
type simple struct{ m *MemoryDedupStore }

func (s simple) Claim(ctx context.Context, id string) (ClaimState, error) {
	return s.m.Claim(ctx, id, "simple")
}
func (s simple) Complete(ctx context.Context, id string) error {
	return s.m.Complete(ctx, id, "simple")
}
func (s simple) Release(ctx context.Context, id string) error { return s.m.Release(ctx, id, "simple") }

// A store of the earlier contract works through AdaptDedupStore.
func TestAdaptDedupStore(t *testing.T) {
	m := NewMemoryDedupStore(10)
	var c hookCounter
	h := NewSelartiHandler(c.selarti, WithDedupStore(AdaptDedupStore(simple{m})))
	assertOK(t, serveHook(h, hookRequest{body: readSelartiFixture(t)}))
	assertOK(t, serveHook(h, hookRequest{body: readSelartiFixture(t)}))
	assert.Equal(t, 1, c.count())
	assert.Zero(t, AdaptDedupStore(simple{m}).Lease())
	assert.Panics(t, func() { AdaptDedupStore(nil) })
}
