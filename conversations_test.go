package convo_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
)

// sentMessages decodes a message send body.
func sentMessages(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var msgs []map[string]any
	require.NoError(t, json.Unmarshal(body, &msgs))
	return msgs
}

// withoutKeys removes and returns each message's idempotencyKey, and the
// body without them.
func withoutKeys(t *testing.T, body []byte) ([]string, string) {
	t.Helper()
	msgs := sentMessages(t, body)
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		keys[i], _ = m["idempotencyKey"].(string)
		delete(m, "idempotencyKey")
	}
	b, err := json.Marshal(msgs)
	require.NoError(t, err)
	return keys, string(b)
}

// idsResponder answers a send with one id per message: msg_<n> counting
// from 1 across calls.
func idsResponder() httpmock.Responder {
	var n atomic.Int64
	return func(req *http.Request) (*http.Response, error) {
		var msgs []json.RawMessage
		if err := json.NewDecoder(req.Body).Decode(&msgs); err != nil {
			return httpmock.NewStringResponse(400, `{"error":"bad body"}`), nil
		}
		out := make([]map[string]string, len(msgs))
		for i := range msgs {
			out[i] = map[string]string{"id": fmt.Sprintf("msg_%d", n.Add(1))}
		}
		return httpmock.NewJsonResponse(200, out)
	}
}

func msgIDs(from, to int) []string {
	var ids []string
	for i := from; i <= to; i++ {
		ids = append(ids, fmt.Sprintf("msg_%d", i))
	}
	return ids
}

func TestConversationsUpsertWireForm(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	ctx := context.Background()
	// TalkJS guide, step 2.
	require.NoError(t, c.Conversations.Upsert(ctx, "order_391_fc", convo.ConversationUpdate{
		Participants: []string{"12081", "8029"}, Subject: "What a lovely day!",
		Custom: map[string]string{"category": "order_inquiry"},
	}))
	// talkjs.md §3.3 example.
	require.NoError(t, c.Conversations.Upsert(ctx, "x", convo.ConversationUpdate{
		Participants: []string{"123456", "654321"}, Subject: "Black leather boots",
		WelcomeMessages: []string{"Hello there!", "I'm currently out of town, leave a message and I'll respond ASAP. :)"},
		Custom:          map[string]string{"productId": "454545"},
		PhotoURL:        "https://example.com/productpictures/454545.png",
	}))
	calls := rc.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, http.MethodPut, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations/order_391_fc", calls[0].Path)
	assertHeaders(t, calls[0], true)
	assert.JSONEq(t, `{ "participants": ["12081", "8029"], "subject": "What a lovely day!", "custom": { "category": "order_inquiry" } }`, string(calls[0].Body))
	assert.JSONEq(t, `{
	  "participants": ["123456", "654321"],
	  "subject": "Black leather boots",
	  "welcomeMessages": ["Hello there!", "I'm currently out of town, leave a message and I'll respond ASAP. :)"],
	  "custom": { "productId": "454545" },
	  "photoUrl": "https://example.com/productpictures/454545.png"
	}`, string(calls[1].Body))
}

func TestConversationsUpsertClear(t *testing.T) {
	c, mt, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	ctx := context.Background()
	require.NoError(t, c.Conversations.Upsert(ctx, "c1", convo.ConversationUpdate{
		Subject: "New", Clear: []string{"welcomeMessages", "custom", "photoUrl"},
	}))
	calls := rc.Calls()
	require.Len(t, calls, 1)
	assert.JSONEq(t, `{"subject":"New","welcomeMessages":null,"custom":null,"photoUrl":null}`, string(calls[0].Body))

	mt.ZeroCallCounters()
	err := c.Conversations.Upsert(ctx, "c1", convo.ConversationUpdate{
		Subject: "x", Participants: []string{"a", ""},
		Clear: []string{"participants", "subject", "title"},
	})
	ve := requireValidation(t, err)
	assert.Equal(t, []string{"u.Participants[1]", "u.Clear", "u.Clear", "u.Clear"}, fields(ve))
	assert.Contains(t, ve.Problems[1].Reason, "use Leave")
	assert.Contains(t, ve.Problems[2].Reason, "both set and cleared")
	assert.Contains(t, ve.Problems[3].Reason, `"title"`)
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

// talkjs.md §3.4 example.
const conversationExample = `{
  "createdAt": 1623926680929,
  "custom": {},
  "id": "87d70908d90cee5d12bd",
  "lastMessage": {
    "attachment": null,
    "conversationId": "87d70908d90cee5d12bd",
    "createdAt": 1632919967033,
    "editedAt": null,
    "custom": {},
    "id": "msg_0UQbqdxnQWkoIw7Db7fZHK",
    "location": null,
    "origin": "web",
    "readBy": [],
    "senderId": "432156789",
    "text": "Hey, I'm in London",
    "type": "UserMessage",
    "referencedMessageId": null
  },
  "participants": {
    "123456789": {"access": "ReadWrite", "notify": true},
    "432156789": {"access": "ReadWrite", "notify": true}
  },
  "photoUrl": null,
  "subject": "Random conversation",
  "topicId": null
}`

func TestConversationsGetDecodesNulls(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, conversationExample))
	conv, err := c.Conversations.Get(context.Background(), "87d70908d90cee5d12bd")
	require.NoError(t, err)
	calls := rc.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodGet, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations/87d70908d90cee5d12bd", calls[0].Path)
	assertHeaders(t, calls[0], false)
	assert.Equal(t, &convo.Conversation{
		ID: "87d70908d90cee5d12bd", Subject: "Random conversation", Custom: map[string]string{},
		LastMessage: &convo.Message{
			ID: "msg_0UQbqdxnQWkoIw7Db7fZHK", ConversationID: "87d70908d90cee5d12bd", Type: convo.MessageTypeUser,
			SenderID: "432156789", ReadBy: []string{}, Text: "Hey, I'm in London", Origin: "web",
			CreatedAt: 1632919967033, Custom: map[string]string{},
		},
		Participants: map[string]convo.Participant{
			"123456789": {Access: convo.AccessReadWrite, Notify: convo.NotifyOn},
			"432156789": {Access: convo.AccessReadWrite, Notify: convo.NotifyOn},
		},
		CreatedAt: 1623926680929,
	}, conv)

	c, _, _ = convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, `{"id":"c","subject":null,"photoUrl":null,"welcomeMessages":null,
		"custom":null,"lastMessage":null,"participants":{"u":{"access":"Read","notify":"MentionsOnly","isUnread":true},
		"v":{"access":"ReadWrite","notify":false}},"createdAt":1,"topicId":null}`))
	conv, err = c.Conversations.Get(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, &convo.Conversation{ID: "c", CreatedAt: 1, Participants: map[string]convo.Participant{
		"u": {Access: convo.AccessRead, Notify: convo.NotifyMentionsOnly, IsUnread: true},
		"v": {Access: convo.AccessReadWrite, Notify: convo.NotifyOff},
	}}, conv)
}

func TestConversationsDelete(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	require.NoError(t, c.Conversations.Delete(context.Background(), "order/391"))
	calls := rc.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodDelete, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations/order%2F391", calls[0].Path)
	assertHeaders(t, calls[0], false)
}

func TestParticipation(t *testing.T) {
	c, mt, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	ctx := context.Background()
	require.NoError(t, c.Conversations.Join(ctx, "order_391_fc", "8029", convo.Participation{}))
	require.NoError(t, c.Conversations.Join(ctx, "order_391_fc", "8029", convo.Participation{Access: convo.AccessRead, Notify: convo.NotifyMentionsOnly}))
	require.NoError(t, c.Conversations.UpdateParticipation(ctx, "order_391_fc", "8029", convo.Participation{Access: convo.AccessNone, Notify: convo.NotifyOff}))
	require.NoError(t, c.Conversations.UpdateParticipation(ctx, "order_391_fc", "8029", convo.Participation{Notify: convo.NotifyOn}))
	require.NoError(t, c.Conversations.Leave(ctx, "order_391_fc", "a/b"))
	calls := rc.Calls()
	require.Len(t, calls, 5)
	const p = "/v1/app/conversations/order_391_fc/participants/8029"
	want := []struct{ method, path, body string }{
		{http.MethodPut, p, `{}`},
		{http.MethodPut, p, `{"access":"Read","notify":"MentionsOnly"}`},
		{http.MethodPatch, p, `{"access":"None","notify":false}`},
		{http.MethodPatch, p, `{"notify":true}`},
		{http.MethodDelete, "/v1/app/conversations/order_391_fc/participants/a%2Fb", ``},
	}
	for i, w := range want {
		assert.Equal(t, w.method, calls[i].Method, i)
		assert.Equal(t, w.path, calls[i].Path, i)
		if w.body == "" {
			assertHeaders(t, calls[i], false)
		} else {
			assertHeaders(t, calls[i], true)
			assert.JSONEq(t, w.body, string(calls[i].Body), i)
		}
	}

	mt.ZeroCallCounters()
	ve := requireValidation(t, c.Conversations.Join(ctx, "c", "u", convo.Participation{Access: convo.AccessNone}))
	assert.Equal(t, []string{"p.Access"}, fields(ve))
	ve = requireValidation(t, c.Conversations.UpdateParticipation(ctx, "c", "u", convo.Participation{Access: "Write", Notify: "yes"}))
	assert.Equal(t, []string{"p.Access", "p.Notify"}, fields(ve))
	ve = requireValidation(t, c.Conversations.Leave(ctx, "", ".."))
	assert.Equal(t, []string{"conversationID", "userID"}, fields(ve))
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

func TestNotifyJSON(t *testing.T) {
	for _, tc := range []struct {
		n    convo.Notify
		wire string
	}{{convo.NotifyOn, `true`}, {convo.NotifyOff, `false`}, {convo.NotifyMentionsOnly, `"MentionsOnly"`}} {
		b, err := json.Marshal(tc.n)
		require.NoError(t, err)
		assert.Equal(t, tc.wire, string(b))
		var back convo.Notify
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, tc.n, back)
	}
	_, err := json.Marshal(convo.Notify("sometimes"))
	assert.Error(t, err)
	var n convo.Notify
	assert.Error(t, json.Unmarshal([]byte(`3`), &n))
	require.NoError(t, json.Unmarshal([]byte(`null`), &n))
	assert.Equal(t, convo.Notify(""), n)
}

func TestSendMessagesWireForm(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, `[{"id":"msg_abcdefghijklm"}]`))
	// TalkJS guide, step 3.
	ids, err := c.Conversations.SendMessages(context.Background(), "order_391_fc", convo.UserMessage("8029", "Hello Alice!"))
	require.NoError(t, err)
	assert.Equal(t, []string{"msg_abcdefghijklm"}, ids)
	calls := rc.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodPost, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations/order_391_fc/messages", calls[0].Path)
	assertHeaders(t, calls[0], true)
	keys, rest := withoutKeys(t, calls[0].Body)
	assert.JSONEq(t, `[{ "text": "Hello Alice!", "sender": "8029", "type": "UserMessage" }]`, rest)
	require.Len(t, keys, 1)
	k, err := hex.DecodeString(keys[0])
	require.NoError(t, err)
	assert.Len(t, k, 16, "a 128-bit random key")
}

func TestSendMessagesEveryField(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, `[{"id":"msg_1"},{"id":"msg_2"}]`))
	reply := convo.UserMessage("123143551", "Meet me outside")
	reply.ReferencedMessageID = "msg_6TKoWs0Jm8XrjPOmFdOGiX"
	reply.Custom = map[string]string{"isTyping": "true"}
	reply.IdempotencyKey = "mine-1"
	sys := convo.SystemMessage("We're currently out of the office ...")
	sys.IdempotencyKey = "mine-2"
	_, err := c.Conversations.SendMessages(context.Background(), "c", reply, sys)
	require.NoError(t, err)
	assert.JSONEq(t, `[
	  {"text":"Meet me outside","sender":"123143551","type":"UserMessage","referencedMessageId":"msg_6TKoWs0Jm8XrjPOmFdOGiX",
	   "custom":{"isTyping":"true"},"idempotencyKey":"mine-1"},
	  {"text":"We're currently out of the office ...","type":"SystemMessage","idempotencyKey":"mine-2"}
	]`, string(rc.Calls()[0].Body), "keys the caller gave are kept")
}

func TestSendMessagesRetryKeepsKeys(t *testing.T) {
	c, mt, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(500, `{"error":"oops"}`).
		Then(httpmock.NewStringResponder(200, `[{"id":"msg_1"},{"id":"msg_2"}]`)))
	msgs := []convo.OutgoingMessage{convo.UserMessage("8029", "Hello Alice!"), convo.SystemMessage("Order #391 shipped")}
	ids, err := c.Conversations.SendMessages(context.Background(), "order_391_fc", msgs...)
	require.NoError(t, err)
	assert.Equal(t, []string{"msg_1", "msg_2"}, ids)
	assert.Equal(t, 2, mt.GetTotalCallCount())
	calls := rc.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, string(calls[0].Body), string(calls[1].Body), "the retry sends the same body")
	k1, _ := withoutKeys(t, calls[0].Body)
	k2, _ := withoutKeys(t, calls[1].Body)
	assert.Equal(t, k1, k2)
	assert.NotEqual(t, k1[0], k1[1])
	for _, k := range k1 {
		assert.Len(t, k, 32)
	}
	for _, m := range msgs {
		assert.Empty(t, m.IdempotencyKey, "the caller's slice is not changed")
	}

	// A second send of the same messages gets new random keys.
	c, _, rc = convo.NewTestEnv(t, convo.WithTestApp).Answer(idsResponder())
	_, err = c.Conversations.SendMessages(context.Background(), "order_391_fc", msgs...)
	require.NoError(t, err)
	k3, _ := withoutKeys(t, rc.Calls()[0].Body)
	assert.NotEqual(t, k1, k3)
}

func TestSendMessagesChunks(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(idsResponder())
	var msgs []convo.OutgoingMessage
	for i := range 23 {
		msgs = append(msgs, convo.UserMessage("8029", fmt.Sprintf("message %d", i)))
	}
	ids, err := c.Conversations.SendMessages(context.Background(), "c", msgs...)
	require.NoError(t, err)
	assert.Equal(t, msgIDs(1, 23), ids)
	calls := rc.Calls()
	require.Len(t, calls, 3)
	next := 0
	for i, size := range []int{10, 10, 3} {
		sent := sentMessages(t, calls[i].Body)
		require.Len(t, sent, size)
		for _, m := range sent {
			assert.Equal(t, fmt.Sprintf("message %d", next), m["text"], "in order")
			next++
		}
	}
}

func TestSendMessagesLaterChunkFails(t *testing.T) {
	var n atomic.Int64
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(func(req *http.Request) (*http.Response, error) {
		if n.Add(1) == 1 {
			return idsResponder()(req)
		}
		return httpmock.NewStringResponse(400, `{"error":"sender is not a participant"}`), nil
	})
	var msgs []convo.OutgoingMessage
	for range 15 {
		msgs = append(msgs, convo.UserMessage("8029", "hi"))
	}
	ids, err := c.Conversations.SendMessages(context.Background(), "c", msgs...)
	require.ErrorIs(t, err, convo.ErrInvalidRequest)
	assert.Equal(t, msgIDs(1, 10), ids, "the ids of the first request come back with the error")
	assert.Equal(t, 2, mt.GetTotalCallCount())
}

func TestSendMessagesShortResponse(t *testing.T) {
	var outcomes []convo.Outcome
	obs := convo.Observer{CallDone: func(_ context.Context, r convo.CallResult) { outcomes = append(outcomes, r.Outcome) }}
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp, convo.WithObserver(obs)).Answer(httpmock.NewStringResponder(200, `[{"id":"msg_1"}]`))
	_, err := c.Conversations.SendMessages(context.Background(), "c", convo.SystemMessage("a"), convo.SystemMessage("b"))
	require.ErrorIs(t, err, convo.ErrBadResponse)
	assert.EqualError(t, err, "convo: talkjs POST /v1/app/conversations/c/messages: 200 OK: 1 ids for 2 messages")
	assert.Equal(t, 1, mt.GetTotalCallCount(), "the messages were stored: not sent again")
	assert.Equal(t, []convo.Outcome{convo.OutcomeBadResponse}, outcomes, "the pipeline saw the unusable answer")
}

func TestSendMessagesValidation(t *testing.T) {
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(idsResponder())
	ctx := context.Background()
	_, err := c.Conversations.SendMessages(ctx, "c")
	ve := requireValidation(t, err)
	assert.Equal(t, []string{"msgs"}, fields(ve))

	ids, err := c.Conversations.SendMessages(ctx, "..",
		convo.UserMessage("8029", "fine"),
		convo.UserMessage("", "no sender"),
		convo.UserMessage("8029", "  \n\t"),
		convo.OutgoingMessage{Text: "system with sender", Sender: "8029", Type: convo.MessageTypeSystem},
		convo.OutgoingMessage{Text: "no type", Sender: "8029"},
		convo.OutgoingMessage{Text: "", Type: "Whisper"},
	)
	assert.Nil(t, ids)
	ve = requireValidation(t, err)
	assert.Equal(t, []string{
		"conversationID", "msgs[1].Sender", "msgs[2].Text", "msgs[3].Sender", "msgs[4].Type", "msgs[5].Type", "msgs[5].Text",
	}, fields(ve))
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

func TestMessagesList(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, `{"data":[
	  {"id":"msg_2","conversationId":"c","type":"UserMessage","senderId":"u1","readBy":["u2"],"text":"file",
	   "attachment":{"url":"https://x.io/f.pdf","size":1234},"location":null,"content":[{"type":"file","url":"https://x.io/f.pdf"}],
	   "origin":"rest","createdAt":1632919967033,"editedAt":1632919968000,"referencedMessageId":"msg_1","custom":{"k":"v"}},
	  {"id":"msg_1","conversationId":"c","type":"SystemMessage","senderId":null,"readBy":[],"text":"where",
	   "attachment":null,"location":[51.481083,-3.178306],"origin":"web","createdAt":1,"editedAt":null,
	   "referencedMessageId":null,"custom":{}}
	]}`))
	var got []*convo.Message
	for m, err := range c.Conversations.Messages(context.Background(), "c", nil) {
		require.NoError(t, err)
		got = append(got, m)
	}
	calls := rc.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, "/v1/app/conversations/c/messages", calls[0].Path)
	assert.Equal(t, "limit=100", calls[0].Query)
	assertHeaders(t, calls[0], false)
	require.Len(t, got, 2)
	assert.Equal(t, &convo.Message{
		ID: "msg_2", ConversationID: "c", Type: convo.MessageTypeUser, SenderID: "u1", ReadBy: []string{"u2"}, Text: "file",
		Attachment: &convo.Attachment{URL: "https://x.io/f.pdf", Size: 1234},
		Content:    []json.RawMessage{json.RawMessage(`{"type":"file","url":"https://x.io/f.pdf"}`)},
		Origin:     "rest", CreatedAt: 1632919967033, EditedAt: 1632919968000, ReferencedMessageID: "msg_1",
		Custom: map[string]string{"k": "v"},
	}, got[0])
	assert.Equal(t, &convo.Message{
		ID: "msg_1", ConversationID: "c", Type: convo.MessageTypeSystem, ReadBy: []string{}, Text: "where",
		Location: []float64{51.481083, -3.178306}, Origin: "web", CreatedAt: 1, Custom: map[string]string{},
	}, got[1])
}

func TestOpen(t *testing.T) {
	var sends atomic.Int64
	c, mt, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodPost {
			if sends.Add(1) == 1 {
				// The first try of the first Open call fails for good
				// (connection reset after sending, every retry too).
				return nil, fmt.Errorf("connection reset by peer")
			}
			return idsResponder()(req)
		}
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	ctx := context.Background()
	o := convo.OpenConversation{
		Users: map[string]convo.UserUpdate{
			"12081": {Name: "Alice", Email: []string{"alice@example.com"}, Role: "buyer"},
			"8029":  {Name: "Sebastian", Role: "seller"},
		},
		Conversation: convo.ConversationUpdate{Subject: "What a lovely day!", Custom: map[string]string{"category": "order_inquiry"}},
		Messages:     []convo.OutgoingMessage{convo.UserMessage("8029", "Hello Alice!"), convo.SystemMessage("Order #391")},
	}
	// The first attempt fails at the send, for good (the reset is retried
	// like any idempotent call, so make every try fail).
	c2, mt2, rc2 := convo.NewTestEnv(t, convo.WithTestApp).Answer(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodPost {
			return httpmock.NewStringResponse(503, `{}`), nil
		}
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	ids, err := c2.Conversations.Open(ctx, "order_391_fc", o)
	require.ErrorIs(t, err, convo.ErrServer)
	assert.Empty(t, ids)
	assert.Contains(t, err.Error(), "sending messages")
	assert.Equal(t, 2+4, mt2.GetTotalCallCount(), "users, conversation, then the send tried 4 times")

	calls := rc2.Calls()
	assert.Equal(t, http.MethodPut, calls[0].Method)
	assert.Equal(t, "/v1/app/users", calls[0].Path)
	assert.JSONEq(t, `{"12081":{"name":"Alice","email":["alice@example.com"],"role":"buyer"},"8029":{"name":"Sebastian","role":"seller"}}`, string(calls[0].Body))
	assert.Equal(t, http.MethodPut, calls[1].Method)
	assert.Equal(t, "/v1/app/conversations/order_391_fc", calls[1].Path)
	assert.JSONEq(t, `{"participants":["12081","8029"],"subject":"What a lovely day!","custom":{"category":"order_inquiry"}}`, string(calls[1].Body))
	assert.Equal(t, http.MethodPost, calls[2].Method)
	assert.Equal(t, "/v1/app/conversations/order_391_fc/messages", calls[2].Path)
	firstKeys, rest := withoutKeys(t, calls[2].Body)
	assert.JSONEq(t, `[{"text":"Hello Alice!","sender":"8029","type":"UserMessage"},{"text":"Order #391","type":"SystemMessage"}]`, rest)

	// Calling Open again (on a client whose server now works) sends the
	// same keys: the server can drop what it already has.
	ids, err = c.Conversations.Open(ctx, "order_391_fc", o)
	require.NoError(t, err)
	assert.Len(t, ids, 2)
	var posts []convo.Call
	for _, cl := range rc.Calls() {
		if cl.Method == http.MethodPost {
			posts = append(posts, cl)
		}
	}
	require.Len(t, posts, 2, "a reset, then the retry")
	for _, p := range posts {
		keys, _ := withoutKeys(t, p.Body)
		assert.Equal(t, firstKeys, keys, "the derived keys are stable across calls")
	}
	assert.Equal(t, 4, mt.GetTotalCallCount())

	// Different content or conversation gives other keys; given keys stay.
	o2 := o
	o2.Messages = slices.Clone(o.Messages)
	o2.Messages[0].Text = "Hello Alice!!"
	o2.Messages[1].IdempotencyKey = "given"
	_, err = c.Conversations.Open(ctx, "order_391_fc", o2)
	require.NoError(t, err)
	all := rc.Calls()
	keys, _ := withoutKeys(t, all[len(all)-1].Body)
	assert.NotEqual(t, firstKeys[0], keys[0])
	assert.Equal(t, "given", keys[1])
	assert.Empty(t, o.Messages[0].IdempotencyKey, "the caller's messages are not changed")
}

func TestOpenValidation(t *testing.T) {
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	_, err := c.Conversations.Open(context.Background(), "", convo.OpenConversation{
		Users:        map[string]convo.UserUpdate{"a": {Clear: []string{"bogus"}}},
		Conversation: convo.ConversationUpdate{Clear: []string{"participants"}},
		Messages:     []convo.OutgoingMessage{convo.SystemMessage(" ")},
	})
	ve := requireValidation(t, err)
	assert.Equal(t, []string{"conversationID", `o.Users["a"].Clear`, "o.Conversation.Clear", "o.Messages[0].Text"}, fields(ve))
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

func TestSendMessagesRefusesInvalidUTF8(t *testing.T) {
	mt := httpmock.NewMockTransport()
	c, err := convo.NewClient(convo.WithTalkJS("app", "sk_test_secret"), convo.WithHTTPClient(&http.Client{Transport: mt}))
	require.NoError(t, err)
	_, err = c.Conversations.SendMessages(context.Background(), "c1", convo.UserMessage("u1", "Ol\xe1"))
	var ve *convo.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []convo.Problem{{Field: "msgs[0].Text", Reason: "must be valid UTF-8"}}, ve.Problems)
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

func TestTriggerNotifications(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	ctx := context.Background()
	require.NoError(t, c.Conversations.TriggerNotifications(ctx, "order_391_fc", convo.NotificationTrigger{
		Channels:    []convo.NotificationChannel{convo.ChannelEmail, convo.ChannelSMS},
		Recipients:  []string{"user-1", "user-2"},
		SMSSettings: &convo.SMSSettings{SMSTemplate: `({{app.name}}) {{sender.name}}: "{{messages}}"`},
		EmailSettings: &convo.EmailSettings{
			Subject: "{{sender.name}} wants to chat", Header: "Hi {{recipient.name}},", Footer: "The team",
			InboxURL: "https://yoursite.com/inbox", Extra: map[string]any{"subject": "ignored", "sendAs": "html"},
		},
	}))
	require.NoError(t, c.Conversations.TriggerNotifications(ctx, "order_391_fc", convo.NotificationTrigger{
		Channels: []convo.NotificationChannel{convo.ChannelEmail},
	}))
	calls := rc.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, http.MethodPost, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations/order_391_fc/notifications", calls[0].Path)
	assertHeaders(t, calls[0], true)
	assert.JSONEq(t, `{
	  "channels": ["email", "sms"], "recipients": ["user-1", "user-2"],
	  "smsSettings": {"smsTemplate": "({{app.name}}) {{sender.name}}: \"{{messages}}\""},
	  "emailSettings": {"subject": "{{sender.name}} wants to chat", "header": "Hi {{recipient.name}},",
	    "footer": "The team", "inboxUrl": "https://yoursite.com/inbox", "sendAs": "html"}
	}`, string(calls[0].Body))
	assert.Equal(t, `{"channels":["email"]}`, string(calls[1].Body), "no recipients key: everyone with unanswered messages")

	err := c.Conversations.TriggerNotifications(ctx, "c1", convo.NotificationTrigger{})
	assert.Equal(t, []convo.Problem{{Field: "n.Channels", Reason: "at least one channel is required"}}, requireValidation(t, err).Problems)
	err = c.Conversations.TriggerNotifications(ctx, "c1", convo.NotificationTrigger{
		Channels: []convo.NotificationChannel{"push", convo.ChannelSMS, convo.ChannelSMS}, Recipients: []string{""},
	})
	assert.Equal(t, []convo.Problem{
		{Field: "n.Channels[0]", Reason: `must be "email" or "sms", not "push"`},
		{Field: "n.Channels[2]", Reason: `"sms" is named twice`},
		{Field: "n.Recipients[0]", Reason: "user id must not be empty"},
	}, requireValidation(t, err).Problems)
	assert.Len(t, rc.Calls(), 2, "nothing sent")
}

func TestTriggerNotificationsNeverRepeatedAfterItMayHaveReachedTalkJS(t *testing.T) {
	trigger := convo.NotificationTrigger{Channels: []convo.NotificationChannel{convo.ChannelSMS}}
	for name, fail := range map[string]httpmock.Responder{
		"500":                 httpmock.NewStringResponder(500, `{}`),
		"reset after sending": resetAfterSending,
	} {
		c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(fail.Then(ok200))
		err := c.Conversations.TriggerNotifications(context.Background(), "c1", trigger)
		require.ErrorIs(t, err, convo.ErrOutcomeUnknown, name)
		assert.Equal(t, 1, mt.GetTotalCallCount(), name)
	}
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(429, `{}`).Then(ok200))
	require.NoError(t, c.Conversations.TriggerNotifications(context.Background(), "c1", trigger))
	assert.Equal(t, 2, mt.GetTotalCallCount(), "a 429 was not acted on: tried again")
}
