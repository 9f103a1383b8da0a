package bench

import (
	"net/http"
	"testing"

	"github.com/convokit/convo"
)

// BenchmarkAppToken: what a TalkJS app token minted for each request
// (WithTalkJSTokenAuth) costs against the secret key: Upsert and
// SendMessage, in memory and serially over loopback, by the SDK with the
// secret key (client=sdk) and with app tokens (client=sdk-token).
func BenchmarkAppToken(b *testing.B) {
	srv := newServer(b, &fakeAPI{})
	for _, tr := range []struct {
		name string
		opts []convo.Option
	}{
		{"inmemory", []convo.Option{convo.WithTalkJSURL("http://127.0.0.1:1"), convo.WithHTTPClient(&http.Client{Transport: cannedTransport{}})}},
		{"loopback", []convo.Option{convo.WithTalkJSURL(srv.URL)}},
	} {
		clients := map[string]*convo.Client{}
		for _, name := range []string{"sdk", "sdk-token"} {
			opts := append([]convo.Option{convo.WithTalkJS(appID, secretKey)}, tr.opts...)
			if name == "sdk-token" {
				opts = append(opts, convo.WithTalkJSTokenAuth())
			}
			c, err := convo.NewClient(opts...)
			if err != nil {
				b.Fatal(err)
			}
			clients[name] = c
		}
		for _, op := range []struct {
			name string
			ops  func(*trio) []clientOp
		}{{"Upsert", upsertOps}, {"SendMessage", sendMessageOps}} {
			b.Run("op="+op.name+"/transport="+tr.name, func(b *testing.B) {
				for _, name := range []string{"sdk", "sdk-token"} {
					for _, c := range op.ops(&trio{sdk: clients[name]}) {
						if c.name == "sdk" {
							b.Run("client="+name, func(b *testing.B) { runSerial(b, c.op) })
						}
					}
				}
			})
		}
	}
}
