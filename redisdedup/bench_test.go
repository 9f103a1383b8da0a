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
)

// BenchmarkDeliveries measures deliveries per second through a Selarti
// handler (each delivery a new message id: Claim, the callback, Complete)
// with the in-memory store and with the Redis store on loopback, one
// delivery at a time (serial) and from 32 goroutines (parallel32).
//
//	go test -run '^$' -bench Deliveries -benchtime 2s -count 5
func BenchmarkDeliveries(b *testing.B) {
	for _, st := range []struct {
		name string
		make func(b *testing.B) convo.DedupStore
	}{
		{"memory", func(*testing.B) convo.DedupStore { return convo.NewMemoryDedupStore(10000) }},
		{"redis", func(b *testing.B) convo.DedupStore { return New(sharedClient(b), WithPrefix(testPrefix(b))) }},
	} {
		for _, mode := range []string{"serial", "parallel32"} {
			b.Run("store="+st.name+"/mode="+mode, func(b *testing.B) {
				h := convo.NewSelartiHandler(func(context.Context, *convo.SelartiEvent) error { return nil },
					convo.WithDedupStore(st.make(b)))
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
						if c := deliver(h, next()); c != http.StatusOK {
							b.Fatalf("status %d", c)
						}
					}
				} else {
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
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
			})
		}
	}
}
