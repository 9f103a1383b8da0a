package redisdedup

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
)

// BenchmarkInboxAck measures deliveries acknowledged per second by a
// Selarti handler (ServeHTTP on a recorder, a new message id each):
//
//   - store: today's handler with the Redis dedup store (Claim, the
//     callback in the request, Complete);
//   - inbox: WithInbox on a Redis Inbox (the answer once Add has kept the
//     delivery), nothing running it;
//   - inbox+run: the same while a Run of the inbox (4 workers) runs the
//     kept deliveries against the same Redis;
//   - memory-inbox: WithInbox on convo's MemoryInbox while it runs, for
//     scale.
//
// The callback does nothing. One delivery at a time (serial) and from 32
// goroutines (parallel32):
//
//	go test -run '^$' -bench InboxAck -benchtime 2s -count 5
func BenchmarkInboxAck(b *testing.B) {
	for _, h := range []string{"store", "inbox", "inbox+run", "memory-inbox"} {
		for _, mode := range []string{"serial", "parallel32"} {
			b.Run("handler="+h+"/mode="+mode, func(b *testing.B) {
				fn := func(context.Context, *convo.SelartiEvent) error { return nil }
				var opt convo.HandlerOption
				switch h {
				case "store":
					rdb := sharedClient(b)
					prefix := testPrefix(b)
					b.Cleanup(func() { deletePrefix(b, rdb, prefix) })
					opt = convo.WithDedupStore(New(rdb, WithPrefix(prefix)))
				case "inbox", "inbox+run":
					rdb := sharedClient(b)
					prefix := testPrefix(b)
					b.Cleanup(func() { deletePrefix(b, rdb, prefix) })
					in := NewInbox(rdb, WithPrefix(prefix))
					opt = convo.WithInbox(in)
					if h == "inbox+run" {
						ctx, cancel := context.WithCancel(context.Background())
						ended := make(chan error, 1)
						go func() { ended <- in.Run(ctx) }()
						b.Cleanup(func() { cancel(); <-ended })
					}
				case "memory-inbox":
					// It keeps at most 10,000 deliveries not completed: it runs.
					in := convo.NewMemoryInbox()
					opt = convo.WithInbox(in)
					ctx, cancel := context.WithCancel(context.Background())
					ended := make(chan error, 1)
					go func() { ended <- in.Run(ctx) }()
					b.Cleanup(func() { cancel(); <-ended })
				}
				hd := convo.NewSelartiHandler(fn, opt)
				// The body is the fixture with a new message_id for each
				// delivery: two halves around the id, joined per delivery.
				tmpl := string(selartiBody(b, "\x00"))
				at := strings.Index(tmpl, `\u0000`)
				head, tail := tmpl[:at], tmpl[at+len(`\u0000`):]
				run := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
				var seq atomic.Int64
				next := func() []byte {
					return []byte(head + run + strconv.FormatInt(seq.Add(1), 10) + tail)
				}
				b.ReportAllocs()
				start := time.Now()
				if mode == "serial" {
					for b.Loop() {
						if c := deliver(hd, next()); c != http.StatusOK {
							b.Fatalf("status %d", c)
						}
					}
				} else {
					b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if c := deliver(hd, next()); c != http.StatusOK {
								b.Errorf("status %d", c)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
			})
		}
	}
}

// deletePrefix deletes the keys under prefix (the benchmark keeps tens of
// thousands of deliveries).
func deletePrefix(tb testing.TB, rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	flush := func() {
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				tb.Logf("deleting the benchmark's keys: %v", err)
			}
			keys = keys[:0]
		}
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			flush()
		}
	}
	flush()
}
