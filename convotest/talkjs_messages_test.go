package convotest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoMessages makes users alice and bob and conversation c1 (alice
// participates), then sends a UserMessage from alice and a SystemMessage
// in one call; it returns their ids.
func twoMessages(t *testing.T) (*convotest.Server, []string) {
	t.Helper()
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
	return srv, []string{sent[0].ID, sent[1].ID}
}

func TestTalkJSMessages(t *testing.T) {
	srv, sent := twoMessages(t)
	a := talkjs(t, srv, "GET", "/conversations/c1/messages", nil)
	require.Equal(t, http.StatusOK, a.Status)
	data := a.Object(t)["data"].([]any)
	require.Len(t, data, 2)
	sys, user := data[0].(map[string]any), data[1].(map[string]any)
	assert.Equal(t, sent[1], sys["id"], "newest first")
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
	assert.Equal(t, sent[1], conv["lastMessage"].(map[string]any)["id"])

	one := talkjs(t, srv, "GET", "/conversations/c1/messages/"+sent[0], nil)
	require.Equal(t, http.StatusOK, one.Status)
	assert.Equal(t, "Hello Bob!", one.Object(t)["text"])
}

func TestTalkJSMessagesRefused(t *testing.T) {
	srv, _ := twoMessages(t)
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
	a := talkjs(t, srv, "POST", "/conversations/c1/messages", eleven)
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

func TestTalkJSMessagesEmptyList(t *testing.T) {
	srv := newServer(t)
	putConversation(t, srv, "c1", map[string]any{})
	a := talkjs(t, srv, "GET", "/conversations/c1/messages", nil)
	require.Equal(t, http.StatusOK, a.Status)
	assert.JSONEq(t, `{"data":[]}`, string(a.Body), "an empty list is [], never null")
	a = talkjs(t, srv, "GET", "/users", nil)
	assert.JSONEq(t, `{"data":[]}`, string(a.Body))
}

func TestTalkJSMessageRefusalReasons(t *testing.T) {
	srv, _ := twoMessages(t)
	a := talkjs(t, srv, "POST", "/conversations/c1/messages", []any{
		map[string]any{"text": "ok", "type": "SystemMessage"},
		map[string]any{"text": 7, "sender": "bob", "type": "UserMessage", "senderId": "x"},
	})
	require.Equal(t, http.StatusBadRequest, a.Status)
	assert.Equal(t, map[string]any{
		"messages[1].text":     []any{"must be a string"},
		"messages[1].sender":   []any{`"bob" is not a participant of the conversation`},
		"messages[1].senderId": []any{"is not a known field"},
	}, a.Object(t)["reasons"])
}

func TestTalkJSMessageEditDelete(t *testing.T) {
	srv, sent := twoMessages(t)
	path := "/conversations/c1/messages/" + sent[0]

	a := talkjs(t, srv, "PUT", path, map[string]any{"text": "Hello, Bob!", "custom": map[string]any{"k": nil, "edited": "yes"}})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.JSONEq(t, `{}`, string(a.Body))
	got := talkjs(t, srv, "GET", path, nil).Object(t)
	assert.Equal(t, "Hello, Bob!", got["text"])
	assert.Equal(t, map[string]any{"edited": "yes"}, got["custom"], "custom is patched; a null key is removed")
	assert.IsType(t, float64(0), got["editedAt"])

	a = talkjs(t, srv, "PUT", path, map[string]any{"custom": nil})
	require.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, map[string]any{}, talkjs(t, srv, "GET", path, nil).Object(t)["custom"], "custom null erases all")
	assert.Equal(t, "Hello, Bob!", srv.Messages("c1")[0].Text, "text not sent: unchanged")

	for _, body := range []any{map[string]any{}, map[string]any{"text": 1}, map[string]any{"sender": "bob"}, []any{}} {
		a := talkjs(t, srv, "PUT", path, body)
		assert.Equal(t, http.StatusBadRequest, a.Status, "%v: %s", body, a.Body)
	}
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "PUT", "/conversations/c1/messages/msg_nope", map[string]any{"text": "x"}).Status)

	a = talkjs(t, srv, "DELETE", "/conversations/c1/messages/"+sent[1], nil)
	require.Equal(t, http.StatusOK, a.Status)
	assert.JSONEq(t, `{}`, string(a.Body))
	require.Len(t, srv.Messages("c1"), 1)
	conv := talkjs(t, srv, "GET", "/conversations/c1", nil).Object(t)
	assert.Equal(t, sent[0], conv["lastMessage"].(map[string]any)["id"], "the last message is the one before")
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "DELETE", "/conversations/c1/messages/"+sent[1], nil).Status, "deleted already")
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "GET", "/conversations/c1/messages/"+sent[1], nil).Status)
}

// importMsg is a valid import of a message by alice.
func importMsg(text string, ts int64) map[string]any {
	return map[string]any{"text": text, "sender": "alice", "timestamp": ts, "readBy": []string{}, "type": "UserMessage"}
}

func TestTalkJSImport(t *testing.T) {
	srv, _ := twoMessages(t)
	putConversation(t, srv, "c1", map[string]any{"participants": []string{"bob"}})
	old := importMsg("from 2021", 1609459200000)
	old["readBy"] = []string{"bob"}
	old["custom"] = map[string]string{"source": "zendesk"}
	a := talkjs(t, srv, "POST", "/import/conversations/c1/messages", []any{old, importMsg("from 2022", 1640995200000)})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.JSONEq(t, `{}`, string(a.Body))

	msgs := srv.Messages("c1")
	require.Len(t, msgs, 4)
	assert.Equal(t, "from 2021", msgs[0].Text, "stored at its timestamp, before the messages sent now")
	assert.Equal(t, "from 2022", msgs[1].Text)
	assert.Equal(t, int64(1609459200000), msgs[0].CreatedAt)
	assert.Equal(t, "import", msgs[0].Origin)
	assert.Equal(t, []string{"bob"}, msgs[0].ReadBy)
	assert.Equal(t, map[string]string{"source": "zendesk"}, msgs[0].Custom)
	assert.Equal(t, "alice", *msgs[0].SenderID)
	assert.Regexp(t, `^msg_`, msgs[0].ID)

	a = talkjs(t, srv, "POST", "/import/conversations/c1/messages", []any{old})
	require.Equal(t, http.StatusOK, a.Status)
	assert.Len(t, srv.Messages("c1"), 5, "TalkJS does not deduplicate an import")
	assert.Equal(t, 3, srv.Stats().TalkJSImported)
	assert.Equal(t, 5, srv.Stats().TalkJSMessages)

	noReadBy := importMsg("x", 1)
	delete(noReadBy, "readBy")
	noTimestamp := importMsg("x", 1)
	delete(noTimestamp, "timestamp")
	system := importMsg("x", 1)
	system["type"] = "SystemMessage"
	delete(system, "sender")
	stranger := importMsg("x", 1)
	stranger["sender"] = "ghost"
	withKey := importMsg("x", 1)
	withKey["idempotencyKey"] = "k"
	badReader := importMsg("x", 1)
	badReader["readBy"] = []string{"ghost"}
	bad := []struct {
		name   string
		msgs   any
		field  string
		reason string
	}{
		{"no readBy", []any{noReadBy}, "messages[0].readBy", "is required"},
		{"no timestamp", []any{noTimestamp}, "messages[0].timestamp", "is required"},
		{"timestamp not a number", []any{importMsg("x", -5)}, "messages[0].timestamp", "must be a positive whole number of Unix milliseconds"},
		{"a system message", []any{system}, "messages[0].type", `must be "UserMessage": only user messages can be imported`},
		{"sender not a participant", []any{stranger}, "messages[0].sender", `"ghost" is not a participant of the conversation`},
		{"a reader not a participant", []any{badReader}, "messages[0].readBy", `"ghost" is not a participant of the conversation`},
		{"idempotencyKey is not an import field", []any{importMsg("ok", 2), withKey}, "messages[1].idempotencyKey", "is not a known field"},
	}
	for _, tc := range bad {
		a := talkjs(t, srv, "POST", "/import/conversations/c1/messages", tc.msgs)
		require.Equal(t, http.StatusBadRequest, a.Status, "%s: %s", tc.name, a.Body)
		assert.Contains(t, a.Object(t)["reasons"], tc.field, tc.name)
		assert.Contains(t, a.Object(t)["reasons"].(map[string]any)[tc.field], tc.reason, tc.name)
	}
	var eleven []any
	for i := range 11 {
		eleven = append(eleven, importMsg(fmt.Sprint(i), int64(i+1)))
	}
	assert.Equal(t, http.StatusBadRequest, talkjs(t, srv, "POST", "/import/conversations/c1/messages", eleven).Status, "at most 10")
	assert.Len(t, srv.Messages("c1"), 5, "nothing applied by a refused import")
	assert.Equal(t, http.StatusOK, talkjs(t, srv, "POST", "/import/conversations/c1/messages", eleven[:10]).Status)
	assert.Equal(t, http.StatusNotFound, talkjs(t, srv, "POST", "/import/conversations/nope/messages", eleven[:1]).Status)
}
