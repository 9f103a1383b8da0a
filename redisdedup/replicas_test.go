package redisdedup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
)

// selartiTemplate is testdata/selarti-all-messages.json, a bot message of
// Selarti's "All messages" webhook.
var selartiTemplate = sync.OnceValues(func() (map[string]any, error) {
	b, err := os.ReadFile("testdata/selarti-all-messages.json")
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
})

// selartiBody is the fixture with message_id set to id.
func selartiBody(t testing.TB, id string) []byte {
	t.Helper()
	tmpl, err := selartiTemplate()
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]any, len(tmpl))
	for k, v := range tmpl {
		m[k] = v
	}
	m["message_id"] = id
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliver posts body to h as Selarti would and returns the status.
func deliver(h http.Handler, body []byte) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks/selarti", bytes.NewReader(body)))
	return rec.Code
}

func itoa(n int) string { return strconv.Itoa(n) }

// replicas are two Selarti handlers, each with its own Store on its own
// client of one Redis, as two replicas of a receiver are; they share fn.
func replicas(t *testing.T, rdb func() redis.UniversalClient, fn func(context.Context, *convo.SelartiEvent) error, opts ...Option) [2]http.Handler {
	t.Helper()
	opts = append([]Option{WithPrefix(testPrefix(t))}, opts...)
	var hs [2]http.Handler
	for i := range hs {
		// 2,000 deliveries at once queue for the client's pool longer than
		// the default 2 s under the race detector: these tests are about
		// claims, not outages.
		hs[i] = convo.NewSelartiHandler(fn, convo.WithDedupStore(New(rdb(), opts...)),
			convo.WithDedupFailClosed(), convo.WithDedupTimeout(time.Minute))
	}
	return hs
}

func sharedClients(t *testing.T) func() redis.UniversalClient {
	return func() redis.UniversalClient { return sharedClient(t) }
}

// TestTwoReplicasOneCallback: 2,000 concurrent deliveries of one message id,
// split between two replicas: one callback; the others get 200 or 409.
func TestTwoReplicasOneCallback(t *testing.T) {
	const n = 2000
	var calls atomic.Int64
	hs := replicas(t, sharedClients(t), func(ctx context.Context, ev *convo.SelartiEvent) error {
		calls.Add(1)
		time.Sleep(2 * time.Millisecond) // so that deliveries meet it in progress
		return nil
	})
	body := selartiBody(t, "1731336491876x582725124419040400")
	codes := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			codes[i] = deliver(hs[i%2], body)
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	t.Logf("statuses: %v", count)
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d callbacks for %d deliveries of one id; want 1", got, n)
	}
	if count[http.StatusOK]+count[http.StatusConflict] != n {
		t.Fatalf("statuses %v; want only 200 and 409", count)
	}
	// Afterwards, a redelivery on either replica is a handled duplicate.
	for i, h := range hs {
		if c := deliver(h, body); c != http.StatusOK {
			t.Errorf("replica %d after: %d", i, c)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d callbacks after the redeliveries", got)
	}
}

// TestFailedCallbackReleases: a callback that fails on one replica releases
// the id, and the redelivery on the other replica runs it.
func TestFailedCallbackReleases(t *testing.T) {
	var calls atomic.Int64
	hs := replicas(t, sharedClients(t), func(ctx context.Context, ev *convo.SelartiEvent) error {
		if calls.Add(1) == 1 {
			return errors.New("relay down")
		}
		return nil
	})
	body := selartiBody(t, "m-fail")
	if c := deliver(hs[0], body); c != http.StatusInternalServerError {
		t.Fatalf("first delivery on replica 0: %d, want 500", c)
	}
	if c := deliver(hs[1], body); c != http.StatusOK {
		t.Fatalf("redelivery on replica 1: %d, want 200", c)
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d callbacks; want 2 (the failure, then the redelivery)", got)
	}
	for i, h := range hs {
		if c := deliver(h, body); c != http.StatusOK {
			t.Errorf("replica %d, third delivery: %d", i, c)
		}
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d callbacks after the id was done; want 2", got)
	}
}

// TestLeaseExpires: a replica that claims an id and never completes it (it
// died in the callback) blocks the redelivery only until the lease ends.
func TestLeaseExpires(t *testing.T) {
	rdb := sharedClient(t)
	body := selartiBody(t, "m-dead")
	var dead *Store
	var live http.Handler
	var calls *atomic.Int64
	inTime(t, 300*time.Millisecond, func(lease time.Duration) func() {
		prefix := testPrefix(t)
		n := new(atomic.Int64) // this try's callbacks
		calls = n
		dead = New(rdb, WithPrefix(prefix), WithLease(lease))
		live = convo.NewSelartiHandler(func(context.Context, *convo.SelartiEvent) error {
			n.Add(1)
			return nil
		}, convo.WithDedupStore(New(rdb, WithPrefix(prefix), WithLease(lease))))
		if st, err := dead.Claim(context.Background(), "selarti:m-dead", "dead"); err != nil || st != convo.ClaimNew {
			t.Fatalf("the dying replica's claim: %v, %v", st, err)
		}
		c := deliver(live, body)
		return func() {
			if c != http.StatusConflict || calls.Load() != 0 {
				t.Fatalf("redelivery within the lease: %d, %d calls; want 409 and none", c, calls.Load())
			}
		}
	})
	waitExpired(t, rdb, dead.Key("selarti:m-dead"))
	if c := deliver(live, body); c != http.StatusOK || calls.Load() != 1 {
		t.Fatalf("redelivery after the lease: %d, %d calls; want 200 and one", c, calls.Load())
	}
	// The dead replica's late Complete finds the id done; nothing changes.
	if err := dead.Complete(context.Background(), "selarti:m-dead", "dead"); err != nil {
		t.Fatal(err)
	}
	if c := deliver(live, body); c != http.StatusOK || calls.Load() != 1 {
		t.Fatalf("after: %d, %d calls", c, calls.Load())
	}
}

// TestManyIDsOneNewEach: many ids, each claimed at the same instant by
// several goroutines over two stores: exactly one ClaimNew per id.
func TestManyIDsOneNewEach(t *testing.T) {
	const ids, perID = 300, 8
	prefix := testPrefix(t)
	st := [2]*Store{New(sharedClient(t), WithPrefix(prefix)), New(sharedClient(t), WithPrefix(prefix))}
	var news, others [ids]atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for id := range ids {
		for g := range perID {
			wg.Go(func() {
				<-start
				s, err := st[g%2].Claim(context.Background(), "selarti:"+itoa(id), itoa(g))
				switch {
				case err != nil:
					t.Error(err)
				case s == convo.ClaimNew:
					news[id].Add(1)
				default:
					others[id].Add(1)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for id := range ids {
		if news[id].Load() != 1 || others[id].Load() != perID-1 {
			t.Errorf("id %d: %d new, %d other; want 1 and %d", id, news[id].Load(), others[id].Load(), perID-1)
		}
	}
}

// recordingStore notes which ids' Complete failed.
type recordingStore struct {
	convo.DedupStore
	failed sync.Map // id -> struct{}
}

func (r *recordingStore) Complete(ctx context.Context, id, token string) error {
	err := r.DedupStore.Complete(ctx, id, token)
	if err != nil {
		r.failed.Store(id, struct{}{})
	}
	return err
}

// TestRedisRestart: Redis is killed in the middle of a run, then started
// again on the same port and data (appendonly yes, appendfsync always, as a
// deployment that needs this guarantee runs it). A sender retries every
// delivery that did not get 200 (503 while Redis is down, 409 for a claim
// made just as it died, until the lease ends). No message is handled twice,
// every one is handled once, and what was done before the restart is still
// done after it.
func TestRedisRestart(t *testing.T) {
	bin, err := redisBinary()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	srv, err := startRedis(bin, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop(syscall.SIGTERM)

	const n, senders = 600, 12
	const lease = 2 * time.Second
	var calls [n]atomic.Int64
	var total atomic.Int64
	prefix := testPrefix(t)
	// Redis dies in the callback of the n/3-th message, so that the rest
	// of the run certainly meets the outage.
	killed := make(chan struct{})
	var recs [2]*recordingStore
	var hs [2]http.Handler
	for i := range hs {
		rdb := redis.NewClient(&redis.Options{Addr: srv.addr, DialTimeout: 500 * time.Millisecond, MaxRetries: 1})
		t.Cleanup(func() { _ = rdb.Close() })
		recs[i] = &recordingStore{DedupStore: New(rdb, WithPrefix(prefix), WithLease(lease))}
		hs[i] = convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
			id, _ := strconv.Atoi(ev.MessageID)
			calls[id].Add(1)
			if total.Add(1) == n/3 {
				srv.stop(syscall.SIGKILL)
				close(killed)
			}
			time.Sleep(time.Millisecond)
			return nil
		}, convo.WithDedupStore(recs[i]), convo.WithDedupFailClosed())
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = selartiBody(t, itoa(i))
	}

	// The sender: each message once, retried until 200, alternating replicas.
	var unavailable, conflicts atomic.Int64
	deadline := time.Now().Add(60 * time.Second)
	work := make(chan int)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for id := range work {
			retry:
				for try := 0; ; try++ {
					c := deliver(hs[(id+try)%2], bodies[id])
					if c == http.StatusOK {
						break
					}
					switch c {
					case http.StatusServiceUnavailable:
						unavailable.Add(1)
					case http.StatusConflict:
						conflicts.Add(1)
					default:
						t.Errorf("message %d: status %d", id, c)
						break retry // and on with the others, so that the run ends
					}
					if time.Now().After(deadline) {
						t.Errorf("message %d: no 200 in 60s", id)
						break retry
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	var restartErr error
	restarted := make(chan struct{})
	sent := make(chan struct{}) // closed when the senders are done
	go func() {
		defer close(restarted)
		select {
		case <-killed:
		case <-sent: // they failed before the n/3-th message: no outage to end
			return
		}
		// Down until the senders have met it (go-redis's dial retries
		// hold a call for a while), at most 10s.
		down := time.Now()
		for unavailable.Load() < senders && time.Since(down) < 10*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		restartErr = srv.start()
	}()
	for id := range n {
		work <- id
	}
	close(work)
	wg.Wait()
	close(sent)
	<-restarted
	if restartErr != nil {
		t.Fatalf("restarting redis-server: %v", restartErr)
	}

	var lost int
	for i := range recs {
		recs[i].failed.Range(func(any, any) bool { lost++; return true })
	}
	t.Logf("%d messages, %d answers 503, %d answers 409, %d Completes failed while Redis was down",
		n, unavailable.Load(), conflicts.Load(), lost)
	if unavailable.Load() == 0 {
		t.Fatal("no 503: the outage was not seen")
	}
	for id := range n {
		if c := calls[id].Load(); c != 1 {
			t.Errorf("message %d handled %d times; want once", id, c)
		}
	}

	// Every done mark is written: those made before the kill survived the
	// restart, and the Completes that failed while Redis was down were
	// retried by the handlers with their claim's token. A redelivery of
	// each message, on the other replica, is then not handled again.
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr})
	defer rdb.Close()
	store := New(rdb, WithPrefix(prefix))
	for id := range n {
		waitDone(t, rdb, store.Key("selarti:"+itoa(id)))
	}
	for id := range n {
		if c := deliver(hs[(id+1)%2], bodies[id]); c != http.StatusOK {
			t.Errorf("duplicate of message %d: %d", id, c)
		}
	}
	for id := range n {
		if c := calls[id].Load(); c != 1 {
			t.Errorf("message %d handled %d times after the duplicates; want once", id, c)
		}
	}
}
