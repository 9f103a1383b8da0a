package convotest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

func TestTalkJSNotifications(t *testing.T) {
	srv := newServer(t)
	putUser(t, srv, "alice", map[string]any{"name": "Alice"})
	putUser(t, srv, "bob", map[string]any{"name": "Bob"})
	putConversation(t, srv, "c1", map[string]any{"participants": []string{"alice"}})
	path := "/conversations/c1/notifications"

	full := map[string]any{
		"channels":    []string{"email", "sms"},
		"recipients":  []string{"alice"},
		"smsSettings": map[string]string{"smsTemplate": "({{app.name}}) {{sender.name}}: \"{{messages}}\""},
		"emailSettings": map[string]string{
			"footer": "The team", "header": "Hi {{recipient.name}},", "subject": "{{sender.name}} wants to chat",
			"inboxUrl": "https://example.com/inbox",
		},
	}
	a := talkjs(t, srv, "POST", path, full)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.JSONEq(t, `{}`, string(a.Body))
	require.Equal(t, http.StatusOK, talkjs(t, srv, "POST", path, map[string]any{"channels": []string{"email"}}).Status, "no recipients: everyone")
	assert.Equal(t, 2, srv.Stats().TalkJSNotifications)

	bad := []struct {
		body   map[string]any
		field  string
		reason string
	}{
		{map[string]any{}, "channels", "is required"},
		{map[string]any{"channels": []string{}}, "channels", `must be a non-empty array of "email" and "sms"`},
		{map[string]any{"channels": []string{"push"}}, "channels", `must be a non-empty array of "email" and "sms"`},
		{map[string]any{"channels": []string{"sms"}, "recipients": []string{"bob"}}, "recipients", `"bob" is not a participant of the conversation`},
		{map[string]any{"channels": []string{"sms"}, "recipients": []string{}}, "recipients", "must be a non-empty array of user ids, or left out to notify everyone"},
		{map[string]any{"channels": []string{"sms"}, "smsSettings": map[string]any{"template": "x"}}, "smsSettings", "must be an object with the string smsTemplate"},
		{map[string]any{"channels": []string{"email"}, "emailSettings": map[string]any{"subject": 1}}, "emailSettings", "must be an object; subject, header, footer and inboxUrl strings"},
		{map[string]any{"channels": []string{"email"}, "channel": "email"}, "channel", "is not a known field"},
	}
	for _, tc := range bad {
		a := talkjs(t, srv, "POST", path, tc.body)
		require.Equal(t, http.StatusBadRequest, a.Status, "%v: %s", tc.body, a.Body)
		assert.Equal(t, []any{tc.reason}, a.Object(t)["reasons"].(map[string]any)[tc.field], "%v", tc.body)
	}
	assert.Equal(t, 2, srv.Stats().TalkJSNotifications)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "POST", "/conversations/nope/notifications", full).Status)
}

func TestTalkJSConversationFilter(t *testing.T) {
	srv := newServer(t)
	putUser(t, srv, "alice", map[string]any{"name": "Alice"})
	for id, cat := range map[string]string{"c1": "shoes", "c2": "sandals", "c3": "hats"} {
		a := talkjs(t, srv, "PUT", "/conversations/"+id, map[string]any{"participants": []string{"alice"}, "custom": map[string]string{"category": cat}})
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	}
	require.Equal(t, http.StatusOK, talkjs(t, srv, "PUT", "/conversations/c4", map[string]any{"participants": []string{"alice"}}).Status)
	list := func(filter string) []string {
		t.Helper()
		a := talkjs(t, srv, "GET", "/conversations?filter="+url.QueryEscape(filter), nil)
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
		got := ids(t, a)
		slices.Sort(got)
		return got
	}
	// TalkJS's ConversationPredicate example, verbatim but for the quotes JSON needs.
	assert.Equal(t, []string{"c1", "c2"}, list(`{"custom": {"category": ["oneOf", ["shoes", "sandals"]]}}`))
	assert.Equal(t, []string{"c3", "c4"}, list(`{"custom": {"category": ["!oneOf", ["shoes", "sandals"]]}}`))
	assert.Equal(t, []string{"c1"}, list(`{"custom": {"category": ["==", "shoes"]}}`))
	assert.Equal(t, []string{"c2", "c3", "c4"}, list(`{"custom": {"category": ["!=", "shoes"]}}`))
	assert.Equal(t, []string{"c1", "c2", "c3"}, list(`{"custom": {"category": "exists"}}`))
	assert.Equal(t, []string{"c4"}, list(`{"custom": {"category": "!exists"}}`))
	assert.Equal(t, []string{"c1", "c2", "c3", "c4"}, list(`{"createdAt": [">", 0]}`))
	assert.Empty(t, list(`{"lastMessageTs": [">", 0]}`), "no messages yet")
	assert.Equal(t, []string{"c1", "c2", "c3", "c4"}, list(`{}`))

	for _, bad := range []string{`{"custom": {"category": ["~=", "x"]}}`, `{"custom": {"category": 5}}`, `{"hasUnreadMessages": true}`,
		`{"createdAt": ["between", 5]}`, `not json`, `[]`} {
		a := talkjs(t, srv, "GET", "/conversations?filter="+url.QueryEscape(bad), nil)
		assert.Equal(t, http.StatusBadRequest, a.Status, bad)
		assert.Contains(t, string(a.Body), `"filter"`, bad)
	}
	assert.Equal(t, http.StatusBadRequest, talkjs(t, srv, "GET", "/users/alice/conversations?filter=%7B%7D", nil).Status)
}

func TestTalkJSMarkRead(t *testing.T) {
	srv := newServer(t)
	putUser(t, srv, "alice", map[string]any{"name": "Alice"})
	putUser(t, srv, "bob", map[string]any{"name": "Bob"})
	putUser(t, srv, "carol", map[string]any{"name": "Carol"})
	require.Equal(t, http.StatusOK, talkjs(t, srv, "PUT", "/conversations/c1", map[string]any{"participants": []string{"alice", "bob"}}).Status)
	a := talkjs(t, srv, "POST", "/conversations/c1/messages", []map[string]any{
		{"text": "hi", "sender": "alice", "type": "UserMessage"}, {"text": "hello", "sender": "bob", "type": "UserMessage"},
	})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)

	// As the PHP client's markAsReadBy sends it: POST, no body.
	a = talkjs(t, srv, "POST", "/conversations/c1/readBy/bob", nil)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.JSONEq(t, `{}`, string(a.Body))
	msgs := srv.Messages("c1")
	require.Len(t, msgs, 2)
	for _, m := range msgs {
		if *m.SenderID == "alice" {
			assert.Equal(t, []string{"bob"}, m.ReadBy)
		} else {
			assert.Empty(t, m.ReadBy, "a sender does not read its own message")
		}
	}
	require.Equal(t, http.StatusOK, talkjs(t, srv, "POST", "/conversations/c1/readBy/bob", nil).Status)
	for _, m := range srv.Messages("c1") {
		assert.LessOrEqual(t, len(m.ReadBy), 1, "reading again changes nothing")
	}
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "POST", "/conversations/c1/readBy/carol", nil).Status)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "POST", "/conversations/nope/readBy/bob", nil).Status)
	assert.Equal(t, http.StatusBadRequest, talkjs(t, srv, "POST", "/conversations/c1/readBy/bob", map[string]any{"x": 1}).Status)
	assert.Equal(t, http.StatusMethodNotAllowed, talkjs(t, srv, "GET", "/conversations/c1/readBy/bob", nil).Status)
}
