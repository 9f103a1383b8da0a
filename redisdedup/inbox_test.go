package redisdedup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quietLog drops the inbox's logs (the tests make it fail on purpose).
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// newTestInbox is an Inbox on rdb under prefix with short backoffs and a
// short poll, so that the tests run in milliseconds.
func newTestInbox(rdb redis.UniversalClient, prefix string, opts ...Option) *Inbox {
	in := NewInbox(rdb, append([]Option{
		WithPrefix(prefix), WithInboxBackoff(5*time.Millisecond, 20*time.Millisecond), WithInboxLogger(quietLog),
	}, opts...)...)
	in.opt.poll = 10 * time.Millisecond
	return in
}

// startRun runs in until the returned stop is called (or t ends); stop
// waits for Run to return and checks it returned nil.
func startRun(t *testing.T, in *Inbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- in.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-ended:
				assert.NoError(t, err, "Run")
			case <-time.After(30 * time.Second):
				t.Error("Run did not return 30s after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually waits until cond holds, failing t with what after 60 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not so after 60s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder counts the runs of a callback, per id and per replica, and
// the order in which each Key's deliveries completed.
type recorder struct {
	mu        sync.Mutex
	runs      map[string]int      // id -> runs started
	completed map[string]int      // id -> runs that returned nil
	byReplica map[string]int      // replica -> runs
	order     map[string][]string // key -> ids in the order they completed
	running   map[string]string   // key -> id running now
	overlap   []string            // keys that had two runs at once
	attempts  map[string][]int    // id -> Attempt of each run
}

func newRecorder() *recorder {
	return &recorder{
		runs: map[string]int{}, completed: map[string]int{}, byReplica: map[string]int{},
		order: map[string][]string{}, running: map[string]string{}, attempts: map[string][]int{},
	}
}

// handler is a callback for replica that records its runs and returns
// what fail says (nil: success).
func (r *recorder) handler(replica string, fail func(d convo.Delivery) error) func(context.Context, convo.Delivery) error {
	return func(ctx context.Context, d convo.Delivery) error {
		r.mu.Lock()
		r.runs[d.ID]++
		r.byReplica[replica]++
		r.attempts[d.ID] = append(r.attempts[d.ID], d.Attempt)
		if d.Key != "" {
			if other, busy := r.running[d.Key]; busy {
				r.overlap = append(r.overlap, d.Key+": "+other+" and "+d.ID)
			}
			r.running[d.Key] = d.ID
		}
		r.mu.Unlock()
		var err error
		if fail != nil {
			err = fail(d)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if d.Key != "" {
			delete(r.running, d.Key)
		}
		if err == nil {
			r.completed[d.ID]++
			r.order[d.Key] = append(r.order[d.Key], d.ID)
		}
		return err
	}
}

func (r *recorder) completedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.completed)
}

func (r *recorder) runsOf(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id]
}

func delivery(id, key string) convo.Delivery {
	return convo.Delivery{Provider: convo.ProviderSelarti, ID: id, Key: key, Body: []byte(`{"message_id":"` + id + `"}`), Received: time.Now()}
}

// pending reads the inbox's count of kept deliveries not done nor dead.
func pending(t *testing.T, in *Inbox) int64 {
	n, err := in.rdb.ZCard(context.Background(), in.base+"pending").Result()
	require.NoError(t, err)
	return n
}

// TestInboxTwoReplicas: two replicas, each its own client and Inbox on one
// Redis, run 1,000 deliveries over 50 keys: each id completes exactly
// once, both replicas work, and each key's deliveries complete in the
// order added, never two at once.
func TestInboxTwoReplicas(t *testing.T) {
	prefix := testPrefix(t)
	rec := newRecorder()
	var ins []*Inbox
	for _, name := range []string{"a", "b"} {
		in := newTestInbox(sharedClient(t), prefix)
		in.Handle(convo.ProviderSelarti, rec.handler(name, nil))
		ins = append(ins, in)
	}
	const n, keys = 1000, 50
	want := map[string][]string{}
	ctx := context.Background()
	// Half added before the replicas run, half while they run, through
	// either replica.
	for i := range n {
		if i == n/2 {
			startRun(t, ins[0])
			startRun(t, ins[1])
		}
		id, key := "m"+strconv.Itoa(i), "chat"+strconv.Itoa(i%keys)
		added, err := ins[i%2].Add(ctx, delivery(id, key))
		require.NoError(t, err)
		require.True(t, added, id)
		want[key] = append(want[key], id)
	}
	eventually(t, "1,000 completed", func() bool { return rec.completedCount() == n })
	eventually(t, "nothing pending", func() bool { return pending(t, ins[0]) == 0 })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, c := range rec.runs {
		assert.Equal(t, 1, c, "runs of %s", id)
	}
	assert.Len(t, rec.runs, n)
	assert.Positive(t, rec.byReplica["a"], "replica a ran none")
	assert.Positive(t, rec.byReplica["b"], "replica b ran none")
	assert.Equal(t, n, rec.byReplica["a"]+rec.byReplica["b"])
	assert.Empty(t, rec.overlap, "a key ran two deliveries at once")
	assert.Equal(t, want, rec.order, "the order per key")
}

// TestInboxOrderPerKey: under 4 workers, with some runs failing (a
// delivery in backoff holds its key) and one dead letter (which releases
// it), each key's deliveries run one at a time in the order added, and
// keys run in parallel.
func TestInboxOrderPerKey(t *testing.T) {
	prefix := testPrefix(t)
	rec := newRecorder()
	in := newTestInbox(sharedClient(t), prefix, WithInboxWorkers(4), WithInboxAttempts(3))
	var parallel, maxParallel atomic.Int32
	in.Handle(convo.ProviderSelarti, rec.handler("a", func(d convo.Delivery) error {
		n := parallel.Add(1)
		defer parallel.Add(-1)
		for m := maxParallel.Load(); n > m && !maxParallel.CompareAndSwap(m, n); m = maxParallel.Load() {
		}
		time.Sleep(time.Millisecond) // some work, so that runs overlap
		switch {
		case d.ID == "k3-5":
			return errors.New("always fails") // becomes a dead letter
		case d.Attempt == 1 && len(d.ID)%3 == 0:
			return errors.New("fails once")
		}
		return nil
	}))
	const keys, per = 8, 25
	want := map[string][]string{}
	for i := range per {
		for k := range keys {
			id, key := fmt.Sprintf("k%d-%d", k, i), "chat"+strconv.Itoa(k)
			_, err := in.Add(context.Background(), delivery(id, key))
			require.NoError(t, err)
			if id != "k3-5" {
				want[key] = append(want[key], id)
			}
		}
	}
	startRun(t, in)
	eventually(t, "all but the dead letter completed", func() bool { return rec.completedCount() == keys*per-1 })
	eventually(t, "nothing pending", func() bool { return pending(t, in) == 0 })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Empty(t, rec.overlap)
	assert.Equal(t, want, rec.order)
	assert.Equal(t, []int{1, 2, 3}, rec.attempts["k3-5"])
	assert.Greater(t, maxParallel.Load(), int32(1), "keys never ran in parallel")
	assert.LessOrEqual(t, maxParallel.Load(), int32(4), "more runs at once than workers")
}

// TestInboxDuplicates: a delivery added again before, during and after
// its run is not kept again, and runs once.
func TestInboxDuplicates(t *testing.T) {
	ctx := context.Background()
	in := newTestInbox(sharedClient(t), testPrefix(t))
	rec := newRecorder()
	entered, release := make(chan struct{}), make(chan struct{})
	in.Handle(convo.ProviderSelarti, rec.handler("a", func(convo.Delivery) error {
		close(entered)
		<-release
		return nil
	}))
	d := delivery("dup", "chat")
	added, err := in.Add(ctx, d)
	require.NoError(t, err)
	require.True(t, added)
	added, err = in.Add(ctx, d)
	require.NoError(t, err)
	assert.False(t, added, "before the run")

	startRun(t, in)
	<-entered
	added, err = in.Add(ctx, d)
	require.NoError(t, err)
	assert.False(t, added, "during the run")
	close(release)
	eventually(t, "completed", func() bool { return rec.completedCount() == 1 })
	eventually(t, "nothing pending", func() bool { return pending(t, in) == 0 })

	added, err = in.Add(ctx, d)
	require.NoError(t, err)
	assert.False(t, added, "after the run")
	// Another provider with the same id is another delivery.
	added, err = in.Add(ctx, convo.Delivery{Provider: convo.ProviderTalkJS, ID: "dup"})
	require.NoError(t, err)
	assert.True(t, added, "talkjs:dup")
	assert.Equal(t, 1, rec.runsOf("dup"))

	// The done mark expires with the retention.
	ttl, err := in.rdb.PTTL(ctx, in.base+"d:selarti:dup").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, DefaultRetention-time.Minute)
	assert.LessOrEqual(t, ttl, DefaultRetention)
}

// TestInboxAddNeedsID: an empty ID or Provider is refused.
func TestInboxAddNeedsID(t *testing.T) {
	in := NewInbox(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}))
	_, err := in.Add(context.Background(), convo.Delivery{Provider: convo.ProviderSelarti})
	require.EqualError(t, err, "redisdedup: inbox add: the delivery needs a Provider and an ID")
	_, err = in.Add(context.Background(), convo.Delivery{ID: "x"})
	require.EqualError(t, err, "redisdedup: inbox add: the delivery needs a Provider and an ID")
}

// TestInboxDeadLettersAndReplay: a delivery failing every attempt becomes
// a dead letter after the last (3 runs, Attempt 1 to 3) and releases its
// key; ErrPermanent makes one at once; Replay runs a dead letter once
// more, Attempt continuing, and a failing replay is a dead letter again at
// once; replaying anything else is ErrNotDeadLetter.
func TestInboxDeadLettersAndReplay(t *testing.T) {
	ctx := context.Background()
	in := newTestInbox(sharedClient(t), testPrefix(t), WithInboxAttempts(3))
	rec := newRecorder()
	var healed atomic.Bool
	in.Handle(convo.ProviderSelarti, rec.handler("a", func(d convo.Delivery) error {
		switch {
		case d.ID == "perm":
			return fmt.Errorf("chat gone: %w", convo.ErrPermanent)
		case d.ID == "flaky" && !healed.Load():
			return errors.New("TalkJS answers 503")
		}
		return nil
	}))
	for _, d := range []convo.Delivery{delivery("flaky", "chat"), delivery("after", "chat"), delivery("perm", "")} {
		_, err := in.Add(ctx, d)
		require.NoError(t, err)
	}
	stop := startRun(t, in)
	eventually(t, "after completed", func() bool { return rec.completedCount() == 1 })
	eventually(t, "nothing pending", func() bool { return pending(t, in) == 0 })
	stop()

	dead := map[string]convo.Delivery{}
	for d, err := range in.DeadLetters(ctx) {
		require.NoError(t, err)
		dead[d.ID] = d
	}
	require.Len(t, dead, 2)
	assert.Equal(t, 3, dead["flaky"].Attempt)
	assert.Equal(t, "chat", dead["flaky"].Key)
	assert.Equal(t, `{"message_id":"flaky"}`, string(dead["flaky"].Body))
	assert.Equal(t, convo.ProviderSelarti, dead["flaky"].Provider)
	assert.Equal(t, 1, dead["perm"].Attempt)
	assert.Equal(t, "", dead["perm"].Key)
	rec.mu.Lock()
	assert.Equal(t, []int{1, 2, 3}, rec.attempts["flaky"])
	assert.Equal(t, []int{1}, rec.attempts["perm"])
	assert.Equal(t, []string{"after"}, rec.order["chat"], "the dead letter released its key")
	rec.mu.Unlock()

	// A dead letter is a duplicate for Add.
	added, err := in.Add(ctx, delivery("flaky", "chat"))
	require.NoError(t, err)
	assert.False(t, added)

	for _, id := range []string{"after", "nope"} {
		err := in.Replay(ctx, convo.ProviderSelarti, id)
		require.ErrorIs(t, err, ErrNotDeadLetter, id)
	}
	assert.EqualError(t, in.Replay(ctx, convo.ProviderSelarti, "nope"),
		`redisdedup: inbox: replay selarti "nope": convo: inbox: not a dead letter`)

	healed.Store(true)
	require.NoError(t, in.Replay(ctx, convo.ProviderSelarti, "flaky"))
	require.NoError(t, in.Replay(ctx, convo.ProviderSelarti, "perm"))
	require.ErrorIs(t, in.Replay(ctx, convo.ProviderSelarti, "perm"), ErrNotDeadLetter, "replayed twice")
	require.ErrorIs(t, in.Replay(ctx, convo.ProviderSelarti, "perm"), convo.ErrNotDeadLetter, "the core's sentinel, as MemoryInbox.Replay returns")
	startRun(t, in)
	eventually(t, "flaky completed", func() bool { return rec.completedCount() == 2 })
	eventually(t, "nothing pending", func() bool { return pending(t, in) == 0 })

	var left []string
	for d, err := range in.DeadLetters(ctx) {
		require.NoError(t, err)
		left = append(left, d.ID)
	}
	assert.Equal(t, []string{"perm"}, left)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, []int{1, 2, 3, 4}, rec.attempts["flaky"])
	assert.Equal(t, []int{1, 2}, rec.attempts["perm"], "a failing replay is a dead letter at once")
	assert.Equal(t, []string{"after", "flaky"}, rec.order["chat"])
}

// TestInboxRunEndGivesBack: a Run whose context ends cancels its runs and
// gives their deliveries back at once: the other replica runs it (Attempt
// 2) long before the lease (1 hour) would end.
func TestInboxRunEndGivesBack(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	a := newTestInbox(sharedClient(t), prefix, WithLease(time.Hour))
	b := newTestInbox(sharedClient(t), prefix, WithLease(time.Hour))
	rec := newRecorder()
	entered := make(chan struct{})
	// The callback waits on its context.
	a.Handle(convo.ProviderSelarti, func(ctx context.Context, d convo.Delivery) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	b.Handle(convo.ProviderSelarti, rec.handler("b", nil))
	_, err := a.Add(ctx, delivery("m1", "chat"))
	require.NoError(t, err)
	stopA := startRun(t, a)
	<-entered
	stopA()
	startRun(t, b)
	eventually(t, "b completed m1", func() bool { return rec.completedCount() == 1 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, []int{2}, rec.attempts["m1"], "the interrupted run counted as an attempt")
}

// TestInboxRunEndedCallbackBlocked: a replica whose Run ended while its
// callback is blocked (ignoring its context, as a hung replica's) stops
// renewing the lease: after it, the other replica runs the delivery and
// completes it; the first one's late end changes nothing.
func TestInboxRunEndedCallbackBlocked(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	lease := time.Second // renewed every 333 ms: room for a loaded machine
	a := newTestInbox(sharedClient(t), prefix, WithLease(lease))
	b := newTestInbox(sharedClient(t), prefix, WithLease(lease))
	entered, release := make(chan struct{}), make(chan struct{})
	var aRuns atomic.Int32
	a.Handle(convo.ProviderSelarti, func(context.Context, convo.Delivery) error {
		aRuns.Add(1)
		close(entered)
		<-release // ignores its context
		return nil
	})
	rec := newRecorder()
	bEntered, aEnded := make(chan struct{}), make(chan struct{})
	b.Handle(convo.ProviderSelarti, rec.handler("b", func(d convo.Delivery) error {
		if d.ID == "m1" {
			// a's blocked run of m1 ends while b runs it: a's late
			// completion must neither complete m1 nor let m2 start.
			close(bEntered)
			<-aEnded
		}
		return nil
	}))
	_, err := a.Add(ctx, delivery("m1", "chat"))
	require.NoError(t, err)
	_, err = a.Add(ctx, delivery("m2", "chat"))
	require.NoError(t, err)

	ctxA, cancelA := context.WithCancel(ctx)
	endedA := make(chan error, 1)
	go func() { endedA <- a.Run(ctxA) }()
	<-entered
	cancelA()
	startRun(t, b)
	<-bEntered
	close(release)
	require.NoError(t, <-endedA)
	// a's end of its run was refused: m1 is still b's, running.
	st, err := b.rdb.HMGet(ctx, b.base+"d:selarti:m1", "st", "tok").Result()
	require.NoError(t, err)
	assert.Equal(t, "kept", st[0])
	assert.Contains(t, st[1], b.tokenBase, "the token is b's")
	_, err = b.rdb.ZScore(ctx, b.base+"lease", "k:chat").Result()
	assert.NoError(t, err, "chat is leased")
	close(aEnded)
	eventually(t, "b completed m1 and m2", func() bool { return rec.completedCount() == 2 })
	eventually(t, "nothing pending", func() bool { return pending(t, b) == 0 })

	assert.Equal(t, int32(1), aRuns.Load())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, []int{2}, rec.attempts["m1"])
	assert.Equal(t, []string{"m1", "m2"}, rec.order["chat"])
	assert.Empty(t, rec.overlap)
	assert.Equal(t, 1, rec.runs["m2"])
}

// TestInboxSlowRun: a live run taking 3 times the lease keeps it renewed:
// the other replica, polling all along, never starts it.
func TestInboxSlowRun(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	lease := 2 * time.Second
	rec := newRecorder()
	var ins []*Inbox
	for _, name := range []string{"a", "b"} {
		in := newTestInbox(sharedClient(t), prefix, WithLease(lease))
		in.Handle(convo.ProviderSelarti, rec.handler(name, func(convo.Delivery) error {
			<-time.After(3 * lease) // the slow work under test
			return nil
		}))
		ins = append(ins, in)
	}
	_, err := ins[0].Add(ctx, delivery("slow", "chat"))
	require.NoError(t, err)
	startRun(t, ins[0])
	startRun(t, ins[1])
	eventually(t, "completed", func() bool { return rec.completedCount() == 1 })
	eventually(t, "nothing pending", func() bool { return pending(t, ins[0]) == 0 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, 1, rec.runs["slow"])
	assert.Equal(t, []int{1}, rec.attempts["slow"])
}

// TestInboxRestart: Redis (appendonly, fsync always) is killed with
// SIGKILL in the middle of 300 runs and started again on its files:
// every delivery completes exactly once (a run that ended while Redis was
// down completes once it is back).
func TestInboxRestart(t *testing.T) {
	if sharedAddr == "" {
		skipOrFail(t, skipReason)
	}
	bin, err := redisBinary()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	dir := t.TempDir()
	srv, err := startRedis(bin, dir, true)
	require.NoError(t, err)
	t.Cleanup(func() { srv.stop(syscall.SIGKILL) })
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })

	in := newTestInbox(rdb, testPrefix(t), WithLease(5*time.Second))
	rec := newRecorder()
	var runs atomic.Int32
	killAt := make(chan struct{})
	var once sync.Once
	in.Handle(convo.ProviderSelarti, rec.handler("a", func(convo.Delivery) error {
		if runs.Add(1) == 100 {
			once.Do(func() { close(killAt) })
		}
		return nil
	}))
	const n = 300
	for i := range n {
		_, err := in.Add(context.Background(), delivery("m"+strconv.Itoa(i), "chat"+strconv.Itoa(i%10)))
		require.NoError(t, err)
	}
	startRun(t, in)
	<-killAt
	srv.stop(syscall.SIGKILL)
	require.NoError(t, srv.start())
	eventually(t, "all completed", func() bool { return rec.completedCount() == n })
	eventually(t, "nothing pending", func() bool {
		c, err := rdb.ZCard(context.Background(), in.base+"pending").Result()
		return err == nil && c == 0
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, c := range rec.completed {
		assert.Equal(t, 1, c, "completions of %s", id)
	}
	for k := range 10 {
		key := "chat" + strconv.Itoa(k)
		var want []string
		for i := k; i < n; i += 10 {
			want = append(want, "m"+strconv.Itoa(i))
		}
		assert.Equal(t, want, rec.order[key], key)
	}
}

// TestInboxObserver: the observer sees each delivery kept (not a
// duplicate) and each run's outcome, with the inbox's depth.
func TestInboxObserver(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var kept []int // depth after each
	var outcomes []string
	type ctxKey struct{}
	obs := convo.Observer{
		InboxKept: func(_ context.Context, k convo.InboxInfo) {
			mu.Lock()
			defer mu.Unlock()
			kept = append(kept, k.Depth)
			assert.False(t, k.Oldest.IsZero())
		},
		InboxRunStart: func(ctx context.Context, r convo.InboxInfo) context.Context {
			return context.WithValue(ctx, ctxKey{}, r.Attempt)
		},
		InboxRunDone: func(ctx context.Context, r convo.InboxRunResult) {
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, r.Attempt, ctx.Value(ctxKey{}), "the context from InboxRunStart")
			s := fmt.Sprintf("%s#%d:%s", r.Provider, r.Attempt, r.Outcome)
			if r.Outcome == convo.InboxRetried {
				s += fmt.Sprintf(" retry>=%v:%v", r.Retry >= 5*time.Millisecond, r.Retry <= 20*time.Millisecond)
			}
			outcomes = append(outcomes, s)
		},
	}
	in := newTestInbox(sharedClient(t), testPrefix(t), WithInboxAttempts(2), WithInboxObserver(obs), WithInboxWorkers(1))
	var started atomic.Int32
	in.Handle(convo.ProviderSelarti, func(ctx context.Context, d convo.Delivery) error {
		assert.Equal(t, d.Attempt, ctx.Value(ctxKey{}), "the callback gets InboxRunStart's context")
		started.Add(1)
		if d.ID == "bad" {
			return errors.New("fails")
		}
		return nil
	})
	for _, id := range []string{"bad", "good", "good"} {
		_, err := in.Add(ctx, delivery(id, "chat"))
		require.NoError(t, err)
	}
	startRun(t, in)
	eventually(t, "three runs ended", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(outcomes) == 3
	})
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{1, 2}, kept)
	assert.Equal(t, []string{
		"selarti#1:retried retry>=true:true",
		"selarti#2:dead_lettered",
		"selarti#1:completed",
	}, outcomes)
}

// TestInboxBackoff: min doubling up to max, with a jitter of up to a
// quarter, never beyond max.
func TestInboxBackoff(t *testing.T) {
	in := NewInbox(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}))
	for range 100 {
		assert.GreaterOrEqual(t, in.backoff(1), time.Second)
		assert.LessOrEqual(t, in.backoff(1), 1250*time.Millisecond)
		assert.GreaterOrEqual(t, in.backoff(3), 4*time.Second)
		assert.LessOrEqual(t, in.backoff(3), 5*time.Second)
		assert.Equal(t, 5*time.Minute, in.backoff(10))
		assert.Equal(t, 5*time.Minute, in.backoff(1000))
	}
}

// TestInboxKeySlot: an inbox's keys start with the prefix and share one
// hash tag; other prefixes are in other slots; a prefix with a brace is
// refused.
func TestInboxKeySlot(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	for _, prefix := range []string{"convo:inbox:", "x", "a:b:c"} {
		base := NewInbox(rdb, WithPrefix(prefix)).base
		var slots []uint16
		for _, k := range []string{"ready", "lease", "pending", "dead", "q:k:chat-1", "d:selarti:m1", "q:u:talkjs:e{v}"} {
			key := base + k
			assert.True(t, strings.HasPrefix(key, prefix))
			slots = append(slots, keySlot(key))
		}
		for _, s := range slots {
			assert.Equal(t, slots[0], s, "prefix %q", prefix)
		}
	}
	assert.Equal(t, "convo:inbox:{convo:inbox:}:", NewInbox(rdb).base)
	assert.NotEqual(t, keySlot(keyBase("convo:inbox:")+"ready"), keySlot(keyBase("other:")+"ready"))
	for _, prefix := range []string{"a{b", "}", "{x}:"} {
		assert.PanicsWithValue(t, "redisdedup: NewInbox: the prefix must not hold '{' or '}' (the inbox adds its own hash tag)",
			func() { NewInbox(rdb, WithPrefix(prefix)) }, prefix)
	}
}

// keySlot is Redis Cluster's slot of key: CRC16 (XMODEM) of its hash tag,
// or of the whole key, mod 16384.
func keySlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, b := range []byte(key) {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// TestInboxWithHandler: a Selarti handler built WithInbox on the Redis
// inbox answers 200 once the delivery is kept (and to its redelivery),
// and the inbox runs the callback, which finds its Delivery (Attempt
// counting up after a failure) with convo.DeliveryFromContext.
func TestInboxWithHandler(t *testing.T) {
	in := newTestInbox(sharedClient(t), testPrefix(t))
	var mu sync.Mutex
	var runs []string
	h := convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
		d, ok := convo.DeliveryFromContext(ctx)
		mu.Lock()
		runs = append(runs, fmt.Sprintf("%v %s %s %d %s", ok, d.ID, d.Key, d.Attempt, ev.MessageID))
		mu.Unlock()
		if d.Attempt == 1 {
			return errors.New("talkjs: 503")
		}
		return nil
	}, convo.WithInbox(in), convo.WithHandlerLogger(quietLog))
	body := selartiBody(t, "m-handler")
	assert.Equal(t, http.StatusOK, deliver(h, body))
	assert.Equal(t, http.StatusOK, deliver(h, body), "the redelivery")
	startRun(t, in)
	eventually(t, "two runs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(runs) == 2
	})
	eventually(t, "nothing pending", func() bool { return pending(t, in) == 0 })
	var ev map[string]any
	require.NoError(t, json.Unmarshal(body, &ev))
	chat := ev["external_chat_id"].(string)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"true m-handler " + chat + " 1 m-handler", "true m-handler " + chat + " 2 m-handler"}, runs)
}

// TestInboxHonorsDeadline: with ContextTimeoutEnabled, as a Store.
func TestInboxHonorsDeadline(t *testing.T) {
	assert.False(t, NewInbox(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})).HonorsDeadline())
	assert.True(t, NewInbox(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})).HonorsDeadline())
	assert.True(t, NewInbox(redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})).HonorsDeadline())
}
