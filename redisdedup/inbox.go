package redisdedup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
)

// The defaults of NewInbox.
const (
	DefaultInboxPrefix   = "convo:inbox:"
	DefaultInboxAttempts = 8
	DefaultInboxWorkers  = 4
	DefaultInboxMinWait  = time.Second
	DefaultInboxMaxWait  = 5 * time.Minute
)

// endTimeout is the least time a run's end is tried for, through an outage
// or a failover.
const endTimeout = 15 * time.Second

// defaultPoll is how often a Run looks for deliveries that other replicas
// kept, when nothing tells it sooner.
const defaultPoll = 200 * time.Millisecond

// ErrNotDeadLetter is convo.ErrNotDeadLetter: Inbox.Replay returns it for a
// delivery that is not a dead letter (unknown, waiting, running or
// completed), so that code replaying through either inbox checks one error.
var ErrNotDeadLetter = convo.ErrNotDeadLetter

// inboxOptions are the options only an Inbox reads; a Store ignores them.
type inboxOptions struct {
	attempts         int
	minWait, maxWait time.Duration
	workers          int
	logger           *slog.Logger
	observer         *convo.Observer
	poll             time.Duration
	waitReplicas     int // WAIT for this many replicas after each write (0: none)
	waitTimeout      time.Duration
}

// inboxOption is an Option only NewInbox reads.
func inboxOption(f func(*inboxOptions)) Option {
	return func(o *options) { f(&o.inbox) }
}

// inboxConfig applies opts over the inbox's defaults.
func inboxConfig(opts []Option) (lease, retention time.Duration, prefix string, o inboxOptions) {
	s := &options{lease: DefaultLease, retention: DefaultRetention, prefix: DefaultInboxPrefix}
	s.inbox = inboxOptions{
		attempts: DefaultInboxAttempts, workers: DefaultInboxWorkers,
		minWait: DefaultInboxMinWait, maxWait: DefaultInboxMaxWait,
		poll: defaultPoll,
	}
	for _, o := range opts {
		o(s)
	}
	s.inbox.waitReplicas, s.inbox.waitTimeout = s.waitReplicas, s.waitTimeout
	if s.inbox.logger == nil {
		s.inbox.logger = s.logger // WithLogger
	}
	if s.inbox.logger == nil {
		s.inbox.logger = slog.Default()
	}
	return s.lease, s.retention, s.prefix, s.inbox
}

// WithInboxAttempts sets how many times an Inbox runs a delivery before it
// makes it a dead letter. The default is DefaultInboxAttempts (8). A Store
// ignores it. It panics if n is less than 1.
func WithInboxAttempts(n int) Option {
	if n < 1 {
		panic("redisdedup: WithInboxAttempts: n must be at least 1")
	}
	return inboxOption(func(o *inboxOptions) { o.attempts = n })
}

// WithInboxBackoff sets the wait after a failed run: min after the first,
// doubling on each failure up to max, plus a random jitter of up to a
// quarter of it (never beyond max), so that deliveries failing together
// do not all come back at once. The next run starts at least that long
// after the failed run ended (on Redis's clock). The default is 1 second
// to 5 minutes. A Store
// ignores it. It panics if min is less than a millisecond or max is less
// than min.
func WithInboxBackoff(min, max time.Duration) Option {
	if min < time.Millisecond || max < min {
		panic("redisdedup: WithInboxBackoff: need 1ms <= min <= max")
	}
	return inboxOption(func(o *inboxOptions) { o.minWait, o.maxWait = min, max })
}

// WithInboxWorkers sets how many deliveries each Run of an Inbox runs at
// once. The default is DefaultInboxWorkers (4). A Store ignores it. It
// panics if n is less than 1.
func WithInboxWorkers(n int) Option {
	if n < 1 {
		panic("redisdedup: WithInboxWorkers: n must be at least 1")
	}
	return inboxOption(func(o *inboxOptions) { o.workers = n })
}

// WithInboxLogger sets the logger of an Inbox: a dead letter is logged as
// an error, a failed run and a Redis error as a warning. The default is
// the logger of WithLogger, else slog.Default() (also for a nil l). A
// Store ignores it.
func WithInboxLogger(l *slog.Logger) Option {
	return inboxOption(func(o *inboxOptions) {
		if l != nil {
			o.logger = l
		}
	})
}

// Inbox is a convo.Inbox on Redis: deliveries kept by any replica run on
// whichever replica runs the inbox, each until one run succeeds, one at a
// time and in the order added per Key. Create it with NewInbox and start
// it with Run on every replica; it is safe for concurrent use.
//
// A run holds a lease (WithLease), renewed every third of it while the
// callback runs: a replica that dies mid-run gives its runs back when the
// lease ends, and only then can a delivery run twice. Everything lives
// under one hash tag, so that its Lua scripts work on a Cluster (in one
// slot).
type Inbox struct {
	rdb       redis.UniversalClient
	base      string // the keys' common start (keyBase)
	lease     time.Duration
	retention time.Duration
	opt       inboxOptions

	tokenBase string
	seq       atomic.Uint64

	mu       sync.RWMutex
	handlers map[convo.Provider]func(context.Context, convo.Delivery) error

	wake chan struct{} // something may have become ready
}

var _ convo.Inbox = (*Inbox)(nil)

// NewInbox returns an Inbox on rdb. Of the options, it reads WithPrefix
// (default DefaultInboxPrefix; no braces: the inbox puts the prefix in a
// hash tag of its own), WithLease (DefaultLease, 2 minutes: how long the
// runs of a replica that died wait before another replica takes them
// over; a live run renews it every third of it), WithRetention (how long
// a completed id is remembered, DefaultRetention), WithWaitReplicas (each
// write waits for that many replicas: a kept delivery, a run's lease and
// a completion survive a failover; while fewer replicas are up, every
// write waits the whole timeout), WithLogger and the WithInbox options.
// It sends nothing to Redis. It panics if rdb is nil or the
// prefix holds a brace.
func NewInbox(rdb redis.UniversalClient, opts ...Option) *Inbox {
	if rdb == nil {
		panic("redisdedup: NewInbox: nil client")
	}
	lease, retention, prefix, opt := inboxConfig(opts)
	if strings.ContainsAny(prefix, "{}") {
		panic("redisdedup: NewInbox: the prefix must not hold '{' or '}' (the inbox adds its own hash tag)")
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return &Inbox{
		rdb:       rdb,
		base:      keyBase(prefix),
		lease:     lease,
		retention: retention,
		opt:       opt,
		tokenBase: hex.EncodeToString(b[:]),
		handlers:  make(map[convo.Provider]func(context.Context, convo.Delivery) error),
		wake:      make(chan struct{}, 1),
	}
}

// eval runs script on the inbox's slot with its arguments after the key
// base (ARGV[1]); with waitReplicas, followed by WAIT on the same
// connection, so that the write is on the replicas before the caller acts
// on it (a replica that did not acknowledge it in time is logged).
func (in *Inbox) eval(ctx context.Context, script *redis.Script, args ...any) *redis.Cmd {
	cmd := in.evalOnce(ctx, script, args)
	if err := cmd.Err(); err != nil && failover(err) {
		// A Cluster's master died or moved: the client learns the new map
		// (in the background) for the next call.
		if cc, ok := in.rdb.(*redis.ClusterClient); ok {
			cc.ReloadState(ctx)
		}
	}
	return cmd
}

func (in *Inbox) evalOnce(ctx context.Context, script *redis.Script, args []any) *redis.Cmd {
	keys := []string{in.base + "ready"}
	argv := append([]any{in.base}, args...)
	if in.opt.waitReplicas == 0 {
		return script.Run(ctx, in.rdb, keys, argv...)
	}
	var node redis.Cmdable = in.rdb
	if cc, ok := in.rdb.(*redis.ClusterClient); ok {
		c, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			cmd := redis.NewCmd(ctx)
			cmd.SetErr(err)
			return cmd
		}
		node = c
	}
	for loaded := false; ; loaded = true {
		var cmd *redis.Cmd
		var wait *redis.IntCmd
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			if loaded {
				cmd = script.Eval(ctx, p, keys, argv...)
			} else {
				cmd = script.EvalSha(ctx, p, keys, argv...)
			}
			wait = redis.NewIntCmd(ctx, "wait", in.opt.waitReplicas, ms(in.opt.waitTimeout))
			return p.Process(ctx, wait)
		})
		if err := cmd.Err(); err != nil {
			if !loaded && redis.HasErrorPrefix(err, "NOSCRIPT") {
				continue
			}
			return cmd
		}
		if n, err := wait.Result(); err != nil || int(n) < in.opt.waitReplicas {
			in.opt.logger.Warn("redisdedup: inbox: a write is not on enough replicas in time; a failover now may forget it",
				"acked", n, "want", in.opt.waitReplicas, "timeout", in.opt.waitTimeout, "err", err)
		}
		return cmd
	}
}

// failover reports whether err may come from a master that died or moved:
// a network error, or a MOVED, ASK, CLUSTERDOWN, READONLY, LOADING,
// MASTERDOWN or TRYAGAIN answer.
func failover(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	for _, p := range []string{"MOVED", "ASK", "CLUSTERDOWN", "READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return strings.Contains(err.Error(), "connection refused")
}

// keyBase is the start of every key of the inbox with prefix: the prefix,
// then the prefix again as a hash tag, so that all its keys are in one
// Cluster slot, and inboxes with other prefixes in (likely) other slots.
// NewInbox refuses a prefix with a brace, which could end the tag early.
func keyBase(prefix string) string { return prefix + "{" + prefix + "}:" }

// Handle implements convo.Inbox: fn runs the deliveries of provider p.
// A delivery of a provider without a function fails its run (and is
// retried), so Handle every provider before Run.
func (in *Inbox) Handle(p convo.Provider, fn func(ctx context.Context, d convo.Delivery) error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.handlers[p] = fn
}

// HonorsDeadline reports whether Add returns by its context's deadline:
// when the client has ContextTimeoutEnabled, as for Store.HonorsDeadline.
// A handler built WithInbox then calls Add directly rather than from a
// goroutine of its own.
func (in *Inbox) HonorsDeadline() bool {
	switch c := in.rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// pid is the id of a delivery in Redis.
func pid(p convo.Provider, id string) string { return string(p) + ":" + id }

// Add implements convo.Inbox in one round trip: it keeps d, and reports
// false, changing nothing, when d's Provider and ID are kept, a dead
// letter, or completed within the retention. Once it returned nil, d is
// in Redis (durably so with appendonly). It fails for an empty ID or
// Provider.
func (in *Inbox) Add(ctx context.Context, d convo.Delivery) (bool, error) {
	if d.ID == "" || d.Provider == "" {
		return false, errors.New("redisdedup: inbox add: the delivery needs a Provider and an ID")
	}
	p := pid(d.Provider, d.ID)
	q := "u:" + p
	if d.Key != "" {
		q = "k:" + d.Key
	}
	recv := d.Received
	if recv.IsZero() {
		recv = time.Now()
	}
	res, err := in.eval(ctx, inboxAddScript, p, string(d.Provider), d.ID, q, d.Body, recv.UnixMilli()).Int64Slice()
	if err != nil {
		return false, fmt.Errorf("redisdedup: inbox add: %w", err)
	}
	if res[0] != 1 {
		return false, nil
	}
	in.signal()
	in.observeKept(ctx, d, recv, res[1], res[2])
	return true, nil
}

// signal wakes a Run of this Inbox.
func (in *Inbox) signal() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// taken is a delivery leased to a run.
type taken struct {
	d             convo.Delivery
	pid           string
	token         string
	depth, oldest int64 // the inbox's queue when it was taken
}

// Run runs kept deliveries, up to WithInboxWorkers at once, until ctx
// ends; it then cancels the contexts of its runs, waits for them, gives
// back those that did not succeed (their run counts as an attempt) and
// returns nil. Several Runs, in one process or on several replicas, share
// the deliveries. A Redis error is logged and retried.
func (in *Inbox) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	done := make(chan struct{}, in.opt.workers)
	running := 0
	errWait := in.opt.poll
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Collect the runs that ended.
		for drained := false; !drained; {
			select {
			case <-done:
				running--
			default:
				drained = true
			}
		}
		if ctx.Err() != nil {
			break
		}
		wait := in.opt.poll
		if free := in.opt.workers - running; free > 0 {
			items, next, err := in.take(ctx, free)
			switch {
			case err != nil:
				in.opt.logger.Warn("redisdedup: inbox: taking deliveries", "err", err)
				wait = errWait
				errWait = min(2*errWait, 5*time.Second)
			default:
				errWait = in.opt.poll
				for _, t := range items {
					running++
					wg.Add(1)
					go func() {
						defer wg.Done()
						in.run(ctx, t)
						done <- struct{}{}
					}()
				}
				if len(items) == free {
					wait = 0 // there may be more
				} else if next >= 0 && next < wait {
					wait = next
				}
			}
		}
		if wait == 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-in.wake:
		case <-done:
			running--
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
	wg.Wait()
	return nil
}

// take leases up to n ready deliveries, and gives how long until the next
// is ready (-1: none known).
func (in *Inbox) take(ctx context.Context, n int) ([]taken, time.Duration, error) {
	tok := in.tokenBase + ":" + strconv.FormatUint(in.seq.Add(1), 36)
	// Not cancelled with ctx: a lease made without its answer would only
	// end with the lease.
	v, err := in.eval(context.WithoutCancel(ctx), inboxTakeScript, n, ms(in.lease), tok, in.opt.attempts).Slice()
	if err != nil {
		return nil, -1, fmt.Errorf("redisdedup: inbox: %w", err)
	}
	if len(v) != 5 {
		return nil, -1, fmt.Errorf("redisdedup: inbox: unexpected answer %v", v)
	}
	depth, oldest := v[3].(int64), v[4].(int64)
	for _, e := range v[1].([]any) {
		f := e.([]any)
		p, _ := f[1].(string)
		att, _ := f[2].(int64)
		recv, _ := f[3].(string)
		d := convo.Delivery{Provider: convo.Provider(p), Attempt: int(att), Received: msTime(recv)}
		in.deadLettered(f[0].(string), d, errors.New("its last run's lease ended: the replica running it died or stopped renewing"))
		in.observeRunDone(ctx, d, convo.InboxDeadLettered, 0, 0, depth, oldest)
	}
	var items []taken
	for _, e := range v[0].([]any) {
		items = append(items, parseTaken(e.([]any), depth, oldest))
	}
	next := time.Duration(-1)
	if w, _ := v[2].(int64); w >= 0 {
		next = time.Duration(w) * time.Millisecond
	}
	return items, next, nil
}

// parseTaken reads a leased delivery as the scripts give it: {pid,
// token, attempt, provider, id, body, received ms, queue}.
func parseTaken(f []any, depth, oldest int64) taken {
	str := func(i int) string { s, _ := f[i].(string); return s }
	d := convo.Delivery{
		Provider: convo.Provider(str(3)),
		ID:       str(4),
		Body:     []byte(str(5)),
		Received: msTime(str(6)),
		Attempt:  int(i64(f[2])),
	}
	d.Key, _ = keyOf(str(7))
	return taken{d: d, pid: str(0), token: str(1), depth: depth, oldest: oldest}
}

// keyOf is the Key of a queue name.
func keyOf(q string) (string, bool) {
	if len(q) >= 2 && q[:2] == "k:" {
		return q[2:], true
	}
	return "", false
}

// msTime parses a time in milliseconds since the epoch.
func msTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// errLeaseLost cancels a run whose lease this replica no longer holds.
var errLeaseLost = errors.New("redisdedup: inbox: the run's lease was lost")

// maxChain is how many deliveries of one key a worker runs in a row (each
// leased as the one before completes) before it lets the key wait its
// turn with the others.
const maxChain = 8

// run runs t, then the next deliveries of its key that its completions
// leased, up to maxChain.
func (in *Inbox) run(ctx context.Context, t taken) {
	for i := 1; ; i++ {
		next, ok := in.runOne(ctx, t, i < maxChain)
		if !ok {
			return
		}
		t = next
	}
}

// runOne runs t with its lease renewed and ends it in Redis. When it
// completes, with chain, the next delivery of its key is leased at once
// and returned.
func (in *Inbox) runOne(ctx context.Context, t taken, chain bool) (next taken, ok bool) {
	in.mu.RLock()
	fn := in.handlers[t.d.Provider]
	in.mu.RUnlock()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runCtx = in.observeRunStart(runCtx, t.d, t.depth, t.oldest)
	stopRenew := in.renew(runCtx, t, cancel)
	start := time.Now()
	var err error
	if fn == nil {
		err = fmt.Errorf("redisdedup: inbox: no function for provider %q (Handle it before Run)", t.d.Provider)
	} else {
		err = safeCall(runCtx, fn, t.d)
	}
	took := time.Since(start)
	stopRenew()
	lost := errors.Is(context.Cause(runCtx), errLeaseLost)

	// Ending the run in Redis must not be cancelled with Run's context. It
	// is tried again through an outage or a failover (see end), for
	// longer than the lease: being fenced by the token, a late end that
	// comes before another replica took the delivery over still saves a
	// second run, and one after changes nothing.
	ectx, ecancel := context.WithTimeout(context.WithoutCancel(ctx), max(2*in.lease, endTimeout))
	defer ecancel()
	log := in.opt.logger.With("provider", string(t.d.Provider), "id", t.d.ID, "attempt", t.d.Attempt)
	if err == nil {
		chainTok := ""
		if chain && ctx.Err() == nil {
			chainTok = in.tokenBase + ":" + strconv.FormatUint(in.seq.Add(1), 36) + ":c"
		}
		res, rerr := endRun(ectx, in, (*redis.Cmd).Slice, inboxCompleteScript, t.pid, t.token, ms(in.retention), chainTok, ms(in.lease))
		switch {
		case rerr != nil:
			log.Error("redisdedup: inbox: completing a delivery: it runs again after the lease", "err", rerr)
		case len(res) != 4:
			log.Error("redisdedup: inbox: completing a delivery: unexpected answer", "answer", res)
		case i64(res[0]) < 0:
			log.Warn("redisdedup: inbox: a delivery completed after its lease was lost: another run may have run it too")
		default:
			depth, oldest := i64(res[1]), i64(res[2])
			in.observeRunDone(runCtx, t.d, convo.InboxCompleted, took, 0, depth, oldest)
			if nx, _ := res[3].([]any); len(nx) == 8 {
				return parseTaken(nx, depth, oldest), true
			}
			in.signal()
		}
		return taken{}, false
	}
	permanent := errors.Is(err, convo.ErrPermanent)
	interrupted := ctx.Err() != nil && !permanent
	wait := time.Duration(0)
	if !interrupted {
		wait = in.backoff(t.d.Attempt)
	}
	res, rerr := endRun(ectx, in, (*redis.Cmd).Int64Slice, inboxFailScript, t.pid, t.token, ms(wait), in.opt.attempts, b2i(permanent))
	switch {
	case rerr != nil:
		log.Error("redisdedup: inbox: giving back a failed delivery: it runs again after the lease", "err", rerr, "run_err", err)
	case res[0] < 0:
		if !lost {
			log.Warn("redisdedup: inbox: a run ended after its lease was lost", "err", err)
		}
	case res[0] == 2:
		in.signal()
		in.deadLettered(t.pid, t.d, err)
		in.observeRunDone(runCtx, t.d, convo.InboxDeadLettered, took, 0, res[1], res[2])
	case interrupted:
		in.signal()
		log.Info("redisdedup: inbox: run interrupted, delivery given back", "err", err)
		in.observeRunDone(runCtx, t.d, convo.InboxInterrupted, took, 0, res[1], res[2])
	default:
		log.Warn("redisdedup: inbox: run failed, retrying", "err", err, "retry_in", wait)
		in.observeRunDone(runCtx, t.d, convo.InboxRetried, took, wait, res[1], res[2])
	}
	return taken{}, false
}

// endRun runs script, which ends a run fenced by its token, until it
// answers or ctx ends, and reads its answer with read: Redis may be
// restarting, and the run's outcome is worth keeping (a completed run lost
// would run again). A retried script that had taken effect before its
// answer was lost answers -1.
func endRun[T any](ctx context.Context, in *Inbox, read func(*redis.Cmd) (T, error), script *redis.Script, pid, token string, args ...any) (T, error) {
	argv := append([]any{pid, token}, args...)
	wait := 20 * time.Millisecond
	for {
		res, err := read(in.eval(ctx, script, argv...))
		if err == nil {
			return res, nil
		}
		select {
		case <-ctx.Done():
			var zero T
			return zero, err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// i64 is v as an int64 (0 when it is not one).
func i64(v any) int64 { n, _ := v.(int64); return n }

// deadLettered logs a dead letter as an error.
func (in *Inbox) deadLettered(pid string, d convo.Delivery, err error) {
	in.opt.logger.Error("redisdedup: inbox: dead letter (list and replay it with DeadLetters and Replay)",
		"provider", string(d.Provider), "pid", pid, "attempt", d.Attempt, "received", d.Received, "err", err)
}

// safeCall calls fn, turning a panic into an error.
func safeCall(ctx context.Context, fn func(context.Context, convo.Delivery) error, d convo.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("redisdedup: inbox: the callback panicked: %v", r)
		}
	}()
	return fn(ctx, d)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// backoff is the wait after the failed run attempt (1 for the first):
// minWait doubled attempt-1 times, at most maxWait, plus up to a quarter
// of it, at most maxWait (as convo.MemoryInbox).
func (in *Inbox) backoff(attempt int) time.Duration {
	d := in.opt.minWait
	for i := 1; i < attempt && d < in.opt.maxWait; i++ {
		d *= 2
	}
	d = min(d, in.opt.maxWait)
	if j := int64(d / 4); j > 0 {
		d += time.Duration(mathrand.Int64N(j + 1))
	}
	return min(d, in.opt.maxWait)
}

// renew renews t's lease every third of it until the returned function is
// called. When the lease is lost (another replica took the delivery over)
// or could not be renewed for a whole lease, it cancels the run with
// errLeaseLost.
func (in *Inbox) renew(ctx context.Context, t taken, cancel context.CancelCauseFunc) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(max(in.lease/3, time.Millisecond))
		defer tick.Stop()
		held := time.Now() // the lease was taken at most now
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			at := time.Now()
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), in.lease/3)
			n, err := in.eval(rctx, inboxRenewScript, t.pid, t.token, ms(in.lease)).Int64()
			rcancel()
			switch {
			case err == nil && n == 1:
				held = at
			case err == nil:
				in.opt.logger.Warn("redisdedup: inbox: lease lost: the run is cancelled", "provider", string(t.d.Provider), "id", t.d.ID)
				cancel(errLeaseLost)
				return
			case time.Since(held) >= in.lease:
				in.opt.logger.Warn("redisdedup: inbox: could not renew the lease: the run is cancelled", "err", err)
				cancel(errLeaseLost)
				return
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// DeadLetters lists the dead letters, the oldest first, with their Attempt
// (the runs they had). A Redis error ends the list with it.
func (in *Inbox) DeadLetters(ctx context.Context) iter.Seq2[convo.Delivery, error] {
	return func(yield func(convo.Delivery, error) bool) {
		const page = 100
		for off := int64(0); ; off += page {
			pids, err := in.rdb.ZRange(ctx, in.base+"dead", off, off+page-1).Result()
			if err != nil {
				yield(convo.Delivery{}, fmt.Errorf("redisdedup: inbox: dead letters: %w", err))
				return
			}
			pipe := in.rdb.Pipeline()
			cmds := make([]*redis.SliceCmd, len(pids))
			for i, p := range pids {
				cmds[i] = pipe.HMGet(ctx, in.base+"d:"+p, "p", "id", "q", "body", "recv", "att", "st")
			}
			if len(pids) > 0 {
				if _, err := pipe.Exec(ctx); err != nil {
					yield(convo.Delivery{}, fmt.Errorf("redisdedup: inbox: dead letters: %w", err))
					return
				}
			}
			for _, c := range cmds {
				f := c.Val()
				str := func(i int) string { s, _ := f[i].(string); return s }
				if str(6) != "dead" {
					continue // replayed meanwhile
				}
				att, _ := strconv.Atoi(str(5))
				d := convo.Delivery{
					Provider: convo.Provider(str(0)), ID: str(1), Body: []byte(str(3)),
					Received: msTime(str(4)), Attempt: att,
				}
				d.Key, _ = keyOf(str(2))
				if !yield(d, nil) {
					return
				}
			}
			if len(pids) < page {
				return
			}
		}
	}
}

// Replay makes the dead letter of provider p and id run once more, before
// the later deliveries of its Key, its Attempt continuing; failing again,
// it is a dead letter again at once. It returns an error wrapping
// ErrNotDeadLetter when there is no such dead letter.
func (in *Inbox) Replay(ctx context.Context, p convo.Provider, id string) error {
	n, err := in.eval(ctx, inboxReplayScript, pid(p, id)).Int64()
	if err != nil {
		return fmt.Errorf("redisdedup: inbox: replay: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("redisdedup: inbox: replay %s %q: %w", p, id, ErrNotDeadLetter)
	}
	in.signal()
	return nil
}
