package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"sync"
	"testing"
)

// recorded is what a client sent, as the fair comparison needs it: every
// client must send the same request, so the server does the same work.
type recorded struct {
	Method, Path, Query                           string
	Authorization, ContentType, Accept, UserAgent string
	Body                                          any // decoded JSON; idempotency keys replaced
}

type recorder struct {
	mu   sync.Mutex
	last recorded
	next http.Handler
}

var hexKey = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	got := recorded{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Authorization: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"),
		Accept: r.Header.Get("Accept"), UserAgent: r.Header.Get("User-Agent"),
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &got.Body); err != nil {
			got.Body = "not JSON: " + string(b)
		}
		if msgs, ok := got.Body.([]any); ok {
			for _, m := range msgs {
				if m, ok := m.(map[string]any); ok {
					if k, ok := m["idempotencyKey"].(string); ok && hexKey.MatchString(k) {
						m["idempotencyKey"] = "<random 128-bit hex>"
					}
				}
			}
		}
	}
	rec.mu.Lock()
	rec.last = got
	rec.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(b))
	rec.next.ServeHTTP(w, r)
}

// agree runs each client's op once and checks that they all sent what
// the hand-written client sent.
func agree(t *testing.T, build func(t *trio) []clientOp) {
	t.Helper()
	rec := &recorder{next: &fakeAPI{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	ops := build(newTrio(t, srv.URL))
	var want recorded
	for i, c := range ops {
		if err := c.op(context.Background()); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rec.mu.Lock()
		got := rec.last
		rec.mu.Unlock()
		if i == 0 {
			want = got
			t.Logf("%s sent %+v", c.name, got)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s sent\n%+v\nwant (as %s)\n%+v", c.name, got, ops[0].name, want)
		}
	}
}
