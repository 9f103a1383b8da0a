package convotest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTalkJSAuth(t *testing.T) {
	srv := newServer(t, convotest.WithTalkJSApp("app1", "sk_test_one"))
	putUser(t, srv, "alice", map[string]any{"name": "Alice"})

	cases := []struct {
		name   string
		path   string
		auth   string
		status int
	}{
		{"no header", "/v1/app1/users/alice", "", http.StatusUnauthorized},
		{"wrong scheme", "/v1/app1/users/alice", "Basic sk_test_one", http.StatusUnauthorized},
		{"wrong secret", "/v1/app1/users/alice", "Bearer sk_test_two", http.StatusUnauthorized},
		{"unknown app", "/v1/app2/users/alice", "Bearer sk_test_one", http.StatusNotFound},
		{"secret key", "/v1/app1/users/alice", "Bearer sk_test_one", http.StatusOK},
		{"app token", "/v1/app1/users/alice", "Bearer " + appToken("app1", "sk_test_one", time.Minute), http.StatusOK},
		{"expired app token", "/v1/app1/users/alice", "Bearer " + appToken("app1", "sk_test_one", -time.Minute), http.StatusUnauthorized},
		{"app token of another app", "/v1/app1/users/alice", "Bearer " + appToken("app2", "sk_test_one", time.Minute), http.StatusUnauthorized},
		{"app token signed with another key", "/v1/app1/users/alice", "Bearer " + appToken("app1", "sk_test_two", time.Minute), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.auth != "" {
				h = []string{"Authorization", tc.auth}
			}
			a := call(t, srv, "GET", tc.path, nil, h...)
			assert.Equal(t, tc.status, a.Status, "%s", a.Body)
		})
	}
}

// appToken makes a TalkJS app-scoped JWT.
func appToken(appID, secret string, ttl time.Duration) string {
	enc := base64.RawURLEncoding.EncodeToString
	head := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := enc(fmt.Appendf(nil, `{"tokenType":"app","iss":%q,"exp":%d}`, appID, time.Now().Add(ttl).Unix()))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(head + "." + claims))
	return head + "." + claims + "." + enc(mac.Sum(nil))
}

func TestTalkJSContentTypeRoutesAndMethods(t *testing.T) {
	srv := newServer(t)
	auth := "Bearer " + srv.SecretKey()
	base := "/v1/" + srv.AppID()

	a := call(t, srv, "PUT", base+"/users/alice", `{"name":"Alice"}`, "Authorization", auth)
	assert.Equal(t, http.StatusBadRequest, a.Status, "a body without Content-Type")
	a = call(t, srv, "PUT", base+"/users/alice", `{"name":"Alice"}`, "Authorization", auth, "Content-Type", "text/plain")
	assert.Equal(t, http.StatusBadRequest, a.Status)
	_, ok := srv.User("alice")
	assert.False(t, ok, "nothing applied")

	a = call(t, srv, "GET", base+"/nope", nil, "Authorization", auth)
	assert.Equal(t, http.StatusNotFound, a.Status)
	assert.NotEmpty(t, a.Object(t)["message"])
	a = call(t, srv, "GET", "/elsewhere", nil)
	assert.Equal(t, http.StatusNotFound, a.Status)
	a = call(t, srv, "DELETE", base+"/users/alice", nil, "Authorization", auth)
	assert.Equal(t, http.StatusMethodNotAllowed, a.Status)
	assert.Equal(t, "GET, PUT", a.Header.Get("Allow"))
	a = call(t, srv, "POST", base+"/conversations/c1", `{}`, "Authorization", auth, "Content-Type", "application/json")
	assert.Equal(t, http.StatusMethodNotAllowed, a.Status)

	// An escaped slash stays inside its segment.
	putUser(t, srv, "a/b", map[string]any{"name": "Slash"})
	u, ok := srv.User("a/b")
	require.True(t, ok)
	assert.Equal(t, "Slash", u.Name)
	assert.Equal(t, "/v1/"+srv.AppID()+"/users/a%2Fb", srv.Requests()[len(srv.Requests())-1].Path)
}

func TestTalkJSUserListPagination(t *testing.T) {
	srv := newServer(t)
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("user%d", i)
		putUser(t, srv, id, map[string]any{"name": id})
		want = append(want, id)
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		q := "?limit=3"
		if after != "" {
			q += "&startingAfter=" + after
		}
		p := ids(t, talkjs(t, srv, "GET", "/users"+q, nil))
		got = append(got, p...)
		if len(p) < 3 {
			assert.Equal(t, 2, page, "three pages")
			break
		}
		after = p[len(p)-1]
	}
	assert.Equal(t, want, got)

	assert.Len(t, ids(t, talkjs(t, srv, "GET", "/users", nil)), 7, "default limit 10")
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?startingAfter=nobody"} {
		assert.Equal(t, http.StatusBadRequest, talkjs(t, srv, "GET", "/users"+q, nil).Status, q)
	}
}
