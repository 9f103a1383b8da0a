//go:build convo_benchoff

package bench

import (
	"cmp"
	"net/http"
	"os"
	"testing"

	"github.com/convokit/convo"
)

// BenchmarkGuarantees runs the SDK's Upsert and SendMessage, in memory and
// serially over loopback, in the build that can switch the pipeline's
// mechanisms off (go test -tags convo_benchoff; never a shipped build).
// CONVO_BENCH_OFF names what is off (deadline, retry, redirect, cap;
// comma-separated), and the benchmark is named after it, so that
// run.sh's rounds of each setting line up in one benchstat table:
//
//	CONVO_BENCH_OFF=deadline ./bench-off.test -test.bench Guarantees -test.benchmem
func BenchmarkGuarantees(b *testing.B) {
	off := "off=" + cmp.Or(os.Getenv("CONVO_BENCH_OFF"), "none")
	mem, err := convo.NewClient(
		convo.WithTalkJS(appID, secretKey), convo.WithTalkJSURL("http://127.0.0.1:1"),
		convo.WithHTTPClient(&http.Client{Transport: cannedTransport{}}),
	)
	if err != nil {
		b.Fatal(err)
	}
	srv := newServer(b, &fakeAPI{})
	loop := newSDK(b, srv.URL)
	for _, tr := range []struct {
		name string
		c    *convo.Client
	}{{"inmemory", mem}, {"loopback", loop}} {
		t := &trio{sdk: tr.c}
		for _, op := range []struct {
			name string
			ops  func(*trio) []clientOp
		}{{"Upsert", upsertOps}, {"SendMessage", sendMessageOps}} {
			for _, c := range op.ops(t) {
				if c.name == "sdk" {
					b.Run("op="+op.name+"/transport="+tr.name+"/"+off, func(b *testing.B) { runSerial(b, c.op) })
				}
			}
		}
	}
}
