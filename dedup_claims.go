package convo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// This file is the handler's side of the DedupStore contract: a claim per
// delivery with a token made before it is sent, its renewal while the
// callback runs, a time budget on every store call, and the store writes
// that must not be dropped (a Complete or Release that failed, the release
// of a claim whose reply was lost, the done mark of a delivery handled
// fail-open), kept in the handler and retried with backoff.

// Bounds of the writes a handler keeps for later.
const (
	maxPendingWrites  = 10_000
	pendingBackoffMin = 20 * time.Millisecond
	pendingBackoffMax = time.Second
)

// claims is one handler's state for its store.
type claims struct {
	store    DedupStore
	lease    time.Duration // the store's; 0: no renewal
	timeout  time.Duration // of each store call
	direct   bool          // the store never blocks: called without a goroutine
	logger   *slog.Logger  // nil: slog.Default()
	provider Provider

	tokenBase string
	seq       atomic.Uint64

	mu      sync.Mutex
	pending map[string]*pendingWrite // by key
	queue   []*pendingWrite          // in the order added; written or dropped ones are skipped
	running bool                     // the writer goroutine runs
}

// pendingWrite is a Complete or a Release to write.
type pendingWrite struct {
	key, id, token string
	complete       bool      // else a release
	until          time.Time // a release is pointless after its claim's lease; zero for a complete
	gone           bool      // written or dropped; c.mu
}

func newClaims(s DedupStore, timeout time.Duration) *claims {
	var b [9]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return &claims{
		store: s, lease: s.Lease(), timeout: timeout, direct: callsDirectly(s),
		tokenBase: hex.EncodeToString(b[:]) + ":",
		pending:   make(map[string]*pendingWrite),
	}
}

func (c *claims) newToken() string {
	return c.tokenBase + strconv.FormatUint(c.seq.Add(1), 36)
}

func (c *claims) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	l := c.logger
	if l == nil {
		l = slog.Default()
	}
	l.LogAttrs(ctx, level, msg, append(attrs, slog.String("provider", string(c.provider)))...)
}

// errStoreTimeout is the cause of a store call that did not answer in time.
var errStoreTimeout = errors.New("no answer in time")

// storeCall runs f with a deadline of c.timeout, and stops waiting then
// even when f does not return (a store that ignores its context): f runs
// in a goroutine of its own, unless the store promises to return by its
// context's deadline (see DedupStore), which saves the goroutine handoff:
// on a loaded 2-core machine, serial deliveries on Redis took 2 to 3
// times as long with it.
func storeCall[T any](ctx context.Context, c *claims, f func(ctx context.Context) (T, error)) (T, error) {
	return storeCallWithin(ctx, c, c.timeout, f)
}

// storeCallWithin is storeCall with a deadline of d.
func storeCallWithin[T any](ctx context.Context, c *claims, d time.Duration, f func(ctx context.Context) (T, error)) (T, error) {
	return boundedCall(ctx, "dedup store", d, c.direct, f)
}

// callsDirectly reports a store or an inbox that the handler may call
// without a goroutine: an in-memory one, which never blocks, or one whose
// HonorsDeadline says that every call returns by its context's deadline.
func callsDirectly(v any) bool {
	switch v.(type) {
	case *MemoryDedupStore, *MemoryInbox:
		return true
	}
	h, ok := v.(interface{ HonorsDeadline() bool })
	return ok && h.HonorsDeadline()
}

// boundedCall runs f, a call to the handler's store or inbox (named what
// in its error), with a deadline of d, and stops waiting then even when f
// does not return. A direct f (see callsDirectly) is called without a
// goroutine.
func boundedCall[T any](ctx context.Context, what string, d time.Duration, direct bool, f func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, d, errStoreTimeout)
	defer cancel()
	if direct {
		return f(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		if context.Cause(ctx) == errStoreTimeout {
			return zero, fmt.Errorf("convo: %s: no answer within %v: %w", what, d, context.DeadlineExceeded)
		}
		return zero, ctx.Err()
	}
}

func (c *claims) write(ctx context.Context, w *pendingWrite) error {
	return c.writeWithin(ctx, c.timeout, w)
}

// writeWithin writes w with a deadline of d.
func (c *claims) writeWithin(ctx context.Context, d time.Duration, w *pendingWrite) error {
	_, err := storeCallWithin(ctx, c, d, func(ctx context.Context) (struct{}, error) {
		if w.complete {
			return struct{}{}, c.store.Complete(ctx, w.key, w.token)
		}
		return struct{}{}, c.store.Release(ctx, w.key, w.token)
	})
	return err
}

// dispatch claims the delivery's id, calls fn, and completes or releases
// the id. It returns nil when the answer is 200.
func (h *webhookHandler) dispatch(ctx context.Context, d delivery) (rj *reject, duplicate bool) {
	if d.id == "" {
		if h.inbox != nil {
			h.log(ctx, slog.LevelWarn, "convo: webhook delivery without an id, handled in the request without the inbox", slog.String("event", d.event))
		}
		return h.runUndeduplicated(ctx, d), false
	}
	if h.inbox != nil {
		return h.keep(ctx, d)
	}
	c := h.claims
	key := string(h.provider) + ":" + d.id
	token, recorded := c.takePending(key)
	if recorded {
		// Handled on this replica; its done mark is not written yet.
		h.log(ctx, slog.LevelDebug, "convo: webhook duplicate", slog.String("id", d.id), slog.Bool("recorded", true))
		return nil, true
	}
	if token == "" {
		token = c.newToken()
	}
	began := time.Now()
	state, err := storeCall(ctx, c, func(ctx context.Context) (ClaimState, error) { return c.store.Claim(ctx, key, token) })
	if err == nil && state != ClaimNew && state != ClaimDone && state != ClaimInProgress {
		err = errors.New("unknown claim state " + state.String())
	}
	after := context.WithoutCancel(ctx) // complete or release even when the request was cancelled
	switch {
	case err != nil && h.failOpen:
		h.log(ctx, slog.LevelWarn, "convo: webhook dedup store failed, handling without dedup", slog.String("op", "claim"), slog.String("id", d.id), slog.Any("error", err))
		// The claim may have been made: a done mark or a release with its
		// token settles it either way, once the store answers.
		rj := h.runUndeduplicated(ctx, d)
		c.keep(after, &pendingWrite{key: key, id: d.id, token: token, complete: rj == nil, until: time.Now().Add(c.lease)})
		return rj, false
	case err != nil:
		h.log(ctx, slog.LevelError, "convo: webhook dedup store failed", slog.String("op", "claim"), slog.String("id", d.id), slog.Any("error", err))
		// The claim may have been made (its reply lost, or late): release
		// it before the answer, so that the sender's retry is handled.
		c.settle(after, began, &pendingWrite{key: key, id: d.id, token: token, until: time.Now().Add(c.lease)}, true)
		return &reject{http.StatusServiceUnavailable, "dedup store unavailable"}, false
	case state == ClaimDone:
		h.log(ctx, slog.LevelDebug, "convo: webhook duplicate", slog.String("id", d.id))
		return nil, true
	case state == ClaimInProgress:
		return &reject{http.StatusConflict, "delivery in progress"}, false
	}
	rctx, r := c.renew(ctx, key, d.id, token)
	err = h.run(rctx, d)
	until := r.stop()
	if err != nil && !errors.Is(err, ErrPermanent) {
		c.settle(after, began, &pendingWrite{key: key, id: d.id, token: token, until: until}, true)
		return &reject{http.StatusInternalServerError, "handler failed"}, false
	}
	// fn did its work: answering an error would bring a redelivery.
	c.settle(after, began, &pendingWrite{key: key, id: d.id, token: token, complete: true}, true)
	return nil, false
}

// settle writes w now when now is true, and keeps it to write later when
// that fails or when now is false. Written now, it gets what is left of the
// delivery's answer budget (two store calls and half a second, from began:
// 4.5 s by default, under TalkJS's 5 s), at most one call's timeout.
func (c *claims) settle(ctx context.Context, began time.Time, w *pendingWrite, now bool) {
	if now {
		d := min(c.timeout, max(2*c.timeout+500*time.Millisecond-time.Since(began), 50*time.Millisecond))
		err := c.writeWithin(ctx, d, w)
		if err == nil {
			return
		}
		if errors.Is(err, ErrClaimLost) {
			c.lost(ctx, w, err)
			return
		}
		c.log(ctx, slog.LevelWarn, "convo: webhook dedup store failed, retrying after the answer", slog.String("op", w.op()), slog.String("id", w.id), slog.Any("error", err))
	}
	c.keep(ctx, w)
}

func (w *pendingWrite) op() string {
	if w.complete {
		return "complete"
	}
	return "release"
}

func (c *claims) lost(ctx context.Context, w *pendingWrite, err error) {
	msg := "convo: webhook claim lost: the id's lease ran out and another delivery holds it; the id may be handled twice"
	if !w.complete {
		msg = "convo: webhook claim lost before its release: another delivery holds the id"
	}
	c.log(ctx, slog.LevelError, msg, slog.String("op", w.op()), slog.String("id", w.id), slog.Any("error", err))
}

// takePending looks for a write kept for key: a done mark not yet written
// (recorded is true: the delivery was handled here), or a release of a
// claim, whose token it returns and forgets: the caller claims with it,
// which the store reports new if that claim was made.
func (c *claims) takePending(key string) (token string, recorded bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return "", false
	}
	w := c.pending[key]
	if w == nil {
		return "", false
	}
	if w.complete {
		return "", true
	}
	w.gone = true
	delete(c.pending, key)
	return w.token, false
}

// keep queues w, to be written by the writer goroutine with backoff: a
// Complete until it is written, a Release until its lease has ended. At
// maxPendingWrites the oldest is dropped, and logged.
func (c *claims) keep(ctx context.Context, w *pendingWrite) {
	if !w.complete && c.lease > 0 && !time.Now().Before(w.until) {
		return
	}
	c.mu.Lock()
	var dropped *pendingWrite
	if old := c.pending[w.key]; old != nil {
		old.gone = true
	} else if len(c.pending) >= maxPendingWrites {
		for len(c.queue) > 0 && dropped == nil {
			if q := c.queue[0]; !q.gone {
				dropped = q
				q.gone = true
				delete(c.pending, q.key)
			}
			c.queue = c.queue[1:]
		}
	}
	c.pending[w.key] = w
	c.queue = append(c.queue, w)
	start := !c.running
	c.running = true
	c.mu.Unlock()
	if dropped != nil {
		c.log(ctx, slog.LevelError, "convo: webhook dedup writes kept for later are full, dropping the oldest",
			slog.String("op", dropped.op()), slog.String("id", dropped.id), slog.Int("max", maxPendingWrites))
	}
	if start {
		go c.writer(context.WithoutCancel(ctx))
	}
}

// writer writes the kept writes in order, backing off while the store
// fails, and ends when none is left.
func (c *claims) writer(ctx context.Context) {
	backoff := pendingBackoffMin
	for {
		c.mu.Lock()
		for len(c.queue) > 0 && c.queue[0].gone {
			c.queue = c.queue[1:]
		}
		if len(c.queue) == 0 {
			c.queue = nil
			c.running = false
			c.mu.Unlock()
			return
		}
		w := c.queue[0]
		c.mu.Unlock()
		if !w.complete && c.lease > 0 && !time.Now().Before(w.until) {
			c.done(w) // its claim has ended with its lease
			continue
		}
		err := c.write(ctx, w)
		switch {
		case err == nil:
			c.done(w)
			backoff = pendingBackoffMin
		case errors.Is(err, ErrClaimLost):
			c.lost(ctx, w, err)
			c.done(w)
		default:
			time.Sleep(backoff)
			backoff = min(2*backoff, pendingBackoffMax)
		}
	}
}

// done forgets w, unless a later write for its key replaced it.
func (c *claims) done(w *pendingWrite) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.gone = true
	if c.pending[w.key] == w {
		delete(c.pending, w.key)
	}
}

// renewal keeps a claim alive while its callback runs.
type renewal struct {
	c              *claims
	key, id, token string
	ctx            context.Context
	cancel         context.CancelCauseFunc

	mu      sync.Mutex
	timer   *time.Timer
	renewed time.Time // of the claim, then of the last renewal
	stopped bool
}

// renew starts renewing token's claim on key every third of the lease; the
// context it returns ends when the claim is lost. It renews nothing for a
// store without a lease.
func (c *claims) renew(ctx context.Context, key, id, token string) (context.Context, *renewal) {
	r := &renewal{c: c, key: key, id: id, token: token, renewed: time.Now()}
	if c.lease <= 0 {
		return ctx, r
	}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	r.mu.Lock()
	r.timer = time.AfterFunc(c.lease/3, r.tick)
	r.mu.Unlock()
	return r.ctx, r
}

func (r *renewal) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	c := r.c
	_, err := storeCall(context.WithoutCancel(r.ctx), c, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.store.Renew(ctx, r.key, r.token)
	})
	now := time.Now()
	switch {
	case err == nil:
		r.renewed = now
		r.timer.Reset(c.lease / 3)
	case errors.Is(err, ErrClaimLost) || now.Sub(r.renewed) >= c.lease:
		r.stopped = true
		c.log(r.ctx, slog.LevelError, "convo: webhook claim lost while the callback runs, ending its context",
			slog.String("id", r.id), slog.Duration("lease", c.lease), slog.Any("error", err))
		r.cancel(fmt.Errorf("%w: %w", ErrClaimLost, err))
	default:
		c.log(r.ctx, slog.LevelWarn, "convo: webhook claim renewal failed, retrying", slog.String("id", r.id), slog.Any("error", err))
		r.timer.Reset(min(c.lease/6, c.lease-now.Sub(r.renewed)))
	}
}

// stop ends the renewal, waiting for one under way, and returns when the
// claim's lease ends.
func (r *renewal) stop() time.Time {
	if r.timer == nil {
		return r.renewed.Add(r.c.lease)
	}
	r.mu.Lock()
	r.stopped = true
	r.timer.Stop()
	until := r.renewed.Add(r.c.lease)
	r.mu.Unlock()
	r.cancel(nil)
	return until
}
