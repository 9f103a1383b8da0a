// Package bench compares the convo SDK with a hand-written net/http client
// and with resty, on one loopback server per benchmark. See README.md.
package bench

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/convokit/convo"
)

// clientOp is one call of one client, ready to run.
type clientOp struct {
	name string // "nethttp", "sdk", "resty"
	op   func(ctx context.Context) error
}

// targetGoroutines is how many goroutines share one client in the
// parallel runs.
const targetGoroutines = 32

// parallelism is the b.SetParallelism value that gives about
// targetGoroutines goroutines (GOMAXPROCS × p).
func parallelism() int {
	procs := runtime.GOMAXPROCS(0)
	return max(1, (targetGoroutines+procs-1)/procs)
}

// runClients runs each op serially and from targetGoroutines goroutines,
// as Benchmark…/client=<name>/mode=serial|parallel32, so that
// `benchstat -col /client` sets the clients side by side.
func runClients(b *testing.B, ops []clientOp) {
	for _, c := range ops {
		b.Run("client="+c.name, func(b *testing.B) {
			b.Run("mode=serial", func(b *testing.B) { runSerial(b, c.op) })
			b.Run("mode=parallel32", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(parallelism())
				cpu := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						if err := c.op(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportCPU(b, cpu)
			})
		})
	}
}

// runSerial runs op in a b.Loop, one call at a time, reporting its
// allocations and CPU time.
func runSerial(b *testing.B, op func(ctx context.Context) error) {
	ctx := context.Background()
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if err := op(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// reportCPU reports the process CPU time used since start, per op: the
// client's and the in-process server's.
func reportCPU(b *testing.B, start time.Duration) {
	if d := processCPU() - start; start > 0 && b.N > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// newSDK is the SDK as a user would set it up, pointed at srv for both
// providers.
func newSDK(tb testing.TB, base string) *convo.Client {
	tb.Helper()
	c, err := convo.NewClient(
		convo.WithTalkJS(appID, secretKey),
		convo.WithTalkJSURL(base),
		convo.WithTalqui(tenantID, convo.PluginConnection{ID: connID, Token: connToken}),
		convo.WithTalquiURL(base),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// The three clients, on one server.
type trio struct {
	nh  *netHTTPClient
	rs  *restyClient
	sdk *convo.Client
}

func newTrio(tb testing.TB, base string) *trio {
	t := &trio{nh: newNetHTTPClient(base), rs: newRestyClient(base), sdk: newSDK(tb, base)}
	tb.Cleanup(func() { t.nh.close(); t.rs.close() })
	return t
}

const welcome = "Hello! Your order is ready for pickup."

// BenchmarkSessionStart: POST /tenants/{t}/sessions with a WhatsApp
// Business body, answered {"contact":…,"session":…,"message":…}.
func BenchmarkSessionStart(b *testing.B) {
	srv := newServer(b, &fakeAPI{})
	runClients(b, sessionStartOps(newTrio(b, srv.URL)))
}

func TestAgreeSessionStart(t *testing.T) { agree(t, sessionStartOps) }

func sessionStartOps(t *trio) []clientOp {
	return []clientOp{
		{"nethttp", func(ctx context.Context) error {
			s, err := t.nh.startSession(ctx, &nhSessionStart{
				Channel: convo.ChannelWhatsAppBusiness, PluginConnectionID: connID, ContactFullName: "Maria",
				ContactExternalID: phoneWire, MessageKey: "text", MessageValue: welcome,
			})
			return checkSession(err, s != nil && s.Session != nil && s.Session.SessionID != "")
		}},
		{"sdk", func(ctx context.Context) error {
			s, err := t.sdk.Sessions.Start(ctx, convo.WhatsAppBusiness{Phone: phone, Name: "Maria", Text: welcome})
			return checkSession(err, s != nil && s.Session != nil && s.Session.SessionID != "")
		}},
		{"resty", func(ctx context.Context) error {
			s, err := t.rs.startSession(ctx, &nhSessionStart{
				Channel: convo.ChannelWhatsAppBusiness, PluginConnectionID: connID, ContactFullName: "Maria",
				ContactExternalID: phoneWire, MessageKey: "text", MessageValue: welcome,
			})
			return checkSession(err, s != nil && s.Session != nil && s.Session.SessionID != "")
		}},
	}
}

var errBadAnswer = errors.New("answer not decoded as expected")

func checkSession(err error, ok bool) error {
	if err == nil && !ok {
		err = errBadAnswer
	}
	return err
}
