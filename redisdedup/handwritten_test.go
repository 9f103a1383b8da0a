package redisdedup

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
)

// The hand-written peer of convo.NewSelartiHandler: what a careful Go
// developer writes with net/http, encoding/json and go-redis for the same
// checks: POST only, a 1 MiB body limit, the JSON decoded into strings,
// wh_type and message_type checked, the message id claimed before the
// callback (409 while a first delivery runs, 200 without a call once it
// is done), marked done after it, released when it fails.

// plainEvent is Selarti's "All messages" body, every field a string.
type plainEvent struct {
	ChannelID      string `json:"channel_id"`
	Close          string `json:"close"`
	CompanyID      string `json:"company_id"`
	Contacts       string `json:"contacts"`
	ExternalChatID string `json:"external_chat_id"`
	GetContact     string `json:"get_contact"`
	Interest       string `json:"interest"`
	IsBot          string `json:"is_bot"`
	ManagerID      string `json:"manager_id"`
	MessageID      string `json:"message_id"`
	MessageText    string `json:"message_text"`
	MessageType    string `json:"message_type"`
	Operator       string `json:"operator"`
	PanelURL       string `json:"panel_url"`
	ShareURL       string `json:"share_url"`
	Success        string `json:"success"`
	TaskID         string `json:"task_id"`
	ThreadID       string `json:"thread_id"`
	Title          string `json:"title"`
	WhType         string `json:"wh_type"`
}

// plainClaims is the hand-written dedup: claim, done, release.
type plainClaims interface {
	claim(ctx context.Context, id string) (state string, err error) // "new", "running", "done"
	done(ctx context.Context, id string) error
	release(ctx context.Context, id string) error
}

// plainQueue is the hand-written inbox: keep the delivery (once per id)
// for a worker to run later.
type plainQueue interface {
	add(ctx context.Context, id string, body []byte) error
}

// plainInboxHandler is the hand-written handler that answers once the
// delivery is kept, before it is handled: the same checks, then add.
func plainInboxHandler(q plainQueue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		var ev plainEvent
		if err := json.Unmarshal(body, &ev); err != nil || ev.MessageID == "" {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		if ev.WhType != "all_messages" || (ev.MessageType != "bot" && ev.MessageType != "operator") {
			w.WriteHeader(http.StatusOK)
			return
		}
		if err := q.add(r.Context(), "selarti:"+ev.MessageID, body); err != nil {
			http.Error(w, "inbox unavailable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// memoryQueue is a map of the ids seen and a slice of bodies, under a
// mutex.
type memoryQueue struct {
	mu     sync.Mutex
	seen   map[string]bool
	bodies [][]byte
}

func (q *memoryQueue) add(_ context.Context, id string, body []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.seen[id] {
		q.seen[id] = true
		q.bodies = append(q.bodies, body)
	}
	return nil
}

// redisQueue keeps a delivery with one script: the id marked seen (SET
// NX, with the retention) and the body pushed on a list when it is new.
type redisQueue struct {
	rdb    redis.UniversalClient
	prefix string
}

var pushScript = redis.NewScript(`
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
`)

func (q *redisQueue) add(ctx context.Context, id string, body []byte) error {
	return pushScript.Run(ctx, q.rdb, []string{q.prefix + "{q}:seen:" + id, q.prefix + "{q}:queue"},
		body, DefaultRetention.Milliseconds()).Err()
}

// plainHandler is the hand-written handler.
func plainHandler(claims plainClaims, fn func(context.Context, *plainEvent) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		var ev plainEvent
		if err := json.Unmarshal(body, &ev); err != nil || ev.MessageID == "" {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		if ev.WhType != "all_messages" || (ev.MessageType != "bot" && ev.MessageType != "operator") {
			w.WriteHeader(http.StatusOK)
			return
		}
		ctx := r.Context()
		state, err := claims.claim(ctx, "selarti:"+ev.MessageID)
		switch {
		case err != nil:
			http.Error(w, "dedup store unavailable", http.StatusServiceUnavailable)
			return
		case state == "done":
			w.WriteHeader(http.StatusOK)
			return
		case state == "running":
			http.Error(w, "delivery in progress", http.StatusConflict)
			return
		}
		if err := fn(ctx, &ev); err != nil {
			_ = claims.release(context.WithoutCancel(ctx), "selarti:"+ev.MessageID)
			http.Error(w, "handler failed", http.StatusInternalServerError)
			return
		}
		_ = claims.done(context.WithoutCancel(ctx), "selarti:"+ev.MessageID)
		w.WriteHeader(http.StatusOK)
	})
}

// memoryClaims is a map under a mutex (unbounded: it is a benchmark).
type memoryClaims struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memoryClaims) claim(_ context.Context, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[id]; ok {
		return st, nil
	}
	s.m[id] = "running"
	return "new", nil
}

func (s *memoryClaims) done(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = "done"
	return nil
}

func (s *memoryClaims) release(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// redisClaims is SET NX with a lease, then GET on a refusal; SET done with
// the retention; DEL on release.
type redisClaims struct {
	rdb    redis.UniversalClient
	prefix string
}

func (s *redisClaims) claim(ctx context.Context, id string) (string, error) {
	ok, err := s.rdb.SetNX(ctx, s.prefix+id, "running", DefaultLease).Result()
	if err != nil || ok {
		return "new", err
	}
	v, err := s.rdb.Get(ctx, s.prefix+id).Result()
	if errors.Is(err, redis.Nil) {
		return s.claim(ctx, id) // it expired meanwhile
	}
	return v, err
}

func (s *redisClaims) done(ctx context.Context, id string) error {
	return s.rdb.Set(ctx, s.prefix+id, "done", DefaultRetention).Err()
}

func (s *redisClaims) release(ctx context.Context, id string) error {
	return s.rdb.Del(ctx, s.prefix+id).Err()
}

// TestPlainHandlerAgrees: the hand-written handler answers as the SDK's
// does (a new delivery 200 with one call, its redelivery 200 without, a
// GET 405, a bad body 400), so that the benchmark compares the same work.
func TestPlainHandlerAgrees(t *testing.T) {
	var sdkCalls, plainCalls atomic.Int64
	prefix := testPrefix(t)
	handlers := map[string]http.Handler{
		"sdk": convo.NewSelartiHandler(func(context.Context, *convo.SelartiEvent) error { sdkCalls.Add(1); return nil },
			convo.WithDedupStore(New(sharedClient(t), WithPrefix(prefix+"sdk:")))),
		"plain": plainHandler(&redisClaims{rdb: sharedClient(t), prefix: prefix + "plain:"},
			func(context.Context, *plainEvent) error { plainCalls.Add(1); return nil }),
	}
	body := selartiBody(t, "1731336491876x582725124419040400")
	for name, h := range handlers {
		if c := deliver(h, body); c != http.StatusOK {
			t.Fatalf("%s: first delivery: %d", name, c)
		}
		if c := deliver(h, body); c != http.StatusOK {
			t.Fatalf("%s: redelivery: %d", name, c)
		}
		if c := deliver(h, []byte(`{`)); c != http.StatusBadRequest {
			t.Fatalf("%s: bad body: %d", name, c)
		}
	}
	if sdkCalls.Load() != 1 || plainCalls.Load() != 1 {
		t.Fatalf("calls: sdk %d, plain %d; want 1 each", sdkCalls.Load(), plainCalls.Load())
	}
}

// BenchmarkHandlers: a Selarti delivery (a new message id each time:
// claim, the callback, done) through convo.NewSelartiHandler and through
// the hand-written handler, with the memory store and with Redis on
// loopback, and the inbox's acknowledgement (WithInbox: the delivery kept,
// answered before it runs) with the memory and the Redis inbox, serially
// and from 32 goroutines; bench/README.md has the table.
//
//	go test -run '^$' -bench Handlers -count 6
func BenchmarkHandlers(b *testing.B) {
	nop := func(context.Context, *convo.SelartiEvent) error { return nil }
	plainNop := func(context.Context, *plainEvent) error { return nil }
	for _, st := range []struct {
		name string
		sdk  func(b *testing.B) http.Handler
		nh   func(b *testing.B) http.Handler
	}{
		{"memory",
			func(*testing.B) http.Handler {
				return convo.NewSelartiHandler(nop, convo.WithDedupStore(convo.NewMemoryDedupStore(1<<20)))
			},
			func(*testing.B) http.Handler {
				return plainHandler(&memoryClaims{m: map[string]string{}}, plainNop)
			}},
		{"redis",
			func(b *testing.B) http.Handler {
				return convo.NewSelartiHandler(nop, convo.WithDedupStore(New(sharedClient(b), WithPrefix(testPrefix(b)))))
			},
			func(b *testing.B) http.Handler {
				return plainHandler(&redisClaims{rdb: sharedClient(b), prefix: testPrefix(b)}, plainNop)
			}},
		// WithInbox: the answer once the delivery is kept, before any run
		// (no Run here: what is measured is the acknowledgement).
		{"memory-inbox",
			func(*testing.B) http.Handler {
				in := convo.NewMemoryInbox(convo.WithInboxCapacity(1 << 22))
				return convo.NewSelartiHandler(nop, convo.WithInbox(in))
			},
			func(*testing.B) http.Handler {
				return plainInboxHandler(&memoryQueue{seen: map[string]bool{}})
			}},
		{"redis-inbox",
			func(b *testing.B) http.Handler {
				in := NewInbox(sharedClient(b), WithPrefix(testPrefix(b)))
				return convo.NewSelartiHandler(nop, convo.WithInbox(in))
			},
			func(b *testing.B) http.Handler {
				return plainInboxHandler(&redisQueue{rdb: sharedClient(b), prefix: testPrefix(b)})
			}},
	} {
		for _, hd := range []struct {
			name string
			make func(b *testing.B) http.Handler
		}{{"nethttp", st.nh}, {"sdk", st.sdk}} {
			for _, mode := range []string{"serial", "parallel32"} {
				b.Run("store="+st.name+"/client="+hd.name+"/mode="+mode, func(b *testing.B) {
					benchDeliveries(b, hd.make(b), mode == "parallel32")
				})
			}
		}
	}
}

// benchDeliveries delivers the fixture to h with a new message id each
// time, serially or from 32 goroutines.
func benchDeliveries(b *testing.B, h http.Handler, parallel bool) {
	tmpl := string(selartiBody(b, "\x00"))
	at := strings.Index(tmpl, `\u0000`)
	head, tail := tmpl[:at], tmpl[at+len(`\u0000`):]
	run := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	var seq atomic.Int64
	next := func() []byte {
		return []byte(head + run + strconv.FormatInt(seq.Add(1), 10) + tail)
	}
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			if c := deliver(h, next()); c != http.StatusOK {
				b.Fatalf("status %d", c)
			}
		}
		return
	}
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c := deliver(h, next()); c != http.StatusOK {
				b.Errorf("status %d", c)
				return
			}
		}
	})
}

// TestPlainInboxHandlerKeepsOnce: the hand-written inbox handler keeps a
// delivery once and answers 200 to its redelivery, as WithInbox does.
func TestPlainInboxHandlerKeepsOnce(t *testing.T) {
	prefix := testPrefix(t)
	rdb := sharedClient(t)
	mem := &memoryQueue{seen: map[string]bool{}}
	body := selartiBody(t, "1731336491876x582725124419040400")
	for _, h := range []http.Handler{plainInboxHandler(mem), plainInboxHandler(&redisQueue{rdb: rdb, prefix: prefix})} {
		for range 2 {
			if c := deliver(h, body); c != http.StatusOK {
				t.Fatalf("status %d", c)
			}
		}
	}
	if len(mem.bodies) != 1 {
		t.Fatalf("memory queue holds %d bodies, want 1", len(mem.bodies))
	}
	if n, err := rdb.LLen(context.Background(), prefix+"{q}:queue").Result(); err != nil || n != 1 {
		t.Fatalf("redis queue holds %d bodies (%v), want 1", n, err)
	}
}
