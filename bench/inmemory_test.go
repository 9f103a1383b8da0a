package bench

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/convokit/convo"
)

// cannedTransport answers every request in memory with the fake API's
// canned body: no sockets, no server. It leaves only the clients' own work
// (building the request, headers, JSON both ways, the SDK's pipeline), so
// the differences between clients stand out of the loopback round trip.
type cannedTransport struct{}

var cannedHeader = http.Header{"Content-Type": contentTypeJSON}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	var body []byte
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPut:
		body = upsertResp
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/messages"):
		body = sendResp
	case r.Method == http.MethodPost:
		body = sessionResp
	default:
		body = messagePage
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: cannedHeader.Clone(), Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}, nil
}

// inMemoryTrio is the three clients on cannedTransport.
func inMemoryTrio(tb testing.TB) *trio {
	const base = "http://127.0.0.1:1"
	nh := newNetHTTPClient(base)
	nh.hc.Transport = cannedTransport{}
	rs := newRestyClient(base)
	rs.talkjs.SetTransport(cannedTransport{})
	rs.talqui.SetTransport(cannedTransport{})
	sdk, err := convo.NewClient(
		convo.WithTalkJS(appID, secretKey), convo.WithTalkJSURL(base),
		convo.WithTalqui(tenantID, convo.PluginConnection{ID: connID, Token: connToken}), convo.WithTalquiURL(base),
		convo.WithHTTPClient(&http.Client{Transport: cannedTransport{}}),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return &trio{nh: nh, rs: rs, sdk: sdk}
}

// BenchmarkInMemory runs the same calls as the loopback benchmarks, one
// at a time, on cannedTransport: the clients' own cost per call.
func BenchmarkInMemory(b *testing.B) {
	t := inMemoryTrio(b)
	for _, op := range []struct {
		name string
		ops  func(*trio) []clientOp
	}{
		{"Upsert", upsertOps}, {"SendMessage", sendMessageOps},
		{"SessionStart", sessionStartOps}, {"ListPage", listPageOps},
	} {
		b.Run("op="+op.name, func(b *testing.B) {
			for _, c := range op.ops(t) {
				b.Run("client="+c.name, func(b *testing.B) { runSerial(b, c.op) })
			}
		})
	}
}
