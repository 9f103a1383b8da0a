package bench

import (
	"context"
	"net/http"
	"testing"

	"github.com/convokit/convo"
)

// noopObserver has every hook set, each doing nothing: what the pipeline
// itself pays to observe a call (the bookkeeping, the clock, the events).
var noopObserver = convo.Observer{
	CallStart:    func(ctx context.Context, _ convo.CallInfo) context.Context { return ctx },
	AttemptStart: func(ctx context.Context, _ convo.AttemptInfo) context.Context { return ctx },
	AttemptDone:  func(context.Context, convo.AttemptResult) {},
	CallDone:     func(context.Context, convo.CallResult) {},
}

// observedSDK is newSDK with noopObserver; hc, when set, is its HTTP client.
func observedSDK(tb testing.TB, base string, hc *http.Client) *convo.Client {
	tb.Helper()
	opts := []convo.Option{
		convo.WithTalkJS(appID, secretKey), convo.WithTalkJSURL(base),
		convo.WithTalqui(tenantID, convo.PluginConnection{ID: connID, Token: connToken}), convo.WithTalquiURL(base),
		convo.WithObserver(noopObserver),
	}
	if hc != nil {
		opts = append(opts, convo.WithHTTPClient(hc))
	}
	c, err := convo.NewClient(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// observerOps is ops (nethttp, sdk, resty) with resty left out and the
// SDK with a no-op Observer added as "sdk-observer".
func observerOps(t *trio, observed *convo.Client, ops func(*trio) []clientOp) []clientOp {
	var out []clientOp
	for _, c := range ops(t) {
		if c.name != "resty" {
			out = append(out, c)
		}
	}
	o := *t
	o.sdk = observed
	for _, c := range ops(&o) {
		if c.name == "sdk" {
			out = append(out, clientOp{"sdk-observer", c.op})
		}
	}
	return out
}

// BenchmarkObserver: Upsert and SendMessage by net/http, the SDK without
// an Observer, and the SDK with a no-op Observer; in memory (the clients'
// own cost) and over loopback (serial).
func BenchmarkObserver(b *testing.B) {
	calls := []struct {
		name string
		ops  func(*trio) []clientOp
	}{{"Upsert", upsertOps}, {"SendMessage", sendMessageOps}}
	mem := inMemoryTrio(b)
	memObserved := observedSDK(b, "http://127.0.0.1:1", &http.Client{Transport: cannedTransport{}})
	srv := newServer(b, &fakeAPI{})
	loop := newTrio(b, srv.URL)
	loopObserved := observedSDK(b, srv.URL, nil)
	for _, call := range calls {
		for _, where := range []struct {
			name string
			ops  []clientOp
		}{
			{"inmemory", observerOps(mem, memObserved, call.ops)},
			{"loopback", observerOps(loop, loopObserved, call.ops)},
		} {
			b.Run("op="+call.name+"/on="+where.name, func(b *testing.B) {
				for _, c := range where.ops {
					b.Run("client="+c.name, func(b *testing.B) { runSerial(b, c.op) })
				}
			})
		}
	}
}
