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
	op   string // "claim", "complete" or "release"
	id   string
	want convo.ClaimState // for "claim"
}

// TestStoreSemantics runs the same cases against both stores: the Redis
// store tells new, in progress and done apart exactly as MemoryDedupStore.
func TestStoreSemantics(t *testing.T) {
	long := strings.Repeat("x", 64)
	cases := []struct {
		name  string
		steps []claimStep
	}{
		{"a new id is new, then in progress", []claimStep{
			{"claim", "selarti:1", convo.ClaimNew},
			{"claim", "selarti:1", convo.ClaimInProgress},
			{"claim", "selarti:1", convo.ClaimInProgress},
		}},
		{"complete makes it done for good", []claimStep{
			{"claim", "selarti:1", convo.ClaimNew},
			{"complete", "selarti:1", 0},
			{"claim", "selarti:1", convo.ClaimDone},
			{"claim", "selarti:1", convo.ClaimDone},
		}},
		{"release forgets it", []claimStep{
			{"claim", "selarti:1", convo.ClaimNew},
			{"release", "selarti:1", 0},
			{"claim", "selarti:1", convo.ClaimNew},
			{"claim", "selarti:1", convo.ClaimInProgress},
		}},
		{"complete twice", []claimStep{
			{"claim", "selarti:1", convo.ClaimNew},
			{"complete", "selarti:1", 0},
			{"complete", "selarti:1", 0},
			{"claim", "selarti:1", convo.ClaimDone},
		}},
		{"release after complete keeps it done", []claimStep{
			{"claim", "selarti:1", convo.ClaimNew},
			{"complete", "selarti:1", 0},
			{"release", "selarti:1", 0},
			{"claim", "selarti:1", convo.ClaimDone},
		}},
		{"complete without a claim makes it done", []claimStep{
			{"complete", "talkjs:evt_1", 0},
			{"claim", "talkjs:evt_1", convo.ClaimDone},
		}},
		{"release without a claim does nothing", []claimStep{
			{"release", "talkjs:evt_1", 0},
			{"claim", "talkjs:evt_1", convo.ClaimNew},
		}},
		{"ids are independent, providers apart", []claimStep{
			{"claim", "selarti:1", convo.ClaimNew},
			{"claim", "talkjs:1", convo.ClaimNew},
			{"complete", "selarti:1", 0},
			{"claim", "talkjs:1", convo.ClaimInProgress},
			{"claim", "selarti:2", convo.ClaimNew},
			{"claim", "selarti:1", convo.ClaimDone},
		}},
		{"ids over 64 bytes stay apart", []claimStep{
			{"claim", long, convo.ClaimNew},
			{"claim", long + "a", convo.ClaimNew},
			{"claim", long + "b", convo.ClaimNew},
			{"complete", long + "a", 0},
			{"claim", long, convo.ClaimInProgress},
			{"claim", long + "a", convo.ClaimDone},
			{"claim", long + "b", convo.ClaimInProgress},
			{"release", long + "b", 0},
			{"claim", long + "b", convo.ClaimNew},
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s := st.make(t)
					ctx := context.Background()
					for i, step := range c.steps {
						switch step.op {
						case "claim":
							got, err := s.Claim(ctx, step.id)
							if err != nil || got != step.want {
								t.Fatalf("step %d: Claim(%.20q) = %v, %v; want %v", i, step.id, got, err, step.want)
							}
						case "complete":
							if err := s.Complete(ctx, step.id); err != nil {
								t.Fatalf("step %d: Complete: %v", i, err)
							}
						case "release":
							if err := s.Release(ctx, step.id); err != nil {
								t.Fatalf("step %d: Release: %v", i, err)
							}
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
						st, err := s.Claim(context.Background(), "selarti:same")
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

	if st, err := s.Claim(ctx, "selarti:1"); err != nil || st != convo.ClaimNew {
		t.Fatalf("Claim = %v, %v", st, err)
	}
	ttl := rdb.PTTL(ctx, prefix+"selarti:1").Val()
	if ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Errorf("in progress: TTL %v, want the lease (90s)", ttl)
	}
	if err := s.Complete(ctx, "selarti:1"); err != nil {
		t.Fatal(err)
	}
	if v := rdb.Get(ctx, prefix+"selarti:1").Val(); v != "done" {
		t.Errorf("done value %q", v)
	}
	ttl = rdb.PTTL(ctx, prefix+"selarti:1").Val()
	if ttl <= 3*time.Hour-time.Minute || ttl > 3*time.Hour {
		t.Errorf("done: TTL %v, want the retention (3h)", ttl)
	}

	if _, err := s.Claim(ctx, id64+"a"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, hashed).Val(); n != 1 {
		t.Errorf("hashed key %q not in Redis", hashed)
	}
	if err := s.Release(ctx, id64+"a"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, hashed).Val(); n != 0 {
		t.Errorf("released key still in Redis")
	}
	if n := len(s.tokens); n != 0 {
		t.Errorf("%d tokens kept after Complete and Release", n)
	}
}

func TestRetentionEnds(t *testing.T) {
	rdb := sharedClient(t)
	ctx := context.Background()
	var s *Store
	inTime(t, 200*time.Millisecond, func(retention time.Duration) func() {
		s = New(rdb, WithPrefix(testPrefix(t)), WithRetention(retention))
		if _, err := s.Claim(ctx, "selarti:1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, "selarti:1"); err != nil {
			t.Fatal(err)
		}
		st, err := s.Claim(ctx, "selarti:1")
		return func() {
			if err != nil || st != convo.ClaimDone {
				t.Fatalf("within the retention: %v, %v; want done", st, err)
			}
		}
	})
	waitExpired(t, rdb, s.Key("selarti:1"))
	if st, err := s.Claim(ctx, "selarti:1"); err != nil || st != convo.ClaimNew {
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

	if st, _ := a.Claim(ctx, "selarti:1"); st != convo.ClaimNew {
		t.Fatalf("a: %v", st)
	}
	waitExpired(t, rdb, a.Key("selarti:1"))
	if st, _ := b.Claim(ctx, "selarti:1"); st != convo.ClaimNew {
		t.Fatalf("b after a's lease: %v", st)
	}
	if err := a.Release(ctx, "selarti:1"); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("a.Release = %v, want ErrClaimLost", err)
	}
	if st, _ := c.Claim(ctx, "selarti:1"); st != convo.ClaimInProgress {
		t.Fatalf("after a's stale Release: %v, want in progress (b's claim)", st)
	}
	if err := a.Complete(ctx, "selarti:1"); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("a.Complete = %v, want ErrClaimLost", err)
	}
	if st, _ := c.Claim(ctx, "selarti:1"); st != convo.ClaimInProgress {
		t.Fatalf("after a's stale Complete: %v, want in progress (b's claim)", st)
	}
	if err := b.Release(ctx, "selarti:1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Claim(ctx, "selarti:1"); st != convo.ClaimNew {
		t.Fatalf("after b's Release: %v, want new", st)
	}

	// A lease that expired with nobody else claiming: the late Complete
	// still records the work that was done.
	if st, _ := a.Claim(ctx, "selarti:2"); st != convo.ClaimNew {
		t.Fatalf("a: %v", st)
	}
	waitExpired(t, rdb, a.Key("selarti:2"))
	if err := a.Complete(ctx, "selarti:2"); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Claim(ctx, "selarti:2"); st != convo.ClaimDone {
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
	if _, err := s.Claim(context.Background(), "selarti:1"); err == nil {
		t.Fatal("Claim on a closed port: no error")
	}
	var calls int
	h := convo.NewSelartiHandler(func(context.Context, *convo.SelartiEvent) error { calls++; return nil }, convo.WithDedupStore(s))
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
