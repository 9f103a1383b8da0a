package convo

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"
)

// Defaults of the inboxes.
const (
	defaultInboxAttempts   = 8
	defaultInboxBackoffMin = time.Second
	defaultInboxBackoffMax = 5 * time.Minute
	defaultInboxWorkers    = 4
	defaultInboxCapacity   = 10_000
)

// ErrNotDeadLetter is the error of Replay for a delivery that is not a
// dead letter: unknown, waiting, running, or completed. Use errors.Is.
var ErrNotDeadLetter = errors.New("convo: inbox: not a dead letter")

// errInboxFull is the error of MemoryInbox.Add once it keeps as many
// deliveries as its capacity.
var errInboxFull = errors.New("convo: memory inbox full")

// InboxOption configures a MemoryInbox.
type InboxOption func(*inboxConfig)

type inboxConfig struct {
	attempts   int
	backoffMin time.Duration
	backoffMax time.Duration
	workers    int
	capacity   int
	logger     *slog.Logger
	observer   *Observer
	clock      inboxClock
}

// WithInboxAttempts sets how many runs a delivery gets before it is a dead
// letter (default 8). It panics if n is less than 1.
func WithInboxAttempts(n int) InboxOption {
	if n < 1 {
		panic("convo: WithInboxAttempts: n must be at least 1")
	}
	return func(c *inboxConfig) { c.attempts = n }
}

// WithInboxBackoff sets the wait after a failed run: min after the first,
// doubling on each failure up to max (default 1 s to 5 min). The next run
// starts at least that long after the failed run ended; a random jitter of
// up to a quarter of the wait is added (never beyond max), so that
// deliveries failing together do not all come back at once. It panics if
// min is not positive or max is less than min.
func WithInboxBackoff(min, max time.Duration) InboxOption {
	if min <= 0 || max < min {
		panic("convo: WithInboxBackoff: want 0 < min <= max")
	}
	return func(c *inboxConfig) { c.backoffMin, c.backoffMax = min, max }
}

// WithInboxWorkers sets how many deliveries each Run runs at once (default
// 4). It panics if n is less than 1.
func WithInboxWorkers(n int) InboxOption {
	if n < 1 {
		panic("convo: WithInboxWorkers: n must be at least 1")
	}
	return func(c *inboxConfig) { c.workers = n }
}

// WithInboxCapacity bounds a MemoryInbox's memory (default 10,000): it
// remembers up to n completed ids (forgetting the oldest first, as
// MemoryDedupStore does), keeps up to n deliveries not yet completed (Add
// fails beyond: a handler then does as when its dedup store fails, 503 or
// fail-open, see WithInbox), and up to n dead letters
// (the oldest is dropped, logged as an error, and its id remembered as
// completed). It panics if n is less than 1.
func WithInboxCapacity(n int) InboxOption {
	if n < 1 {
		panic("convo: WithInboxCapacity: n must be at least 1")
	}
	return func(c *inboxConfig) { c.capacity = n }
}

// WithInboxLogger sets the logger of a MemoryInbox (default slog.Default(),
// as found when it logs): a run that fails is logged at Warn, a dead
// letter at Error, an interrupted run at Info.
func WithInboxLogger(l *slog.Logger) InboxOption {
	return func(c *inboxConfig) { c.logger = l }
}

// WithInboxObserver makes a MemoryInbox report the deliveries it keeps and
// runs to o's InboxKept, InboxRunStart and InboxRunDone (see Observer).
func WithInboxObserver(o Observer) InboxOption {
	return func(c *inboxConfig) {
		c.observer = nil
		if o.forInbox() {
			c.observer = &o
		}
	}
}

// withInboxClock sets the inbox's clock: a fake one in tests.
func withInboxClock(c inboxClock) InboxOption {
	return func(cfg *inboxConfig) { cfg.clock = c }
}

// inboxClock is the time of a MemoryInbox; tests give a fake one.
type inboxClock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a
	// function that stops it.
	After(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// MemoryInbox is an Inbox in the memory of one process: the deliveries it
// keeps are lost when the process exits, so it protects against a
// callback that fails for a while (a provider down, a bug fixed by a
// deploy without restart) but not against a crash; for that, use
// redisdedup.Inbox. Run runs the kept deliveries. It is safe for
// concurrent use.
//
// Each kept delivery runs until a run returns nil, at most
// WithInboxAttempts times, with a backoff between runs; then it is a dead
// letter, listed by DeadLetters until Replay runs it again. Deliveries
// with the same Key run one at a time, in the order they were added: one
// waiting in backoff holds the later ones of its Key, a dead letter
// releases them. Different keys run in parallel, WithInboxWorkers at a
// time per Run.
//
// Its memory is bounded by WithInboxCapacity (see there) times the size
// of a body (a handler's WithBodyLimit).
type MemoryInbox struct {
	cfg inboxConfig

	mu       sync.Mutex
	handlers map[Provider]func(ctx context.Context, d Delivery) error
	entries  map[string]*inboxEntry // kept and not completed, dead letters included
	live     int                    // entries not dead
	keys     map[string][]*inboxEntry
	ready    []*inboxEntry // may run now, in order
	backoff  []*inboxEntry // waiting for their due time, unordered
	dead     []*inboxEntry // dead letters, oldest first
	running  map[*inboxEntry]struct{}
	done     idRing
	changed  chan struct{} // closed and replaced when work may have become ready
}

// inboxEntry is a kept delivery.
type inboxEntry struct {
	d      Delivery // Attempt: the runs made so far
	id     string   // provider ":" dedupKey(ID)
	state  entryState
	due    time.Time // when in backoff
	replay bool      // a replayed dead letter: one run, then dead again on failure
}

type entryState int

const (
	entryWaiting entryState = iota // behind another delivery of its key
	entryReady
	entryRunning
	entryBackoff
	entryDead
)

// NewMemoryInbox returns an inbox in memory with the options applied.
// Call Run to run what it keeps.
func NewMemoryInbox(opts ...InboxOption) *MemoryInbox {
	c := inboxConfig{
		attempts:   defaultInboxAttempts,
		backoffMin: defaultInboxBackoffMin,
		backoffMax: defaultInboxBackoffMax,
		workers:    defaultInboxWorkers,
		capacity:   defaultInboxCapacity,
		clock:      realClock{},
	}
	for _, o := range opts {
		o(&c)
	}
	return &MemoryInbox{
		cfg:      c,
		handlers: make(map[Provider]func(context.Context, Delivery) error),
		entries:  make(map[string]*inboxEntry),
		keys:     make(map[string][]*inboxEntry),
		running:  make(map[*inboxEntry]struct{}),
		done:     newIDRing(c.capacity),
		changed:  make(chan struct{}),
	}
}

// entryID is the id an inbox keeps d under.
func entryID(p Provider, id string) string { return string(p) + ":" + dedupKey(id) }

// Handle implements Inbox. A later call for the same provider replaces
// the function.
func (in *MemoryInbox) Handle(p Provider, fn func(ctx context.Context, d Delivery) error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.handlers[p] = fn
	in.signal()
}

// Add implements Inbox. It keeps d.Body as it is, without a copy: the
// caller must not change it afterwards. A zero Received is set to now. It
// fails when d has no Provider or ID, and when the inbox already keeps as
// many deliveries as its capacity.
func (in *MemoryInbox) Add(ctx context.Context, d Delivery) (bool, error) {
	if d.Provider == "" || d.ID == "" {
		return false, errors.New("convo: MemoryInbox.Add: a delivery needs a Provider and an ID")
	}
	id := entryID(d.Provider, d.ID)
	if d.Received.IsZero() {
		d.Received = in.cfg.clock.Now()
	}
	d.Attempt = 0
	in.mu.Lock()
	if _, ok := in.entries[id]; ok || in.done.has(id) {
		in.mu.Unlock()
		return false, nil
	}
	if in.live >= in.cfg.capacity {
		in.mu.Unlock()
		return false, fmt.Errorf("%w: %d deliveries kept and not completed", errInboxFull, in.cfg.capacity)
	}
	e := &inboxEntry{d: d, id: id}
	in.entries[id] = e
	in.live++
	in.enqueue(e)
	o := in.cfg.observer
	if o == nil || o.InboxKept == nil {
		in.mu.Unlock()
		return true, nil
	}
	info := in.info(e, 0)
	in.mu.Unlock()
	o.InboxKept(ctx, info)
	return true, nil
}

// enqueue puts e behind the deliveries of its key, ready when it is the
// first. The caller holds in.mu.
func (in *MemoryInbox) enqueue(e *inboxEntry) {
	k := e.d.Key
	if k != "" {
		q := in.keys[k]
		in.keys[k] = append(q, e)
		if len(q) > 0 {
			e.state = entryWaiting
			return
		}
	}
	in.makeReady(e)
}

func (in *MemoryInbox) makeReady(e *inboxEntry) {
	e.state = entryReady
	in.ready = append(in.ready, e)
	in.signal()
}

// release lets the next delivery of e's key run: e completed or is a
// dead letter. The caller holds in.mu.
func (in *MemoryInbox) release(e *inboxEntry) {
	k := e.d.Key
	if k == "" {
		return
	}
	q := in.keys[k]
	if len(q) == 0 || q[0] != e {
		return
	}
	q[0] = nil
	q = q[1:]
	if len(q) == 0 {
		delete(in.keys, k)
		return
	}
	in.keys[k] = q
	in.makeReady(q[0])
}

// signal wakes the workers waiting for work. The caller holds in.mu.
func (in *MemoryInbox) signal() {
	close(in.changed)
	in.changed = make(chan struct{})
}

// info describes e and the queue. The caller holds in.mu.
func (in *MemoryInbox) info(e *inboxEntry, attempt int) InboxInfo {
	depth, oldest := in.queue()
	return InboxInfo{Provider: e.d.Provider, Attempt: attempt, Received: e.d.Received, Depth: depth, Oldest: oldest}
}

// queue gives the depth and the oldest Received of the deliveries not
// completed nor dead. The caller holds in.mu. It looks at the first of
// each key and at those without a key: the first of a key is its oldest,
// unless a replayed dead letter went behind later ones. It is called only
// for an observer.
func (in *MemoryInbox) queue() (int, time.Time) {
	if in.live == 0 {
		return 0, time.Time{}
	}
	var oldest time.Time
	older := func(t time.Time) {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	for _, q := range in.keys {
		older(q[0].d.Received)
	}
	for _, e := range in.ready {
		if e.d.Key == "" {
			older(e.d.Received)
		}
	}
	for _, e := range in.backoff {
		if e.d.Key == "" {
			older(e.d.Received)
		}
	}
	for e := range in.running {
		if e.d.Key == "" {
			older(e.d.Received)
		}
	}
	return in.live, oldest
}

// Run runs kept deliveries, WithInboxWorkers at a time, until ctx ends;
// then it cancels the contexts of its runs, waits for them to return, and
// gives their deliveries back to run again at once (an interrupted run
// counts as an attempt), and returns nil. Several Runs, in one process,
// may share the inbox: each delivery runs in one of them at a time.
func (in *MemoryInbox) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range in.cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.work(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// work runs deliveries one at a time until ctx ends.
func (in *MemoryInbox) work(ctx context.Context) {
	for {
		in.mu.Lock()
		if ctx.Err() != nil {
			in.mu.Unlock()
			return
		}
		e, fn, wait := in.next()
		changed := in.changed
		in.mu.Unlock()
		if e != nil {
			in.run(ctx, e, fn)
			continue
		}
		var timer <-chan time.Time
		stop := func() {}
		if wait > 0 {
			timer, stop = in.cfg.clock.After(wait)
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer:
		}
		stop()
	}
}

// next takes the first ready delivery that has a function to run it,
// making it running; or, when there is none, says how long until the
// first in backoff is due (0: none). The caller holds in.mu.
func (in *MemoryInbox) next() (*inboxEntry, func(context.Context, Delivery) error, time.Duration) {
	now := in.cfg.clock.Now()
	var wait time.Duration
	for i := 0; i < len(in.backoff); {
		e := in.backoff[i]
		if left := e.due.Sub(now); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			i++
			continue
		}
		in.backoff[i] = in.backoff[len(in.backoff)-1]
		in.backoff[len(in.backoff)-1] = nil
		in.backoff = in.backoff[:len(in.backoff)-1]
		in.makeReady(e)
	}
	for i, e := range in.ready {
		fn := in.handlers[e.d.Provider]
		if fn == nil {
			continue // runs once Handle is called for its provider
		}
		if i == 0 {
			in.ready[0] = nil
			in.ready = in.ready[1:]
		} else {
			in.ready = append(in.ready[:i], in.ready[i+1:]...)
		}
		e.state = entryRunning
		e.d.Attempt++
		in.running[e] = struct{}{}
		return e, fn, 0
	}
	return nil, nil, wait
}

// run runs e once and settles what comes next.
func (in *MemoryInbox) run(ctx context.Context, e *inboxEntry, fn func(context.Context, Delivery) error) {
	d := e.d
	o := in.cfg.observer
	rctx := ctx
	if o != nil && o.InboxRunStart != nil {
		in.mu.Lock()
		info := in.info(e, d.Attempt)
		in.mu.Unlock()
		if octx := o.InboxRunStart(ctx, info); octx != nil {
			rctx = octx
		}
	}
	start := in.cfg.clock.Now()
	err := in.call(rctx, fn, d)
	end := in.cfg.clock.Now()

	in.mu.Lock()
	delete(in.running, e)
	res := InboxRunResult{Provider: d.Provider, Attempt: d.Attempt, Received: d.Received, Duration: end.Sub(start)}
	last := e.replay || d.Attempt >= in.cfg.attempts
	switch {
	case err == nil:
		res.Outcome = InboxCompleted
		in.complete(e)
	case ctx.Err() != nil && !last:
		res.Outcome = InboxInterrupted
		e.state = entryReady
		in.ready = append([]*inboxEntry{e}, in.ready...)
		in.signal()
	case last || errors.Is(err, ErrPermanent):
		res.Outcome = InboxDeadLettered
		in.bury(e)
	default:
		res.Outcome = InboxRetried
		res.Retry = in.backoffAfter(d.Attempt)
		e.state, e.due = entryBackoff, end.Add(res.Retry)
		in.backoff = append(in.backoff, e)
		in.signal()
	}
	if o != nil && o.InboxRunDone != nil {
		res.Depth, res.Oldest = in.queue()
	}
	in.mu.Unlock()

	attrs := []slog.Attr{slog.String("provider", string(d.Provider)), slog.String("id", d.ID),
		slog.Int("attempt", d.Attempt), slog.Any("error", err)}
	switch res.Outcome {
	case InboxRetried:
		in.log(ctx, slog.LevelWarn, "convo: inbox run failed, retrying", append(attrs, slog.Duration("retry_in", res.Retry))...)
	case InboxDeadLettered:
		in.log(ctx, slog.LevelError, "convo: inbox run failed, dead letter", attrs...)
	case InboxInterrupted:
		in.log(ctx, slog.LevelInfo, "convo: inbox run interrupted, given back", attrs...)
	}
	if o != nil && o.InboxRunDone != nil {
		o.InboxRunDone(rctx, res)
	}
}

// call calls fn, turning a panic into an error.
func (in *MemoryInbox) call(ctx context.Context, fn func(context.Context, Delivery) error, d Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			in.log(ctx, slog.LevelError, "convo: inbox run panicked", slog.String("provider", string(d.Provider)),
				slog.String("id", d.ID), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	return fn(ctx, d)
}

// backoffAfter is the wait after the attempt-th run failed: min doubled
// attempt-1 times, at most max, plus up to a quarter of it, at most max.
func (in *MemoryInbox) backoffAfter(attempt int) time.Duration {
	d := in.cfg.backoffMin
	for i := 1; i < attempt && d < in.cfg.backoffMax; i++ {
		d *= 2
	}
	d = min(d, in.cfg.backoffMax)
	if j := d / 4; j > 0 {
		d += rand.N(j + 1)
	}
	return min(d, in.cfg.backoffMax)
}

// complete forgets e, remembering its id as done. The caller holds in.mu.
func (in *MemoryInbox) complete(e *inboxEntry) {
	delete(in.entries, e.id)
	in.live--
	in.release(e)
	in.done.add(e.id)
}

// bury makes e a dead letter. The caller holds in.mu.
func (in *MemoryInbox) bury(e *inboxEntry) {
	e.state, e.replay = entryDead, false
	in.live--
	in.release(e)
	in.dead = append(in.dead, e)
	if len(in.dead) <= in.cfg.capacity {
		return
	}
	old := in.dead[0]
	in.dead[0] = nil
	in.dead = in.dead[1:]
	delete(in.entries, old.id)
	in.done.add(old.id)
	in.log(context.Background(), slog.LevelError, "convo: inbox full of dead letters, dropped the oldest",
		slog.String("provider", string(old.d.Provider)), slog.String("id", old.d.ID))
}

// DeadLetters lists the dead letters, oldest first, with Attempt the runs
// they had. It yields a zero Delivery and ctx's error, and stops, if ctx
// ends.
func (in *MemoryInbox) DeadLetters(ctx context.Context) iter.Seq2[Delivery, error] {
	return func(yield func(Delivery, error) bool) {
		in.mu.Lock()
		list := make([]Delivery, len(in.dead))
		for i, e := range in.dead {
			list[i] = e.d
		}
		in.mu.Unlock()
		for _, d := range list {
			if err := ctx.Err(); err != nil {
				yield(Delivery{}, err)
				return
			}
			if !yield(d, nil) {
				return
			}
		}
	}
}

// Replay runs the dead letter of provider p and id once more, after the
// deliveries of its Key kept before, with Attempt continuing; failing
// again, it is a dead letter again at once. It returns once the delivery
// is queued (a Run runs it); an error matching ErrNotDeadLetter when no
// such dead letter exists.
func (in *MemoryInbox) Replay(ctx context.Context, p Provider, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	e := in.entries[entryID(p, id)]
	if e == nil || e.state != entryDead {
		return fmt.Errorf("%w: %s %q", ErrNotDeadLetter, p, id)
	}
	for i, x := range in.dead {
		if x == e {
			in.dead = append(in.dead[:i], in.dead[i+1:]...)
			break
		}
	}
	e.replay = true
	in.live++
	in.enqueue(e)
	return nil
}

func (in *MemoryInbox) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	l := in.cfg.logger
	if l == nil {
		l = slog.Default()
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}

// idRing remembers the last cap ids added.
type idRing struct {
	cap   int
	set   map[string]struct{}
	order []string // oldest at next once full
	next  int
}

func newIDRing(n int) idRing { return idRing{cap: n, set: make(map[string]struct{})} }

func (r *idRing) has(id string) bool {
	_, ok := r.set[id]
	return ok
}

func (r *idRing) add(id string) {
	if r.has(id) {
		return
	}
	r.set[id] = struct{}{}
	if len(r.order) < r.cap {
		r.order = append(r.order, id)
		return
	}
	delete(r.set, r.order[r.next])
	r.order[r.next] = id
	r.next = (r.next + 1) % r.cap
}
