package redisdedup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
)

// The fault tests: each row of issue 18's table, on real redis-server
// processes that the test kills, stops (SIGSTOP) and restarts at a known
// point. Senders are modelled as the providers behave: Selarti delivers
// once and never retries; TalkJS retries once, on the other replica, after
// a non-2xx answer or 5 s without one. Each run counts, per id, the
// callbacks (doubled: more than one), the ids no try got a 200 for (lost),
// and the answers that took over 5 s (late); then every id is delivered
// again, and must run nothing.

const (
	talkjsSecret = "sk_test_faults"
	lateAfter    = 5 * time.Second // TalkJS waits 5 s for an answer
)

// provider is a sender model and its handler.
type provider struct {
	name  string
	retry bool // TalkJS retries once
}

var (
	selarti = provider{name: "selarti"}
	talkjs  = provider{name: "talkjs", retry: true}
)

// talkjsBody is a message.sent event with id.
func talkjsBody(id string) []byte {
	return []byte(`{"id":"` + id + `","createdAt":1632919967100,"type":"message.sent","data":{"conversation":{"id":"c1"},` +
		`"message":{"id":"m-` + id + `","conversationId":"c1","type":"UserMessage","senderId":"u1","text":"hi","createdAt":1632919967033},` +
		`"sender":{"id":"u1","name":"Alice"}}}`)
}

// fleet is two replicas of a receiver for one provider, each with its own
// client (made by rdb) and Store; calls counts each id's callbacks.
type fleet struct {
	p      provider
	hs     [2]http.Handler
	calls  []atomic.Int32
	onRun  func(id int) // called in each callback, if set
	body   func(id int) []byte
	prefix string
}

func newFleet(t *testing.T, p provider, n int, rdb func() redis.UniversalClient, sopts []Option, hopts ...convo.HandlerOption) *fleet {
	t.Helper()
	prefix := testPrefix(t)
	f := &fleet{p: p, calls: make([]atomic.Int32, n), prefix: prefix}
	sopts = append([]Option{WithPrefix(prefix)}, sopts...)
	run := func(idText string) error {
		id, _ := strconv.Atoi(strings.TrimPrefix(idText, "evt_"))
		f.calls[id].Add(1)
		if f.onRun != nil {
			f.onRun(id)
		}
		return nil
	}
	for i := range f.hs {
		opts := append([]convo.HandlerOption{convo.WithDedupStore(New(rdb(), sopts...))}, hopts...)
		if p.retry {
			f.hs[i] = convo.NewTalkJSHandler(talkjsSecret, func(_ context.Context, ev *convo.TalkJSEvent) error { return run(ev.ID) }, opts...)
		} else {
			f.hs[i] = convo.NewSelartiHandler(func(_ context.Context, ev *convo.SelartiEvent) error { return run(ev.MessageID) }, opts...)
		}
	}
	if p.retry {
		f.body = func(id int) []byte { return talkjsBody("evt_" + itoa(id)) }
	} else {
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = selartiBody(t, itoa(i))
		}
		f.body = func(id int) []byte { return bodies[id] }
	}
	return f
}

// post delivers body to replica r and returns the status and the time the
// answer took.
func (f *fleet) post(r int, body []byte) (int, time.Duration) {
	req := httptest.NewRequest(http.MethodPost, "/hooks/"+f.p.name, bytes.NewReader(body))
	if f.p.retry {
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		req.Header.Set("X-TalkJS-Timestamp", ts)
		req.Header.Set("X-TalkJS-Signature", convo.SignTalkJSWebhook(talkjsSecret, ts, body))
	}
	rec := httptest.NewRecorder()
	start := time.Now()
	f.hs[r].ServeHTTP(rec, req)
	return rec.Code, time.Since(start)
}

// send delivers id as the provider does: to replica id%2, and for TalkJS
// once more to the other replica after a non-2xx answer or 5 s. It reports
// whether a try got 200 and how many answers were late.
func (f *fleet) send(id int, st *stats) {
	code, took := f.post(id%2, f.body(id))
	st.note(code, took)
	if code != http.StatusOK || took > lateAfter {
		if !f.p.retry {
			st.lost.Add(1)
			return
		}
		code, took = f.post((id+1)%2, f.body(id))
		st.note(code, took)
		if code != http.StatusOK {
			st.lost.Add(1)
		}
	}
}

// stats counts the answers of a run.
type stats struct {
	lost, late atomic.Int32
	mu         sync.Mutex
	statuses   map[int]int
	slowest    time.Duration
}

func (s *stats) note(code int, took time.Duration) {
	if took > lateAfter {
		s.late.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statuses == nil {
		s.statuses = map[int]int{}
	}
	s.statuses[code]++
	s.slowest = max(s.slowest, took)
}

// run delivers ids 0..n-1, one every interval, each in a goroutine of its
// own (as a provider's deliveries arrive), and calls fault once the n/3-th
// delivery has started. It returns once every delivery has ended.
func (f *fleet) run(n int, interval time.Duration, fault func()) *stats {
	st := &stats{}
	var wg sync.WaitGroup
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for id := range n {
		if id == n/3 && fault != nil {
			fault()
		}
		wg.Go(func() { f.send(id, st) })
		<-tick.C
	}
	wg.Wait()
	return st
}

// check asserts the run's counts, then waits until each id is done in
// Redis (the handlers' retried writes included) and delivers every id
// again: nothing may run.
func (f *fleet) check(t *testing.T, st *stats, rdb redis.UniversalClient, key func(id string) string) {
	t.Helper()
	var doubled, never int
	for id := range f.calls {
		switch c := f.calls[id].Load(); {
		case c > 1:
			doubled++
		case c == 0:
			never++
		}
	}
	t.Logf("%s: %d ids, %d lost, %d doubled, %d never run, %d late (slowest answer %v); statuses %v",
		f.p.name, len(f.calls), st.lost.Load(), doubled, never, st.late.Load(), st.slowest.Round(time.Millisecond), st.statuses)
	if st.lost.Load() != 0 || doubled != 0 || never != 0 || st.late.Load() != 0 {
		t.Fatalf("want none lost, doubled, never run or late")
	}
	for id := range f.calls {
		waitDone(t, rdb, key(f.p.name+":"+f.idText(id)))
	}
	before := make([]int32, len(f.calls))
	for id := range f.calls {
		before[id] = f.calls[id].Load()
	}
	again := &stats{}
	for id := range f.calls {
		f.send(id, again)
	}
	for id := range f.calls {
		if f.calls[id].Load() != before[id] {
			t.Errorf("id %d ran again on its redelivery", id)
		}
	}
	if again.lost.Load() != 0 {
		t.Errorf("redelivery: %d not answered 200: %v", again.lost.Load(), again.statuses)
	}
}

func (f *fleet) idText(id int) string {
	if f.p.retry {
		return "evt_" + itoa(id)
	}
	return itoa(id)
}

// Row 6: a Cluster of 3 masters and 3 replicas, the default ClusterClient
// on each replica, a master killed a third into 1,000 deliveries; TalkJS's
// sender (a retry after a 503). The store reloads the slot map on the
// refused connections and CLUSTERDOWN answers and tries again within the
// 2 s budget.
func TestFaultClusterMasterKilled(t *testing.T) {
	c := startTestCluster(t)
	const n = 1000
	f := newFleet(t, talkjs, n, func() redis.UniversalClient { return clusterClient(t, c.addrs()) }, nil)
	victim := masterOf(t, c, "convo:")
	st := f.run(n, 4*time.Millisecond, func() { victim.stop(syscall.SIGKILL) })
	check := clusterClient(t, c.addrs())
	f.check(t, st, check, New(check, WithPrefix(prefixOf(f))).Key)
}

// Row 7: a Sentinel failover, Selarti's sender (one try, never again), the
// default FailoverClient on each replica; the master killed a third into
// 1,000 deliveries. The Selarti handler fails open by default and records
// what it handled, so nothing is lost and nothing runs twice.
func TestFaultSentinelFailover(t *testing.T) {
	g := startSentinelGroup(t)
	const n = 1000
	f := newFleet(t, selarti, n, func() redis.UniversalClient { return g.client(t) }, []Option{WithWaitReplicas(1, 100*time.Millisecond)})
	st := f.run(n, 4*time.Millisecond, func() { g.master.stop(syscall.SIGKILL) })
	// The dead master's host comes back: the sentinel makes it a replica
	// of the new master, and the waits for a replica pass again.
	if err := g.master.start(); err != nil {
		t.Fatal(err)
	}
	check := g.client(t)
	f.check(t, st, check, New(check, WithPrefix(prefixOf(f))).Key)
}

// Row 4: fail-open with Redis down, then back, 1,000 ids over two
// replicas; each id is delivered twice to its replica during the outage
// (run once) and once more to the other replica after it (run never).
func TestFaultFailOpenRecords(t *testing.T) {
	bin := requireBinary(t, "redis-server")
	srv, err := startRedis(bin, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop(syscall.SIGTERM)
	const n = 1000
	f := newFleet(t, selarti, n, func() redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: srv.addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}, nil, convo.WithDedupFailOpen(), convo.WithDedupTimeout(300*time.Millisecond))
	srv.stop(syscall.SIGKILL)
	st := f.run(n, time.Millisecond/10, nil)
	dup := f.run(n, time.Millisecond/10, nil) // the same replica again, while Redis is down
	for id := range f.calls {
		if c := f.calls[id].Load(); c != 1 {
			t.Fatalf("id %d ran %d times during the outage", id, c)
		}
	}
	st.statuses[http.StatusOK] += dup.statuses[http.StatusOK]
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	check := redis.NewClient(&redis.Options{Addr: srv.addr})
	defer check.Close()
	f.p = selarti
	// Redelivered to the other replica: f.check sends to id%2, so shift.
	f.hs[0], f.hs[1] = f.hs[1], f.hs[0]
	f.check(t, st, check, New(check, WithPrefix(prefixOf(f))).Key)
}

// Row 5: Redis hangs (SIGSTOP) during Complete: the answer comes within
// the 2 s budget, not after go-redis's read timeout × its retries; the
// Complete is retried once Redis runs again, so a redelivery to the other
// replica runs nothing.
func TestFaultRedisStoppedDuringComplete(t *testing.T) {
	bin := requireBinary(t, "redis-server")
	srv, err := startRedis(bin, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop(syscall.SIGKILL)
	f := newFleet(t, talkjs, 1, func() redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: srv.addr})
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}, nil)
	var stopped atomic.Bool
	f.onRun = func(int) {
		if !stopped.Swap(true) {
			_ = srv.cmd.Process.Signal(syscall.SIGSTOP)
		}
	}
	st := &stats{}
	f.send(0, st)
	_ = srv.cmd.Process.Signal(syscall.SIGCONT)
	check := redis.NewClient(&redis.Options{Addr: srv.addr})
	defer check.Close()
	f.check(t, st, check, New(check, WithPrefix(prefixOf(f))).Key)
}

// Row 2: a callback longer than the lease on replica A; its redelivery to
// B meanwhile is refused (409), not run: the handler renews the claim.
func TestFaultLongCallbackRenewed(t *testing.T) {
	rdb := sharedClient(t)
	const lease = time.Second
	counting := &renewCounter{}
	f := newFleet(t, selarti, 1, func() redis.UniversalClient { return rdb }, []Option{WithLease(lease)})
	// A replica whose store counts its renewals.
	inner := New(rdb, WithPrefix(prefixOf(f)), WithLease(lease))
	counting.Store = inner
	started, release := make(chan struct{}), make(chan struct{})
	f.hs[0] = convo.NewSelartiHandler(func(context.Context, *convo.SelartiEvent) error {
		f.calls[0].Add(1)
		close(started)
		<-release
		return nil
	}, convo.WithDedupStore(counting))
	done := make(chan int)
	go func() { c, _ := f.post(0, f.body(0)); done <- c }()
	<-started
	for counting.n.Load() < 4 { // four renewals: more than a lease
		time.Sleep(lease / 10)
	}
	if c, _ := f.post(1, f.body(0)); c != http.StatusConflict {
		t.Fatalf("redelivery to B during A's callback: %d, want 409", c)
	}
	close(release)
	if c := <-done; c != http.StatusOK {
		t.Fatalf("A: %d", c)
	}
	f.check(t, &stats{}, rdb, inner.Key)
}

type renewCounter struct {
	*Store
	n atomic.Int32
}

func (r *renewCounter) Renew(ctx context.Context, id, token string) error {
	r.n.Add(1)
	return r.Store.Renew(ctx, id, token)
}

// Row 3 (and issue 20's item 7): the reply to a claim lost on the wire
// after the claim ran in Redis (every claim's reply is cut while the
// proxy is armed, so go-redis's and the store's own retries meet it too).
// The handler releases the claim with its token: TalkJS's retry on the
// other replica is handled, not refused for the lease; Selarti's one try
// is handled fail-open and recorded.
func TestFaultLostClaimReply(t *testing.T) {
	for _, p := range []provider{talkjs, selarti} {
		t.Run(p.name, func(t *testing.T) {
			if sharedAddr == "" {
				skipOrFail(t, skipReason)
			}
			proxy := newCutProxy(t, sharedAddr, claimScript.Hash())
			f := newFleet(t, p, 1, func() redis.UniversalClient {
				rdb := redis.NewClient(&redis.Options{Addr: proxy.addr})
				t.Cleanup(func() { _ = rdb.Close() })
				return rdb
			}, nil, convo.WithDedupTimeout(500*time.Millisecond))
			check := sharedClient(t)
			if err := claimScript.Load(context.Background(), check).Err(); err != nil {
				t.Fatal(err)
			}
			proxy.armed.Store(true)
			st := &stats{}
			code, took := f.post(0, f.body(0))
			st.note(code, took)
			proxy.armed.Store(false)
			if proxy.cut.Load() == 0 {
				t.Fatal("the proxy cut no reply")
			}
			if v, _ := check.Get(context.Background(), New(check, WithPrefix(prefixOf(f))).Key(p.name+":"+f.idText(0))).Result(); p == talkjs && v != "" {
				t.Fatalf("after the 503, the key holds %q: the claim was not released", v)
			}
			t.Logf("first try: %d after %v, %d replies cut", code, took.Round(time.Millisecond), proxy.cut.Load())
			switch {
			case p == talkjs && code == http.StatusServiceUnavailable:
				code, took = f.post(1, f.body(0)) // TalkJS's one retry
				st.note(code, took)
				if code != http.StatusOK {
					t.Fatalf("TalkJS's retry: %d, want 200", code)
				}
			case code != http.StatusOK:
				t.Fatalf("first try: %d", code)
			}
			f.check(t, st, check, New(check, WithPrefix(prefixOf(f))).Key)
		})
	}
}

// cutProxy forwards TCP to Redis; while armed, it lets each EVALSHA of the
// script sha through, throws its reply away and cuts the connection.
type cutProxy struct {
	addr  string
	sha   []byte
	armed atomic.Bool
	cut   atomic.Int32
}

func newCutProxy(t *testing.T, target, sha string) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: l.Addr().String(), sha: []byte(sha)}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Go(func() { p.pipe(c, s) })
		}
	})
	return p
}

// pipe copies client commands to the server and server replies to the
// client, cutting the connection instead of the reply of an armed claim.
func (p *cutProxy) pipe(c, s net.Conn) {
	defer c.Close()
	defer s.Close()
	cutting := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				select {
				case <-cutting: // the reply of the claim: thrown away
					p.cut.Add(1)
					c.Close()
					s.Close()
					return
				default:
				}
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				c.Close()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if p.armed.Load() && bytes.Contains(buf[:n], p.sha) {
				cutting <- struct{}{}
			}
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Row 8: a maxmemory-policy that can evict the done marks is logged as a
// warning naming it on the first call; noeviction is not.
func TestEvictionPolicyWarns(t *testing.T) {
	rdb := sharedClient(t)
	ctx := context.Background()
	old, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.ConfigSet(ctx, "maxmemory-policy", old["maxmemory-policy"])
	for _, c := range []struct {
		policy string
		warn   bool
	}{{"allkeys-lru", true}, {"volatile-ttl", true}, {"noeviction", false}} {
		if err := rdb.ConfigSet(ctx, "maxmemory-policy", c.policy).Err(); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		s := New(rdb, WithPrefix(testPrefix(t)), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if _, err := s.Claim(ctx, "selarti:1", "t"); err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "maxmemory-policy="+c.policy)
		if got != c.warn {
			t.Errorf("%s: warned %v, want %v; logs: %s", c.policy, got, c.warn, logs.String())
		}
		logs.Reset()
		_, _ = s.Claim(ctx, "selarti:2", "t")
		if logs.Len() != 0 {
			t.Errorf("%s: the check ran again: %s", c.policy, logs.String())
		}
	}
}

// A single-node client of a Cluster node is refused with ErrClusterNode
// (not 2 ids in 3 failing on MOVED); the handler answers 503 (fail-closed).
func TestClusterNodeAddressRefused(t *testing.T) {
	addrs := clusterAddrs(t)
	rdb := redis.NewClient(&redis.Options{Addr: addrs[0]})
	defer rdb.Close()
	s := New(rdb, WithPrefix(testPrefix(t)))
	for i := range 3 {
		if _, err := s.Claim(context.Background(), "selarti:"+itoa(i), "t"); !errors.Is(err, ErrClusterNode) {
			t.Fatalf("claim %d: %v, want ErrClusterNode", i, err)
		}
	}
	h := convo.NewSelartiHandler(func(context.Context, *convo.SelartiEvent) error { return nil },
		convo.WithDedupStore(s), convo.WithDedupFailClosed())
	if c := deliver(h, selartiBody(t, "m1")); c != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", c)
	}
}

// Sentinel and Cluster with their default clients: 200 ids over two
// replicas, each run once; a done mark waited for (WithWaitReplicas) is on
// the replica when Complete returns.
func TestTopologiesServe(t *testing.T) {
	sentinel := []string{sentinelAddr(t)}
	nodes := clusterAddrs(t)
	for _, c := range []struct {
		name string
		rdb  func() redis.UniversalClient
	}{
		{"sentinel", func() redis.UniversalClient { return failoverClient(t, sentinel[0]) }},
		{"cluster", func() redis.UniversalClient { return clusterClient(t, nodes) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n = 200
			f := newFleet(t, talkjs, n, c.rdb, []Option{WithWaitReplicas(1, time.Second)})
			st := f.run(n, time.Millisecond/10, nil)
			check := c.rdb()
			f.check(t, st, check, New(check, WithPrefix(prefixOf(f))).Key)
		})
	}
	t.Run("wait", func(t *testing.T) {
		rdb := failoverClient(t, sentinel[0])
		s := New(rdb, WithPrefix(testPrefix(t)), WithWaitReplicas(1, time.Second))
		ctx := context.Background()
		if _, err := s.Claim(ctx, "selarti:w", "t"); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, "selarti:w", "t"); err != nil {
			t.Fatal(err)
		}
		replica := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: sentinelMaster, SentinelAddrs: sentinel, ReplicaOnly: true})
		defer replica.Close()
		if v, err := replica.Get(ctx, s.Key("selarti:w")).Result(); v != "done" {
			t.Fatalf("on the replica: %q, %v; want done", v, err)
		}
		var logs bytes.Buffer
		s2 := New(rdb, WithPrefix(testPrefix(t)), WithWaitReplicas(2, 50*time.Millisecond), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if err := s2.Complete(ctx, "selarti:w", "t"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "not acknowledged by enough replicas") {
			t.Fatalf("no warning with 2 replicas asked of 1: %s", logs.String())
		}
	})
}

// masterOf returns the node of c that is master of key's slot.
func masterOf(t *testing.T, c *cluster, key string) *redisServer {
	t.Helper()
	rdb := clusterClient(t, c.addrs())
	m, err := rdb.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		if n.addr == m.Options().Addr {
			return n
		}
	}
	t.Fatalf("no node at %s", m.Options().Addr)
	return nil
}

// prefixOf is the key prefix the fleet's stores use.
func prefixOf(f *fleet) string { return f.prefix }

// sentinelAddr is CONVO_REDIS_SENTINEL_ADDR, or the sentinel of a group
// started for t.
func sentinelAddr(t *testing.T) string {
	if v := envTopologyOrNil(t, "CONVO_REDIS_SENTINEL_ADDR"); v != nil {
		return v[0]
	}
	return startSentinelGroup(t).sentinel.addr
}

// clusterAddrs is CONVO_REDIS_CLUSTER_ADDRS, or the nodes of a Cluster
// started for t.
func clusterAddrs(t *testing.T) []string {
	if v := envTopologyOrNil(t, "CONVO_REDIS_CLUSTER_ADDRS"); v != nil {
		return v
	}
	return startTestCluster(t).addrs()
}
