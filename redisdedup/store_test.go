package redisdedup

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
)

// stores are the DedupStores the semantics suite runs against: the SDK's
// MemoryDedupStore, whose behaviour is the reference, and the Redis Store.
var stores = []struct {
	name string
	make func(t *testing.T) convo.DedupStore
}{
	{"memory", func(*testing.T) convo.DedupStore { return convo.NewMemoryDedupStore(1000) }},
	{"redis", func(t *testing.T) convo.DedupStore { return New(sharedClient(t), WithPrefix(testPrefix(t))) }},
}

// claimStep is one call of a semantics case and what it must give.
type claimStep struct {
	op   string // "claim", "renew", "complete" or "release"
	id   string
	tok  string
	want convo.ClaimState // for "claim"
	err  error            // for the others
}

// TestStoreSemantics runs the same cases against both stores: the Redis
// store tells new, in progress and done apart, and fences claims by their
// token, exactly as MemoryDedupStore.
func TestStoreSemantics(t *testing.T) {
	long := strings.Repeat("x", 64)
	lost := convo.ErrClaimLost
	cases := []struct {
		name  string
		steps []claimStep
	}{
		{"a new id is new, then in progress", []claimStep{
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"claim", "selarti:1", "b", convo.ClaimInProgress, nil},
			{"claim", "selarti:1", "c", convo.ClaimInProgress, nil},
		}},
		{"a claim retried with its token is new", []claimStep{
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"claim", "selarti:1", "b", convo.ClaimInProgress, nil},
		}},
		{"complete makes it done for good", []claimStep{
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"complete", "selarti:1", "a", 0, nil},
			{"claim", "selarti:1", "b", convo.ClaimDone, nil},
			{"claim", "selarti:1", "a", convo.ClaimDone, nil},
		}},
		{"release forgets it", []claimStep{
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"release", "selarti:1", "a", 0, nil},
			{"claim", "selarti:1", "b", convo.ClaimNew, nil},
			{"claim", "selarti:1", "c", convo.ClaimInProgress, nil},
		}},
		{"only the token renews, completes or releases", []claimStep{
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"renew", "selarti:1", "b", 0, lost},
			{"complete", "selarti:1", "b", 0, lost},
			{"release", "selarti:1", "b", 0, lost},
			{"claim", "selarti:1", "c", convo.ClaimInProgress, nil},
			{"renew", "selarti:1", "a", 0, nil},
			{"complete", "selarti:1", "a", 0, nil},
			{"renew", "selarti:1", "a", 0, lost},
		}},
		{"complete twice", []claimStep{
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"complete", "selarti:1", "a", 0, nil},
			{"complete", "selarti:1", "a", 0, nil},
			{"complete", "selarti:1", "b", 0, nil},
			{"claim", "selarti:1", "c", convo.ClaimDone, nil},
		}},
		{"release after complete keeps it done", []claimStep{
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"complete", "selarti:1", "a", 0, nil},
			{"release", "selarti:1", "a", 0, nil},
			{"claim", "selarti:1", "b", convo.ClaimDone, nil},
		}},
		{"complete without a claim makes it done", []claimStep{
			{"complete", "talkjs:evt_1", "a", 0, nil},
			{"claim", "talkjs:evt_1", "b", convo.ClaimDone, nil},
		}},
		{"release or renew without a claim", []claimStep{
			{"release", "talkjs:evt_1", "a", 0, nil},
			{"renew", "talkjs:evt_1", "a", 0, lost},
			{"claim", "talkjs:evt_1", "b", convo.ClaimNew, nil},
		}},
		{"ids are independent, providers apart", []claimStep{
			{"claim", "selarti:1", "a", convo.ClaimNew, nil},
			{"claim", "talkjs:1", "b", convo.ClaimNew, nil},
			{"complete", "selarti:1", "a", 0, nil},
			{"claim", "talkjs:1", "c", convo.ClaimInProgress, nil},
			{"claim", "selarti:2", "d", convo.ClaimNew, nil},
			{"claim", "selarti:1", "e", convo.ClaimDone, nil},
		}},
		{"ids over 64 bytes stay apart", []claimStep{
			{"claim", long, "a", convo.ClaimNew, nil},
			{"claim", long + "a", "b", convo.ClaimNew, nil},
			{"claim", long + "b", "c", convo.ClaimNew, nil},
			{"complete", long + "a", "b", 0, nil},
			{"claim", long, "d", convo.ClaimInProgress, nil},
			{"claim", long + "a", "e", convo.ClaimDone, nil},
			{"claim", long + "b", "f", convo.ClaimInProgress, nil},
			{"release", long + "b", "c", 0, nil},
			{"claim", long + "b", "g", convo.ClaimNew, nil},
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s := st.make(t)
					ctx := context.Background()
					for i, step := range c.steps {
						var err error
						switch step.op {
						case "claim":
							got, err := s.Claim(ctx, step.id, step.tok)
							if err != nil || got != step.want {
								t.Fatalf("step %d: Claim(%.20q, %s) = %v, %v; want %v", i, step.id, step.tok, got, err, step.want)
							}
							continue
						case "renew":
							err = s.Renew(ctx, step.id, step.tok)
						case "complete":
							err = s.Complete(ctx, step.id, step.tok)
						case "release":
							err = s.Release(ctx, step.id, step.tok)
						}
						if !errors.Is(err, step.err) || (step.err == nil && err != nil) {
							t.Fatalf("step %d: %s(%.20q, %s) = %v; want %v", i, step.op, step.id, step.tok, err, step.err)
						}
					}
				})
			}
			t.Run("concurrent claims of one id: one is new", func(t *testing.T) {
				s := st.make(t)
				const n = 64
				var wg sync.WaitGroup
				start := make(chan struct{})
				got := make([]convo.ClaimState, n)
				for i := range n {
					wg.Go(func() {
						<-start
						st, err := s.Claim(context.Background(), "selarti:same", itoa(i))
						if err != nil {
							t.Error(err)
						}
						got[i] = st
					})
				}
				close(start)
				wg.Wait()
				count := map[convo.ClaimState]int{}
				for _, st := range got {
					count[st]++
				}
				if count[convo.ClaimNew] != 1 || count[convo.ClaimInProgress] != n-1 {
					t.Fatalf("states %v; want 1 new and %d in progress", count, n-1)
				}
			})
		})
	}
}

func TestKeysAndExpiry(t *testing.T) {
	rdb := sharedClient(t)
	ctx := context.Background()
	prefix := testPrefix(t)
	s := New(rdb, WithPrefix(prefix), WithLease(90*time.Second), WithRetention(3*time.Hour))

	if got := New(rdb).Key("selarti:1"); got != "convo:dedup:selarti:1" {
		t.Errorf("default key %q", got)
	}
	id64 := strings.Repeat("a", 64)
	if got := s.Key(id64); got != prefix+id64 {
		t.Errorf("a 64-byte id is kept as it is: %q", got)
	}
	hashed := s.Key(id64 + "a")
	if !strings.HasPrefix(hashed, prefix+"sha256:") || len(hashed) != len(prefix)+len("sha256:")+64 {
		t.Errorf("a 65-byte id is hashed: %q", hashed)
	}

	if st, err := s.Claim(ctx, "selarti:1", "s"); err != nil || st != convo.ClaimNew {
		t.Fatalf("Claim = %v, %v", st, err)
	}
	ttl := rdb.PTTL(ctx, prefix+"selarti:1").Val()
	if ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Errorf("in progress: TTL %v, want the lease (90s)", ttl)
	}
	if err := s.Complete(ctx, "selarti:1", "s"); err != nil {
		t.Fatal(err)
	}
	if v := rdb.Get(ctx, prefix+"selarti:1").Val(); v != "done" {
		t.Errorf("done value %q", v)
	}
	ttl = rdb.PTTL(ctx, prefix+"selarti:1").Val()
	if ttl <= 3*time.Hour-time.Minute || ttl > 3*time.Hour {
		t.Errorf("done: TTL %v, want the retention (3h)", ttl)
	}

	if _, err := s.Claim(ctx, id64+"a", "s"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, hashed).Val(); n != 1 {
		t.Errorf("hashed key %q not in Redis", hashed)
	}
	if err := s.Release(ctx, id64+"a", "s"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, hashed).Val(); n != 0 {
		t.Errorf("released key still in Redis")
	}
	// A renewal sets the lease again.
	if _, err := s.Claim(ctx, "selarti:r", "t"); err != nil {
		t.Fatal(err)
	}
	if err := rdb.PExpire(ctx, prefix+"selarti:r", time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Renew(ctx, "selarti:r", "t"); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, prefix+"selarti:r").Val(); ttl <= 80*time.Second {
		t.Errorf("renewed: TTL %v, want the lease (90s)", ttl)
	}
	if s.Lease() != 90*time.Second {
		t.Errorf("Lease() = %v", s.Lease())
	}
}

func TestRetentionEnds(t *testing.T) {
	rdb := sharedClient(t)
	ctx := context.Background()
	var s *Store
	inTime(t, 200*time.Millisecond, func(retention time.Duration) func() {
		s = New(rdb, WithPrefix(testPrefix(t)), WithRetention(retention))
		if _, err := s.Claim(ctx, "selarti:1", "s"); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, "selarti:1", "s"); err != nil {
			t.Fatal(err)
		}
		st, err := s.Claim(ctx, "selarti:1", "s")
		return func() {
			if err != nil || st != convo.ClaimDone {
				t.Fatalf("within the retention: %v, %v; want done", st, err)
			}
		}
	})
	waitExpired(t, rdb, s.Key("selarti:1"))
	if st, err := s.Claim(ctx, "selarti:1", "s"); err != nil || st != convo.ClaimNew {
		t.Fatalf("after the retention: %v, %v; want new", st, err)
	}
}

// TestStaleHolder: a Store whose lease expired and whose id another Store
// claimed cannot undo the other's claim, by Release or by Complete.
func TestStaleHolder(t *testing.T) {
	rdb := sharedClient(t)
	prefix := testPrefix(t)
	ctx := context.Background()
	a := New(rdb, WithPrefix(prefix), WithLease(100*time.Millisecond))
	b := New(rdb, WithPrefix(prefix), WithLease(time.Minute))
	c := New(rdb, WithPrefix(prefix))

	if st, _ := a.Claim(ctx, "selarti:1", "a"); st != convo.ClaimNew {
		t.Fatalf("a: %v", st)
	}
	waitExpired(t, rdb, a.Key("selarti:1"))
	if st, _ := b.Claim(ctx, "selarti:1", "b"); st != convo.ClaimNew {
		t.Fatalf("b after a's lease: %v", st)
	}
	if err := a.Release(ctx, "selarti:1", "a"); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("a.Release = %v, want ErrClaimLost", err)
	}
	if st, _ := c.Claim(ctx, "selarti:1", "c"); st != convo.ClaimInProgress {
		t.Fatalf("after a's stale Release: %v, want in progress (b's claim)", st)
	}
	if err := a.Complete(ctx, "selarti:1", "a"); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("a.Complete = %v, want ErrClaimLost", err)
	}
	if st, _ := c.Claim(ctx, "selarti:1", "c"); st != convo.ClaimInProgress {
		t.Fatalf("after a's stale Complete: %v, want in progress (b's claim)", st)
	}
	if err := b.Release(ctx, "selarti:1", "b"); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Claim(ctx, "selarti:1", "c"); st != convo.ClaimNew {
		t.Fatalf("after b's Release: %v, want new", st)
	}

	// A lease that expired with nobody else claiming: the late Complete
	// still records the work that was done.
	if st, _ := a.Claim(ctx, "selarti:2", "a"); st != convo.ClaimNew {
		t.Fatalf("a: %v", st)
	}
	waitExpired(t, rdb, a.Key("selarti:2"))
	if err := a.Complete(ctx, "selarti:2", "a"); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Claim(ctx, "selarti:2", "c"); st != convo.ClaimDone {
		t.Fatalf("after a's late Complete: %v, want done", st)
	}
}

// TestClaimRetryIsNew: when the reply to a claim is lost and the client
// sends the same script again (go-redis retries on network errors), the
// claim it made is still reported new, not in progress.
func TestClaimRetryIsNew(t *testing.T) {
	rdb := sharedClient(t)
	ctx := context.Background()
	key := testPrefix(t) + "selarti:1"
	for i := range 2 {
		n, err := claimScript.Run(ctx, rdb, []string{key}, "tok:1", 60000).Int64()
		if err != nil || n != 1 {
			t.Fatalf("try %d: %d, %v; want 1 (new)", i, n, err)
		}
	}
	if n, _ := claimScript.Run(ctx, rdb, []string{key}, "tok:2", 60000).Int64(); n != 2 {
		t.Fatalf("another token: %d, want 2 (in progress)", n)
	}
}

// TestUnreachable: with Redis down, Claim fails and the handler answers 503.
func TestUnreachable(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + itoa(port), MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	s := New(rdb)
	if _, err := s.Claim(context.Background(), "selarti:1", "t"); err == nil {
		t.Fatal("Claim on a closed port: no error")
	}
	var calls int
	h := convo.NewSelartiHandler(func(context.Context, *convo.SelartiEvent) error { calls++; return nil },
		convo.WithDedupStore(s), convo.WithDedupFailClosed(), convo.WithDedupTimeout(200*time.Millisecond))
	if code := deliver(h, selartiBody(t, "m1")); code != http.StatusServiceUnavailable || calls != 0 {
		t.Fatalf("status %d, %d calls; want 503 and none", code, calls)
	}
}

func TestOptionPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil client":     func() { New(nil) },
		"zero lease":     func() { WithLease(0) },
		"zero retention": func() { WithRetention(time.Microsecond) },
		"empty prefix":   func() { WithPrefix("") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}
