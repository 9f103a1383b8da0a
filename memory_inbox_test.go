package convo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of memory_inbox.go: the in-process inbox.

// inboxFakeClock is an inboxClock whose time moves only with Advance.
type inboxFakeClock struct {
	mu         sync.Mutex
	now        time.Time
	timers     []*fakeTimer
	registered int           // After calls so far
	changed    chan struct{} // closed and replaced on each After
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
}

func newInboxFakeClock() *inboxFakeClock {
	return &inboxFakeClock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

func (c *inboxFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *inboxFakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.registered++
	close(c.changed)
	c.changed = make(chan struct{})
	return t.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.stopped = true
	}
}

// Advance moves the time by d and fires the timers due.
func (c *inboxFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	live := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.c <- c.now
		default:
			live = append(live, t)
		}
	}
	c.timers = live
}

// awaitTimer waits until After has been called more than n times in all
// and a timer is live, and gives the earliest live timer's time and the
// count of After calls.
func (c *inboxFakeClock) awaitTimer(t *testing.T, n int) (time.Time, int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		var first time.Time
		for _, tm := range c.timers {
			if !tm.stopped && (first.IsZero() || tm.at.Before(first)) {
				first = tm.at
			}
		}
		reg, changed := c.registered, c.changed
		c.mu.Unlock()
		if reg > n && !first.IsZero() {
			return first, reg
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("no worker waits on the clock after 10 s")
		}
	}
}

// startRun runs in until the test ends (or stop is called) and fails the
// test if Run returns an error.
func startRun(t *testing.T, in *MemoryInbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10 s of its context's end")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// await waits for ch, failing the test after 10 s.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing after 10 s", what)
		panic("unreachable")
	}
}

func delivery1(id, key string) Delivery {
	return Delivery{Provider: ProviderSelarti, ID: id, Key: key, Body: []byte(`{"message_id":"` + id + `"}`)}
}

func addAll(t *testing.T, in *MemoryInbox, ds ...Delivery) {
	t.Helper()
	for _, d := range ds {
		added, err := in.Add(context.Background(), d)
		require.NoError(t, err)
		require.True(t, added, d.ID)
	}
}

// 1,000 deliveries over three Runs sharing the inbox: each runs exactly
// once, and every worker of every Run takes part.
func TestMemoryInboxRunsEachOnceAcrossRuns(t *testing.T) {
	const n, runs, workers = 1000, 3, 4
	in := NewMemoryInbox(WithInboxWorkers(workers))
	type runKey struct{}
	var mu sync.Mutex
	count := map[string]int{}
	byRun := map[int]int{}
	arrived := 0
	gate := make(chan struct{})
	done := make(chan struct{})
	in.Handle(ProviderSelarti, func(ctx context.Context, d Delivery) error {
		mu.Lock()
		count[d.ID]++
		byRun[ctx.Value(runKey{}).(int)]++
		arrived++
		if arrived == runs*workers {
			close(gate) // all twelve workers are in a run at once
		}
		if arrived == n {
			close(done)
		}
		mu.Unlock()
		<-gate
		return nil
	})
	for i := range n {
		addAll(t, in, delivery1(fmt.Sprintf("m%04d", i), fmt.Sprintf("chat%02d", i%100)))
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, in.Run(context.WithValue(ctx, runKey{}, r)))
		}()
	}
	await(t, done, "1,000 runs")
	cancel()
	wg.Wait()

	assert.Len(t, count, n)
	for id, c := range count {
		if c != 1 {
			t.Errorf("%s ran %d times", id, c)
		}
	}
	for r := range runs {
		assert.GreaterOrEqual(t, byRun[r], workers, "run %d", r)
	}
	// Completed ids are remembered: a redelivery is a duplicate.
	added, err := in.Add(context.Background(), delivery1("m0500", "chat00"))
	require.NoError(t, err)
	assert.False(t, added)
}

// A Run ended while its callback is blocked cancels the callback's
// context, waits for it, and gives the delivery back at once: another Run
// runs it, as attempt 2.
func TestMemoryInboxRunEndedGivesBack(t *testing.T) {
	clock := newInboxFakeClock()
	var events []InboxRunResult
	var mu sync.Mutex
	in := NewMemoryInbox(WithInboxWorkers(1), withInboxClock(clock), WithInboxObserver(Observer{
		InboxRunDone: func(_ context.Context, r InboxRunResult) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, r)
		},
	}))
	started := make(chan Delivery, 2)
	in.Handle(ProviderSelarti, func(ctx context.Context, d Delivery) error {
		started <- d
		if d.Attempt == 1 {
			<-ctx.Done() // blocked until its Run ends
			return ctx.Err()
		}
		return nil
	})
	addAll(t, in, delivery1("m1", "chat"), delivery1("m2", "chat"))
	stopA := startRun(t, in)
	first := await(t, started, "the first run")
	assert.Equal(t, "m1", first.ID)
	assert.Equal(t, 1, first.Attempt)
	stopA() // returns once the callback has returned

	mu.Lock()
	require.Len(t, events, 1)
	assert.Equal(t, InboxInterrupted, events[0].Outcome)
	mu.Unlock()
	startRun(t, in) // no time passes on the clock: given back at once
	again := await(t, started, "the run given back")
	assert.Equal(t, "m1", again.ID, "m1 still holds its key")
	assert.Equal(t, 2, again.Attempt, "the interrupted run counted")
	next := await(t, started, "the next of the key")
	assert.Equal(t, "m2", next.ID)
	assert.Equal(t, 1, next.Attempt)
}

// Deliveries of one key run one at a time in the order added, through
// failures and backoffs; different keys run in parallel.
func TestMemoryInboxOrderPerKey(t *testing.T) {
	const keys, per = 8, 40
	in := NewMemoryInbox(WithInboxWorkers(4), WithInboxBackoff(time.Millisecond, 2*time.Millisecond))
	var mu sync.Mutex
	running := map[string]int{}
	completed := map[string][]int{}
	failed := map[string]bool{}
	total := 0
	done := make(chan struct{})
	// The first delivery of key k0 waits until the first of k1 runs:
	// were keys not run in parallel, it would wait forever.
	k1started := make(chan struct{})
	in.Handle(ProviderSelarti, func(ctx context.Context, d Delivery) error {
		mu.Lock()
		running[d.Key]++
		if running[d.Key] > 1 {
			t.Errorf("two runs of key %s at once", d.Key)
		}
		mu.Unlock()
		var seq int
		fmt.Sscanf(d.ID[len(d.Key)+1:], "%d", &seq)
		if d.Key == "k1" && seq == 0 {
			close(k1started)
		}
		if d.Key == "k0" && seq == 0 {
			select {
			case <-k1started:
			case <-time.After(10 * time.Second):
				t.Error("keys k0 and k1 did not run in parallel")
			}
		}
		mu.Lock()
		defer mu.Unlock()
		running[d.Key]--
		if seq%7 == 3 && !failed[d.ID] { // every 7th fails once
			failed[d.ID] = true
			return errors.New("talkjs: 503")
		}
		completed[d.Key] = append(completed[d.Key], seq)
		total++
		if total == keys*per {
			close(done)
		}
		return nil
	})
	for i := range per {
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			addAll(t, in, delivery1(fmt.Sprintf("%s-%d", key, i), key))
		}
	}
	startRun(t, in)
	await(t, done, "all deliveries completed")
	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		want := make([]int, per)
		for i := range want {
			want[i] = i
		}
		assert.Equal(t, want, completed[key], key)
	}
}

// The backoff: the next run starts at least min after the failed run
// ended, doubling, with jitter only upwards; a wake-up before then does
// not run it.
func TestMemoryInboxBackoffTiming(t *testing.T) {
	clock := newInboxFakeClock()
	in := NewMemoryInbox(WithInboxWorkers(1), WithInboxAttempts(4), WithInboxBackoff(10*time.Second, 30*time.Second), withInboxClock(clock))
	type run struct {
		at      time.Time
		attempt int
	}
	runs := make(chan run, 8)
	fn := func(ctx context.Context, d Delivery) error {
		runs <- run{clock.Now(), d.Attempt}
		return errors.New("down")
	}
	in.Handle(ProviderSelarti, fn)
	addAll(t, in, delivery1("m1", "chat"))
	startRun(t, in)
	r1 := await(t, runs, "run 1")
	assert.Equal(t, 1, r1.attempt)

	due, reg := clock.awaitTimer(t, 0)
	wait := due.Sub(r1.at)
	assert.True(t, wait >= 10*time.Second && wait <= 12500*time.Millisecond, "after the first failure: %v", wait)
	// A wake-up before it is due (here: Handle) does not run it: the
	// worker waits again, for what is left.
	clock.Advance(wait - time.Millisecond)
	in.Handle(ProviderSelarti, fn)
	due2, _ := clock.awaitTimer(t, reg)
	assert.Equal(t, due, due2)
	assert.Len(t, runs, 0)
	clock.Advance(time.Millisecond)
	r2 := await(t, runs, "run 2")
	assert.Equal(t, 2, r2.attempt)
	assert.Equal(t, due, r2.at)

	due, _ = clock.awaitTimer(t, 0)
	wait = due.Sub(r2.at)
	assert.True(t, wait >= 20*time.Second && wait <= 25*time.Second, "doubled: %v", wait)
	clock.Advance(wait)
	r3 := await(t, runs, "run 3")
	assert.Equal(t, 3, r3.attempt)

	due, _ = clock.awaitTimer(t, 0)
	assert.Equal(t, 30*time.Second, due.Sub(r3.at), "at most max, jitter included")
	clock.Advance(30 * time.Second)
	r4 := await(t, runs, "run 4")
	assert.Equal(t, 4, r4.attempt)
	require.Eventually(t, func() bool { return len(deadLetters(t, in)) == 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 4, deadLetters(t, in)[0].Attempt, "the last attempt made it a dead letter")
}

func deadLetters(t *testing.T, in *MemoryInbox) []Delivery {
	t.Helper()
	var out []Delivery
	for d, err := range in.DeadLetters(context.Background()) {
		require.NoError(t, err)
		out = append(out, d)
	}
	return out
}

// A failing delivery holds its key while in backoff; as a dead letter it
// releases it. ErrPermanent dead-letters at once. Replay runs a dead
// letter once more, Attempt continuing, and a failure makes it a dead
// letter again at once.
func TestMemoryInboxDeadLettersAndReplay(t *testing.T) {
	clock := newInboxFakeClock()
	in := NewMemoryInbox(WithInboxWorkers(2), WithInboxAttempts(2), WithInboxBackoff(time.Minute, time.Minute), withInboxClock(clock))
	type run struct {
		id      string
		attempt int
	}
	runs := make(chan run, 16)
	var mu sync.Mutex
	fail := map[string]error{"m1": errors.New("down"), "p1": fmt.Errorf("bad: %w", ErrPermanent)}
	in.Handle(ProviderSelarti, func(ctx context.Context, d Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		got, ok := DeliveryFromContext(ctx)
		assert.False(t, ok, "a bare Handle function gets no delivery in its context: %v", got)
		runs <- run{d.ID, d.Attempt}
		return fail[d.ID]
	})
	addAll(t, in, delivery1("m1", "chat"), delivery1("m2", "chat"), delivery1("p1", "other"))
	startRun(t, in)
	got := []run{await(t, runs, "run"), await(t, runs, "run")}
	assert.ElementsMatch(t, []run{{"m1", 1}, {"p1", 1}}, got, "m2 waits behind m1")
	clock.awaitTimer(t, 0) // m1 in backoff
	require.Eventually(t, func() bool { return len(deadLetters(t, in)) == 1 }, 10*time.Second, time.Millisecond)
	dl := deadLetters(t, in)
	require.Len(t, dl, 1)
	assert.Equal(t, "p1", dl[0].ID)
	assert.Equal(t, 1, dl[0].Attempt, "ErrPermanent: no second run")
	assert.Len(t, runs, 0, "m2 is held while m1 is in backoff")

	clock.Advance(time.Minute)
	assert.Equal(t, run{"m1", 2}, await(t, runs, "m1 again"))
	assert.Equal(t, run{"m2", 1}, await(t, runs, "m2, once m1 is a dead letter"))
	require.Eventually(t, func() bool { return len(deadLetters(t, in)) == 2 }, 10*time.Second, time.Millisecond)
	dl = deadLetters(t, in)
	assert.Equal(t, []string{"p1", "m1"}, []string{dl[0].ID, dl[1].ID}, "oldest first")
	assert.Equal(t, 2, dl[1].Attempt)

	// A dead letter is still kept: its redelivery is a duplicate.
	added, err := in.Add(context.Background(), delivery1("m1", "chat"))
	require.NoError(t, err)
	assert.False(t, added)

	// Replay, failing again: a dead letter again at once, no backoff.
	require.NoError(t, in.Replay(context.Background(), ProviderSelarti, "m1"))
	assert.Equal(t, run{"m1", 3}, await(t, runs, "the replay"))
	require.Eventually(t, func() bool { return len(deadLetters(t, in)) == 2 }, 10*time.Second, time.Millisecond)
	dl = deadLetters(t, in)
	assert.Equal(t, "m1", dl[1].ID)
	assert.Equal(t, 3, dl[1].Attempt)

	// Replay, succeeding: completed, and no longer a dead letter.
	mu.Lock()
	delete(fail, "m1")
	mu.Unlock()
	require.NoError(t, in.Replay(context.Background(), ProviderSelarti, "m1"))
	assert.Equal(t, run{"m1", 4}, await(t, runs, "the second replay"))
	require.Eventually(t, func() bool { return len(deadLetters(t, in)) == 1 }, 10*time.Second, time.Millisecond)

	for _, id := range []string{"m1", "m2", "nope"} {
		err := in.Replay(context.Background(), ProviderSelarti, id)
		require.ErrorIs(t, err, ErrNotDeadLetter, id)
		assert.Equal(t, `convo: inbox: not a dead letter: selarti "`+id+`"`, err.Error())
	}
	err = in.Replay(context.Background(), ProviderTalkJS, "p1")
	assert.ErrorIs(t, err, ErrNotDeadLetter, "another provider's id")
	assert.Len(t, runs, 0)
}

// Duplicates before, during and after a run are not kept, and the
// delivery runs once.
func TestMemoryInboxDuplicates(t *testing.T) {
	in := NewMemoryInbox(WithInboxWorkers(1))
	var mu sync.Mutex
	calls := 0
	running := make(chan struct{})
	release := make(chan struct{})
	completed := make(chan struct{})
	in.Handle(ProviderSelarti, func(ctx context.Context, d Delivery) error {
		mu.Lock()
		calls++
		mu.Unlock()
		close(running)
		<-release
		return nil
	})
	in.Handle(ProviderTalkJS, func(ctx context.Context, d Delivery) error {
		close(completed)
		return nil
	})
	add := func(d Delivery) bool {
		added, err := in.Add(context.Background(), d)
		require.NoError(t, err)
		return added
	}
	assert.True(t, add(delivery1("m1", "c")))
	assert.False(t, add(delivery1("m1", "c")), "before the run")
	assert.False(t, add(delivery1("m1", "other key")), "the id decides")
	assert.True(t, add(Delivery{Provider: ProviderTalkJS, ID: "m1"}), "another provider's id")
	startRun(t, in)
	await(t, running, "the run")
	assert.False(t, add(delivery1("m1", "c")), "during the run")
	close(release)
	await(t, completed, "the next run") // one worker: m1 completed before
	assert.False(t, add(delivery1("m1", "c")), "after the run")
	mu.Lock()
	assert.Equal(t, 1, calls)
	mu.Unlock()

	_, err := in.Add(context.Background(), Delivery{Provider: ProviderSelarti})
	assert.EqualError(t, err, "convo: MemoryInbox.Add: a delivery needs a Provider and an ID")
}

// The memory is bounded: completed ids up to the capacity, the oldest
// forgotten first; deliveries kept and not completed up to the capacity,
// Add failing beyond; dead letters up to the capacity.
func TestMemoryInboxCapacity(t *testing.T) {
	in := NewMemoryInbox(WithInboxCapacity(3), WithInboxAttempts(1), WithInboxWorkers(1)) // one worker: completed in the order added
	addAll(t, in, delivery1("a", ""), delivery1("b", ""), delivery1("c", ""))
	_, err := in.Add(context.Background(), delivery1("d", ""))
	require.ErrorIs(t, err, errInboxFull)
	assert.EqualError(t, err, "convo: memory inbox full: 3 deliveries kept and not completed")

	done := make(chan string, 8)
	in.Handle(ProviderSelarti, func(ctx context.Context, d Delivery) error {
		done <- d.ID
		if d.ID[0] == 'x' {
			return errors.New("down")
		}
		return nil
	})
	startRun(t, in)
	for range 3 {
		await(t, done, "a run")
	}
	require.Eventually(t, func() bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.live == 0
	}, 10*time.Second, time.Millisecond)
	addAll(t, in, delivery1("d", ""))
	await(t, done, "d")
	// d completed: a, the oldest of a b c d, is forgotten.
	require.Eventually(t, func() bool {
		added, err := in.Add(context.Background(), delivery1("a", ""))
		require.NoError(t, err)
		return added
	}, 10*time.Second, time.Millisecond)
	await(t, done, "a again")
	added, err := in.Add(context.Background(), delivery1("c", ""))
	require.NoError(t, err)
	assert.False(t, added, "c is still remembered")

	// Four dead letters: the oldest is dropped, and stays a duplicate.
	for _, id := range []string{"x1", "x2", "x3", "x4"} {
		addAll(t, in, delivery1(id, ""))
		await(t, done, id)
		require.Eventually(t, func() bool {
			dl := deadLetters(t, in)
			return len(dl) > 0 && dl[len(dl)-1].ID == id
		}, 10*time.Second, time.Millisecond)
	}
	var ids []string
	for _, d := range deadLetters(t, in) {
		ids = append(ids, d.ID)
	}
	assert.Equal(t, []string{"x2", "x3", "x4"}, ids)
	added, err = in.Add(context.Background(), delivery1("x1", ""))
	require.NoError(t, err)
	assert.False(t, added)
}

// The observer sees each delivery kept, each run started and how it
// ended, with the queue's depth and its oldest delivery.
func TestMemoryInboxObserver(t *testing.T) {
	clock := newInboxFakeClock()
	type event struct {
		kind     string
		attempt  int
		outcome  InboxOutcome
		depth    int
		oldest   time.Time
		received time.Time
	}
	events := make(chan event, 16)
	type spanKey struct{}
	in := NewMemoryInbox(WithInboxWorkers(1), WithInboxAttempts(2), WithInboxBackoff(time.Second, time.Second), withInboxClock(clock),
		WithInboxObserver(Observer{
			InboxKept: func(ctx context.Context, k InboxInfo) {
				events <- event{kind: "kept", attempt: k.Attempt, depth: k.Depth, oldest: k.Oldest, received: k.Received}
			},
			InboxRunStart: func(ctx context.Context, r InboxInfo) context.Context {
				events <- event{kind: "start", attempt: r.Attempt, depth: r.Depth, oldest: r.Oldest, received: r.Received}
				return context.WithValue(ctx, spanKey{}, r.Attempt)
			},
			InboxRunDone: func(ctx context.Context, r InboxRunResult) {
				assert.Equal(t, r.Attempt, ctx.Value(spanKey{}), "the context InboxRunStart returned")
				if r.Outcome == InboxRetried {
					assert.Equal(t, time.Second, r.Retry)
				}
				events <- event{kind: "done", attempt: r.Attempt, outcome: r.Outcome, depth: r.Depth, oldest: r.Oldest, received: r.Received}
			},
		}))
	in.Handle(ProviderSelarti, func(ctx context.Context, d Delivery) error {
		assert.Equal(t, d.Attempt, ctx.Value(spanKey{}), "the callback runs in the observer's context")
		if d.ID == "m1" {
			return errors.New("down")
		}
		return nil
	})
	t0 := clock.Now()
	addAll(t, in, delivery1("m1", "chat"))
	clock.Advance(time.Second)
	addAll(t, in, delivery1("m2", "chat"))
	assert.Equal(t, event{kind: "kept", depth: 1, oldest: t0, received: t0}, <-events)
	assert.Equal(t, event{kind: "kept", depth: 2, oldest: t0, received: t0.Add(time.Second)}, <-events)
	startRun(t, in)
	assert.Equal(t, event{kind: "start", attempt: 1, depth: 2, oldest: t0, received: t0}, await(t, events, "start"))
	assert.Equal(t, event{kind: "done", attempt: 1, outcome: InboxRetried, depth: 2, oldest: t0, received: t0}, await(t, events, "done"))
	clock.awaitTimer(t, 0)
	clock.Advance(time.Second)
	assert.Equal(t, event{kind: "start", attempt: 2, depth: 2, oldest: t0, received: t0}, await(t, events, "start"))
	assert.Equal(t, event{kind: "done", attempt: 2, outcome: InboxDeadLettered, depth: 1, oldest: t0.Add(time.Second), received: t0}, await(t, events, "done"))
	assert.Equal(t, event{kind: "start", attempt: 1, depth: 1, oldest: t0.Add(time.Second), received: t0.Add(time.Second)}, await(t, events, "start"))
	assert.Equal(t, event{kind: "done", attempt: 1, outcome: InboxCompleted, depth: 0, received: t0.Add(time.Second)}, await(t, events, "done"))
}

// A panicking run is a failed run; the inbox goes on.
func TestMemoryInboxRecoversPanics(t *testing.T) {
	var logs logBuffer
	in := NewMemoryInbox(WithInboxAttempts(1), WithInboxLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	done := make(chan string, 2)
	in.Handle(ProviderSelarti, func(ctx context.Context, d Delivery) error {
		done <- d.ID
		if d.ID == "boom" {
			panic("boom")
		}
		return nil
	})
	addAll(t, in, delivery1("boom", "chat"), delivery1("next", "chat"))
	startRun(t, in)
	assert.Equal(t, "boom", await(t, done, "boom"))
	assert.Equal(t, "next", await(t, done, "next"))
	require.Eventually(t, func() bool { return len(deadLetters(t, in)) == 1 }, 10*time.Second, time.Millisecond)
	// The dead letter is logged once the inbox's lock is released.
	const dead = `level=ERROR msg="convo: inbox run failed, dead letter" provider=selarti id=boom attempt=1 error="panic: boom"`
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), dead) }, 10*time.Second, time.Millisecond, "%s", &logs)
	assert.Contains(t, logs.String(), `msg="convo: inbox run panicked" provider=selarti id=boom panic=boom`)
}

func TestMemoryInboxOptionPanics(t *testing.T) {
	assert.PanicsWithValue(t, "convo: WithInboxAttempts: n must be at least 1", func() { WithInboxAttempts(0) })
	assert.PanicsWithValue(t, "convo: WithInboxWorkers: n must be at least 1", func() { WithInboxWorkers(0) })
	assert.PanicsWithValue(t, "convo: WithInboxCapacity: n must be at least 1", func() { WithInboxCapacity(0) })
	assert.PanicsWithValue(t, "convo: WithInboxBackoff: want 0 < min <= max", func() { WithInboxBackoff(0, time.Second) })
	assert.PanicsWithValue(t, "convo: WithInboxBackoff: want 0 < min <= max", func() { WithInboxBackoff(2*time.Second, time.Second) })
}
