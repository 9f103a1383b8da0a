package convotest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func putUser(t *testing.T, srv *convotest.Server, id string, body any) {
	t.Helper()
	a := talkjs(t, srv, "PUT", "/users/"+url.PathEscape(id), body)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.JSONEq(t, `{}`, string(a.Body))
}

func putConversation(t *testing.T, srv *convotest.Server, id string, body any) {
	t.Helper()
	a := talkjs(t, srv, "PUT", "/conversations/"+url.PathEscape(id), body)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
}

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

func TestTalkJSUserMerge(t *testing.T) {
	srv := newServer(t)
	a := talkjs(t, srv, "PUT", "/users/alice", map[string]any{"email": []string{"alice@example.com"}})
	assert.Equal(t, http.StatusBadRequest, a.Status, "a new user needs a name")

	putUser(t, srv, "alice", map[string]any{
		"name": "Alice", "email": []string{"alice@example.com"}, "photoUrl": "https://example.com/a.png",
		"welcomeMessage": "Hey there!", "role": "buyer", "custom": map[string]string{"country": "br", "tier": "gold"},
	})
	putUser(t, srv, "alice", map[string]any{"welcomeMessage": nil, "custom": map[string]any{"tier": nil, "lang": "pt"}})

	a = talkjs(t, srv, "GET", "/users/alice", nil)
	require.Equal(t, http.StatusOK, a.Status)
	got := a.Object(t)
	assert.Equal(t, "alice", got["id"])
	assert.Equal(t, "Alice", got["name"], "name not sent: unchanged")
	assert.Equal(t, []any{"alice@example.com"}, got["email"])
	assert.Equal(t, "https://example.com/a.png", got["photoUrl"])
	assert.Nil(t, got["welcomeMessage"], "null erases")
	assert.Contains(t, got, "welcomeMessage")
	assert.Equal(t, "buyer", got["role"])
	assert.Equal(t, map[string]any{"country": "br", "lang": "pt"}, got["custom"], "custom merges; a null key is removed")
	assert.Nil(t, got["phone"])
	assert.IsType(t, float64(0), got["createdAt"])

	putUser(t, srv, "alice", map[string]any{"email": nil, "role": nil, "custom": nil})
	u, ok := srv.User("alice")
	require.True(t, ok)
	assert.Nil(t, u.Email)
	assert.Equal(t, "default", u.Role)
	assert.Empty(t, u.Custom)

	for _, body := range []any{
		map[string]any{"name": nil},
		map[string]any{"name": ""},
		map[string]any{"email": "alice@example.com"},
		map[string]any{"custom": map[string]any{"n": 1}},
		map[string]any{"photoURL": "https://example.com/a.png"},
		map[string]any{"availabilityText": "away"},
		[]any{},
	} {
		a := talkjs(t, srv, "PUT", "/users/alice", body)
		assert.Equal(t, http.StatusBadRequest, a.Status, "%v", body)
	}
	after, _ := srv.User("alice")
	assert.Equal(t, u, after, "a refused update changes nothing")

	a = talkjs(t, srv, "GET", "/users/bob", nil)
	assert.Equal(t, http.StatusNotFound, a.Status)
}

func TestTalkJSBatchUsers(t *testing.T) {
	srv := newServer(t)
	batch := map[string]any{
		"alice":     map[string]any{"name": "Alice", "phone": []string{"+1123456789"}, "locale": "ar"},
		"sebastian": map[string]any{"name": "Sebastian", "custom": map[string]string{"country": "ca"}},
	}
	a := talkjs(t, srv, "PUT", "/users", batch)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	u, ok := srv.User("sebastian")
	require.True(t, ok)
	assert.Equal(t, map[string]string{"country": "ca"}, u.Custom)

	t.Run("one invalid entry: 400 per user, nothing applied", func(t *testing.T) {
		a := talkjs(t, srv, "PUT", "/users", map[string]any{
			"carol": map[string]any{"name": "Carol"},
			"dave":  map[string]any{"email": []string{"dave@example.com"}},
			"alice": map[string]any{"locale": 7},
		})
		require.Equal(t, http.StatusBadRequest, a.Status)
		errs := a.Object(t)["errors"].(map[string]any)
		assert.Len(t, errs, 2)
		assert.Contains(t, errs, "dave")
		assert.Contains(t, errs, "alice")
		_, ok := srv.User("carol")
		assert.False(t, ok)
		alice, _ := srv.User("alice")
		assert.Equal(t, "ar", *alice.Locale)
	})
	t.Run("over 100 users: 400, nothing applied", func(t *testing.T) {
		big := map[string]any{}
		for i := range 101 {
			big[fmt.Sprintf("u%03d", i)] = map[string]any{"name": "U"}
		}
		a := talkjs(t, srv, "PUT", "/users", big)
		require.Equal(t, http.StatusBadRequest, a.Status)
		_, ok := srv.User("u000")
		assert.False(t, ok)
		delete(big, "u100")
		a = talkjs(t, srv, "PUT", "/users", big)
		require.Equal(t, http.StatusOK, a.Status, "100 is allowed")
	})
}

// ids reads the ids of a {"data": [...]} list.
func ids(t *testing.T, a answer) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var v struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(a.Body, &v))
	require.NotNil(t, v.Data, "data must be an array: %s", a.Body)
	out := make([]string, len(v.Data))
	for i, d := range v.Data {
		out[i] = d.ID
	}
	return out
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

func TestTalkJSConversationMerge(t *testing.T) {
	srv := newServer(t)
	for _, id := range []string{"12081", "8029", "777"} {
		putUser(t, srv, id, map[string]any{"name": "U" + id})
	}
	putConversation(t, srv, "order_391_fc", map[string]any{
		"participants": []string{"12081", "8029"}, "subject": "What a lovely day!",
		"custom": map[string]string{"category": "order_inquiry"}, "welcomeMessages": []string{"Hello"},
	})
	a := talkjs(t, srv, "PATCH", "/conversations/order_391_fc/participants/8029", map[string]any{"access": "Read", "notify": false})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)

	putConversation(t, srv, "order_391_fc", map[string]any{"participants": []string{"777", "8029"}, "photoUrl": "https://example.com/p.png"})
	putConversation(t, srv, "order_391_fc", map[string]any{"welcomeMessages": nil})

	a = talkjs(t, srv, "GET", "/conversations/order_391_fc", nil)
	require.Equal(t, http.StatusOK, a.Status)
	got := a.Object(t)
	assert.Equal(t, "order_391_fc", got["id"])
	assert.Equal(t, "What a lovely day!", got["subject"], "not sent: unchanged")
	assert.Equal(t, "https://example.com/p.png", got["photoUrl"])
	assert.Nil(t, got["welcomeMessages"], "null erases")
	assert.Equal(t, map[string]any{"category": "order_inquiry"}, got["custom"])
	assert.Nil(t, got["lastMessage"])
	assert.Equal(t, map[string]any{
		"12081": map[string]any{"access": "ReadWrite", "notify": true},
		"8029":  map[string]any{"access": "Read", "notify": false},
		"777":   map[string]any{"access": "ReadWrite", "notify": true},
	}, got["participants"], "participants are added, never removed nor reset by PUT")

	a = talkjs(t, srv, "PUT", "/conversations/order_391_fc", map[string]any{"participants": []string{"ghost"}})
	assert.Equal(t, http.StatusBadRequest, a.Status, "a participant must be a user")
	a = talkjs(t, srv, "PUT", "/conversations/order_391_fc", map[string]any{"topic": "x"})
	assert.Equal(t, http.StatusBadRequest, a.Status, "unknown field")
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "GET", "/conversations/nope", nil).Status)
}

func TestTalkJSParticipants(t *testing.T) {
	srv := newServer(t)
	putUser(t, srv, "alice", map[string]any{"name": "Alice"})
	putUser(t, srv, "bob", map[string]any{"name": "Bob"})
	putConversation(t, srv, "c1", map[string]any{"participants": []string{"alice"}})
	part := func(uid string) (convotest.Participation, bool) {
		c, ok := srv.Conversation("c1")
		require.True(t, ok)
		p, ok := c.Participants[uid]
		return p, ok
	}

	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "PATCH", "/conversations/c1/participants/bob", map[string]any{"notify": false}).Status,
		"PATCH of a user who does not participate")

	require.Equal(t, http.StatusOK, talkjs(t, srv, "PUT", "/conversations/c1/participants/bob", nil).Status, "body optional")
	p, _ := part("bob")
	assert.Equal(t, convotest.Participation{Access: "ReadWrite", Notify: true}, p)

	require.Equal(t, http.StatusOK, talkjs(t, srv, "PATCH", "/conversations/c1/participants/bob", map[string]any{"notify": "MentionsOnly"}).Status)
	p, _ = part("bob")
	assert.Equal(t, convotest.Participation{Access: "ReadWrite", Notify: "MentionsOnly"}, p)

	require.Equal(t, http.StatusOK, talkjs(t, srv, "PATCH", "/conversations/c1/participants/bob", map[string]any{"access": "None"}).Status)
	p, _ = part("bob")
	assert.Equal(t, convotest.Participation{Access: "None", Notify: "MentionsOnly"}, p)

	require.Equal(t, http.StatusOK, talkjs(t, srv, "PUT", "/conversations/c1/participants/bob", map[string]any{"access": "Read"}).Status)
	p, _ = part("bob")
	assert.Equal(t, convotest.Participation{Access: "Read", Notify: true}, p, "PUT overwrites, defaults for what is not sent")

	assert.Equal(t, http.StatusBadRequest, talkjs(t, srv, "PUT", "/conversations/c1/participants/bob", map[string]any{"access": "None"}).Status)
	assert.Equal(t, http.StatusBadRequest, talkjs(t, srv, "PATCH", "/conversations/c1/participants/bob", map[string]any{"notify": "sometimes"}).Status)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "PUT", "/conversations/c1/participants/ghost", nil).Status)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "PUT", "/conversations/c2/participants/bob", nil).Status)

	require.Equal(t, http.StatusOK, talkjs(t, srv, "DELETE", "/conversations/c1/participants/bob", nil).Status)
	_, in := part("bob")
	assert.False(t, in)
	assert.Equal(t, http.StatusOK, talkjs(t, srv, "DELETE", "/conversations/c1/participants/bob", nil).Status, "idempotent")
}

func TestTalkJSMessages(t *testing.T) {
	srv := newServer(t)
	putUser(t, srv, "alice", map[string]any{"name": "Alice"})
	putUser(t, srv, "bob", map[string]any{"name": "Bob"})
	putConversation(t, srv, "c1", map[string]any{"participants": []string{"alice"}})

	a := talkjs(t, srv, "POST", "/conversations/c1/messages", []any{
		map[string]any{"text": "Hello Bob!", "sender": "alice", "type": "UserMessage", "custom": map[string]string{"k": "v"}},
		map[string]any{"text": "Alice joined", "type": "SystemMessage"},
	})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var sent []struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(a.Body, &sent))
	require.Len(t, sent, 2)
	assert.Regexp(t, `^msg_[0-9A-Za-z]{22}$`, sent[0].ID)
	assert.NotEqual(t, sent[0].ID, sent[1].ID)

	a = talkjs(t, srv, "GET", "/conversations/c1/messages", nil)
	require.Equal(t, http.StatusOK, a.Status)
	data := a.Object(t)["data"].([]any)
	require.Len(t, data, 2)
	sys, user := data[0].(map[string]any), data[1].(map[string]any)
	assert.Equal(t, sent[1].ID, sys["id"], "newest first")
	assert.Nil(t, sys["senderId"])
	assert.Equal(t, "SystemMessage", sys["type"])
	for _, k := range []string{"id", "conversationId", "type", "senderId", "readBy", "text", "attachment", "location", "origin", "createdAt", "editedAt", "referencedMessageId", "custom"} {
		assert.Contains(t, user, k)
	}
	assert.Equal(t, "c1", user["conversationId"])
	assert.Equal(t, "alice", user["senderId"])
	assert.Equal(t, []any{}, user["readBy"])
	assert.Equal(t, "rest", user["origin"])
	assert.Nil(t, user["attachment"])
	assert.Nil(t, user["editedAt"])
	assert.Equal(t, map[string]any{"k": "v"}, user["custom"])
	assert.Equal(t, map[string]any{}, sys["custom"])

	conv := talkjs(t, srv, "GET", "/conversations/c1", nil).Object(t)
	assert.Equal(t, sent[1].ID, conv["lastMessage"].(map[string]any)["id"])

	one := talkjs(t, srv, "GET", "/conversations/c1/messages/"+sent[0].ID, nil)
	require.Equal(t, http.StatusOK, one.Status)
	assert.Equal(t, "Hello Bob!", one.Object(t)["text"])

	bad := []struct {
		name string
		msgs any
	}{
		{"empty array", []any{}},
		{"not an array", map[string]any{"text": "x", "type": "SystemMessage"}},
		{"sender not a participant", []any{map[string]any{"text": "x", "sender": "bob", "type": "UserMessage"}}},
		{"sender unknown", []any{map[string]any{"text": "x", "sender": "ghost", "type": "UserMessage"}}},
		{"user message without sender", []any{map[string]any{"text": "x", "type": "UserMessage"}}},
		{"system message with sender", []any{map[string]any{"text": "x", "sender": "alice", "type": "SystemMessage"}}},
		{"no type", []any{map[string]any{"text": "x", "sender": "alice"}}},
		{"no text", []any{map[string]any{"sender": "alice", "type": "UserMessage"}}},
		{"unknown field", []any{map[string]any{"text": "x", "type": "SystemMessage", "senderId": "alice"}}},
		{"one bad among good", []any{
			map[string]any{"text": "ok", "type": "SystemMessage"},
			map[string]any{"text": "x", "sender": "bob", "type": "UserMessage"},
		}},
	}
	for _, tc := range bad {
		a := talkjs(t, srv, "POST", "/conversations/c1/messages", tc.msgs)
		assert.Equal(t, http.StatusBadRequest, a.Status, "%s: %s", tc.name, a.Body)
	}
	assert.Len(t, srv.Messages("c1"), 2, "nothing applied by a refused send")

	var eleven []any
	for i := range 11 {
		eleven = append(eleven, map[string]any{"text": fmt.Sprint(i), "type": "SystemMessage"})
	}
	a = talkjs(t, srv, "POST", "/conversations/c1/messages", eleven)
	assert.Equal(t, http.StatusBadRequest, a.Status, "more than 10 messages")
	assert.Len(t, srv.Messages("c1"), 2, "nothing applied")
	a = talkjs(t, srv, "POST", "/conversations/c1/messages", eleven[:10])
	assert.Equal(t, http.StatusOK, a.Status, "10 is allowed")
	assert.Equal(t, 12, srv.Stats().TalkJSMessages)

	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "POST", "/conversations/nope/messages", eleven[:1]).Status)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "GET", "/conversations/nope/messages", nil).Status)
}

func TestTalkJSMessagePagination(t *testing.T) {
	srv := newServer(t)
	putConversation(t, srv, "c1", map[string]any{})
	var stored []string
	for i := range 8 {
		a := talkjs(t, srv, "POST", "/conversations/c1/messages", []any{map[string]any{"text": fmt.Sprint(i), "type": "SystemMessage"}})
		require.Equal(t, http.StatusOK, a.Status)
		var r []map[string]string
		require.NoError(t, json.Unmarshal(a.Body, &r))
		stored = append(stored, r[0]["id"])
	}
	p1 := ids(t, talkjs(t, srv, "GET", "/conversations/c1/messages?limit=3", nil))
	p2 := ids(t, talkjs(t, srv, "GET", "/conversations/c1/messages?limit=3&startingAfter="+p1[2], nil))
	p3 := ids(t, talkjs(t, srv, "GET", "/conversations/c1/messages?limit=3&startingAfter="+p2[2], nil))
	assert.Len(t, p3, 2, "a short last page")
	got := append(append(p1, p2...), p3...)
	want := make([]string, len(stored))
	for i, id := range stored {
		want[len(stored)-1-i] = id
	}
	assert.Equal(t, want, got, "newest first, every message once")
}

func TestTalkJSIdempotencyKeys(t *testing.T) {
	srv := newServer(t)
	putConversation(t, srv, "c1", map[string]any{})
	putConversation(t, srv, "c2", map[string]any{})
	send := func(conv string, msgs ...map[string]any) []string {
		t.Helper()
		body := make([]any, len(msgs))
		for i, m := range msgs {
			body[i] = m
		}
		a := talkjs(t, srv, "POST", "/conversations/"+conv+"/messages", body)
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
		var r []map[string]string
		require.NoError(t, json.Unmarshal(a.Body, &r))
		out := make([]string, len(r))
		for i, x := range r {
			out[i] = x["id"]
		}
		return out
	}
	msg := func(text, key string) map[string]any {
		m := map[string]any{"text": text, "type": "SystemMessage"}
		if key != "" {
			m["idempotencyKey"] = key
		}
		return m
	}

	first := send("c1", msg("hello", "k1"))
	again := send("c1", msg("hello", "k1"))
	assert.Equal(t, first, again, "same key: same id")
	require.Len(t, srv.Messages("c1"), 1, "stored once")
	assert.Equal(t, "k1", srv.Messages("c1")[0].IdempotencyKey)

	mixed := send("c1", msg("new", "k2"), msg("hello", "k1"), msg("new again", "k2"), msg("no key", ""))
	assert.Equal(t, first[0], mixed[1])
	assert.Equal(t, mixed[0], mixed[2], "a key repeated within one request")
	assert.Len(t, srv.Messages("c1"), 3)

	other := send("c2", msg("hello", "k1"))
	assert.NotEqual(t, first, other, "keys are per conversation")
	assert.Equal(t, 3, srv.Stats().TalkJSReplays)
	assert.Equal(t, 4, srv.Stats().TalkJSMessages)
}

func TestTalkJSConversationListsAndDelete(t *testing.T) {
	srv := newServer(t)
	putUser(t, srv, "alice", map[string]any{"name": "Alice"})
	putUser(t, srv, "bob", map[string]any{"name": "Bob"})
	for i := range 5 {
		parts := []string{"alice"}
		if i%2 == 0 {
			parts = append(parts, "bob")
		}
		putConversation(t, srv, fmt.Sprintf("c%d", i), map[string]any{"participants": parts})
	}
	// c1 gets the latest activity.
	require.Equal(t, http.StatusOK, talkjs(t, srv, "POST", "/conversations/c1/messages",
		[]any{map[string]any{"text": "x", "sender": "alice", "type": "UserMessage"}}).Status)

	all := ids(t, talkjs(t, srv, "GET", "/conversations", nil))
	assert.Len(t, all, 5)
	assert.Equal(t, "c1", all[0], "latest activity first")
	p1 := ids(t, talkjs(t, srv, "GET", "/conversations?limit=2", nil))
	p2 := ids(t, talkjs(t, srv, "GET", "/conversations?limit=2&startingAfter="+p1[1], nil))
	p3 := ids(t, talkjs(t, srv, "GET", "/conversations?limit=2&startingAfter="+p2[1], nil))
	assert.Equal(t, all, append(append(p1, p2...), p3...))

	bobs := ids(t, talkjs(t, srv, "GET", "/users/bob/conversations", nil))
	assert.ElementsMatch(t, []string{"c0", "c2", "c4"}, bobs)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "GET", "/users/ghost/conversations", nil).Status)

	require.Equal(t, http.StatusOK, talkjs(t, srv, "DELETE", "/conversations/c1", nil).Status)
	_, ok := srv.Conversation("c1")
	assert.False(t, ok)
	assert.Nil(t, srv.Messages("c1"))
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "GET", "/conversations/c1", nil).Status)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "GET", "/conversations/c1/messages", nil).Status)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "DELETE", "/conversations/c1", nil).Status)
	assert.NotContains(t, ids(t, talkjs(t, srv, "GET", "/users/alice/conversations?limit=100", nil)), "c1")

	// Recreated, it starts empty.
	putConversation(t, srv, "c1", map[string]any{"participants": []string{"alice"}})
	c, _ := srv.Conversation("c1")
	assert.Equal(t, map[string]convotest.Participation{"alice": {Access: "ReadWrite", Notify: true}}, c.Participants)
	assert.Empty(t, srv.Messages("c1"))
	assert.False(t, strings.Contains(string(talkjs(t, srv, "GET", "/conversations/c1", nil).Body), `"lastMessage":{`))
}
