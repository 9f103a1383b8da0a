package convo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// resetAfterSending is a transport failure after the request went out: it
// is neither a dial error nor a permanent one.
var resetAfterSending = httpmock.NewErrorResponder(errors.New("read tcp 127.0.0.1:1234: connection reset by peer"))

// docMessage is the message of the reference's conversation example.
const docMessage = `{
  "attachment": null, "conversationId": "87d70908d90cee5d12bd", "createdAt": 1632919967033,
  "editedAt": null, "custom": {}, "id": "msg_0UQbqdxnQWkoIw7Db7fZHK", "location": null,
  "origin": "web", "readBy": [], "senderId": "432156789", "text": "Hey, I'm in London",
  "type": "UserMessage", "referencedMessageId": null
}`

func TestMessageGet(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, docMessage))
	m, err := c.Conversations.Message(context.Background(), "87d70908d90cee5d12bd", "msg_0UQbqdxnQWkoIw7Db7fZHK")
	require.NoError(t, err)
	calls := rc.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodGet, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations/87d70908d90cee5d12bd/messages/msg_0UQbqdxnQWkoIw7Db7fZHK", calls[0].Path)
	assertHeaders(t, calls[0], false)
	assert.Equal(t, &convo.Message{
		ID: "msg_0UQbqdxnQWkoIw7Db7fZHK", ConversationID: "87d70908d90cee5d12bd", Type: convo.MessageTypeUser,
		SenderID: "432156789", ReadBy: []string{}, Text: "Hey, I'm in London", Origin: "web",
		CreatedAt: 1632919967033, Custom: map[string]string{},
	}, m)

	c, _, rc = convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(404, `{"message":"message not found"}`))
	_, err = c.Conversations.Message(context.Background(), "a/b", "msg_1")
	require.ErrorIs(t, err, convo.ErrNotFound)
	assert.Equal(t, "/v1/app/conversations/a%2Fb/messages/msg_1", rc.Calls()[0].Path, "ids are escaped as one segment")
}

func TestEditMessage(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	ctx := context.Background()
	require.NoError(t, c.Conversations.EditMessage(ctx, "c1", "msg_1", convo.MessageEdit{
		Text: "The final answer", Custom: map[string]string{"isTyping": "false"},
	}))
	require.NoError(t, c.Conversations.EditMessage(ctx, "c1", "msg_1", convo.MessageEdit{Text: "[deleted]", Clear: []string{"custom"}}))
	calls := rc.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, http.MethodPut, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations/c1/messages/msg_1", calls[0].Path)
	assertHeaders(t, calls[0], true)
	assert.Equal(t, `{"text":"The final answer","custom":{"isTyping":"false"}}`, string(calls[0].Body))
	assert.Equal(t, `{"text":"[deleted]","custom":null}`, string(calls[1].Body))

	for _, tc := range []struct {
		e    convo.MessageEdit
		want []convo.Problem
	}{
		{convo.MessageEdit{}, []convo.Problem{{Field: "e", Reason: "nothing to edit: set Text or Custom, or name custom in Clear"}}},
		{convo.MessageEdit{Clear: []string{"text"}}, []convo.Problem{{Field: "e.Clear", Reason: `field "text" cannot be cleared: a message keeps a text; set Text to replace it`}}},
		{convo.MessageEdit{Custom: map[string]string{"a": "b"}, Clear: []string{"custom"}}, []convo.Problem{{Field: "e.Clear", Reason: `field "custom" is both set and cleared`}}},
		{convo.MessageEdit{Text: "x", Clear: []string{"sender"}}, []convo.Problem{{Field: "e.Clear", Reason: `unknown field "sender" (known: text, custom)`}}},
		{convo.MessageEdit{Text: "\xff"}, []convo.Problem{{Field: "e.Text", Reason: "must be valid UTF-8"}}},
	} {
		err := c.Conversations.EditMessage(ctx, "c1", "msg_1", tc.e)
		assert.Equal(t, tc.want, requireValidation(t, err).Problems, "%+v", tc.e)
	}
	assert.Len(t, rc.Calls(), 2, "nothing sent for a refused edit")
}

func TestEditMessageRetried(t *testing.T) {
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(500, `{}`).Then(ok200))
	require.NoError(t, c.Conversations.EditMessage(context.Background(), "c1", "msg_1", convo.MessageEdit{Text: "x"}))
	assert.Equal(t, 2, mt.GetTotalCallCount(), "a PUT is repeatable")
}

func TestDeleteMessage(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	require.NoError(t, c.Conversations.DeleteMessage(context.Background(), "c1", "msg_1"))
	calls := rc.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodDelete, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations/c1/messages/msg_1", calls[0].Path)
	assertHeaders(t, calls[0], false)

	t.Run("a 404 after an attempt that may have deleted it is success", func(t *testing.T) {
		for _, first := range []httpmock.Responder{httpmock.NewStringResponder(500, `{}`), resetAfterSending} {
			c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(first.Then(httpmock.NewStringResponder(404, `{"message":"message not found"}`)))
			require.NoError(t, c.Conversations.DeleteMessage(context.Background(), "c1", "msg_1"))
			assert.Equal(t, 2, mt.GetTotalCallCount())
		}
	})
	t.Run("a 404 to the first attempt is not found", func(t *testing.T) {
		c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(404, `{"message":"message not found"}`))
		require.ErrorIs(t, c.Conversations.DeleteMessage(context.Background(), "c1", "msg_1"), convo.ErrNotFound)
		assert.Equal(t, 1, mt.GetTotalCallCount())
	})
}

// imports makes n valid imports, one a minute from 2021-01-01.
func imports(n int) []convo.ImportMessage {
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	msgs := make([]convo.ImportMessage, n)
	for i := range msgs {
		msgs[i] = convo.ImportMessage{Sender: "alice", Text: fmt.Sprint("m", i), Timestamp: t0.Add(time.Duration(i) * time.Minute)}
	}
	return msgs
}

func TestImportMessagesWireForm(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	full := convo.ImportMessage{
		Sender: "bob", Text: "See attached", Timestamp: time.UnixMilli(1609459260000),
		ReadBy: []string{"alice"}, AttachmentToken: "att_1", Custom: map[string]string{"source": "zendesk"},
	}
	require.NoError(t, c.Conversations.ImportMessages(context.Background(), "order/391", imports(1)[0], full))
	calls := rc.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodPost, calls[0].Method)
	assert.Equal(t, "/v1/app/import/conversations/order%2F391/messages", calls[0].Path)
	assertHeaders(t, calls[0], true)
	assert.Equal(t, `[`+
		`{"text":"m0","sender":"alice","timestamp":1609459200000,"readBy":[],"type":"UserMessage"},`+
		`{"text":"See attached","sender":"bob","timestamp":1609459260000,"readBy":["alice"],"type":"UserMessage",`+
		`"attachmentToken":"att_1","custom":{"source":"zendesk"}}]`, string(calls[0].Body),
		"every required field, readBy [] when nobody read it, no other key")
}

func TestImportMessagesChunksInOrder(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	require.NoError(t, c.Conversations.ImportMessages(context.Background(), "c1", imports(25)...))
	calls := rc.Calls()
	require.Len(t, calls, 3)
	var got []string
	for i, want := range []int{10, 10, 5} {
		msgs := sentMessages(t, calls[i].Body)
		require.Len(t, msgs, want)
		for _, m := range msgs {
			got = append(got, m["text"].(string))
		}
	}
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprint("m", i))
	}
	assert.Equal(t, want, got)
}

func TestImportMessagesValidation(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	msgs := imports(12)
	msgs[0].Sender = ""
	msgs[3].Timestamp = time.Time{}
	msgs[5].Text = " "
	msgs[7].Timestamp = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)
	msgs[11].ReadBy = []string{"bob", ""}
	attachmentOnly := convo.ImportMessage{Sender: "alice", Timestamp: time.Now(), AttachmentToken: "att"}
	err := c.Conversations.ImportMessages(context.Background(), "c1", append(msgs, attachmentOnly)...)
	assert.Equal(t, []convo.Problem{
		{Field: "msgs[0].Sender", Reason: "required"},
		{Field: "msgs[3].Timestamp", Reason: "required"},
		{Field: "msgs[5].Text", Reason: "must not be empty"},
		{Field: "msgs[7].Timestamp", Reason: "must be after 1970-01-01"},
		{Field: "msgs[11].ReadBy[1]", Reason: "user id must not be empty"},
	}, requireValidation(t, err).Problems, "every problem, a message of the second request's too")
	assert.Empty(t, rc.Calls(), "nothing sent")

	err = c.Conversations.ImportMessages(context.Background(), "c1")
	assert.Equal(t, []string{"msgs"}, fields(requireValidation(t, err)))
	err = c.Conversations.ImportMessages(context.Background(), "", imports(1)...)
	assert.Equal(t, []string{"conversationID"}, fields(requireValidation(t, err)))
	assert.Empty(t, rc.Calls())
}

func TestImportMessagesNeverRepeatedAfterItMayHaveReachedTalkJS(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail httpmock.Responder
		err  error
	}{
		{"500", httpmock.NewStringResponder(500, `{"message":"oops"}`), convo.ErrServer},
		{"503", httpmock.NewStringResponder(503, `{}`), convo.ErrOutcomeUnknown},
		{"reset after sending", resetAfterSending, convo.ErrOutcomeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
			n := 0
			mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
				n++
				if n == 2 {
					return tc.fail(r)
				}
				return ok200(r)
			})
			err := c.Conversations.ImportMessages(context.Background(), "c1", imports(25)...)
			require.ErrorIs(t, err, tc.err)
			require.ErrorIs(t, err, convo.ErrOutcomeUnknown)
			assert.Equal(t, 2, mt.GetTotalCallCount(), "the failed request is not repeated, the third never sent")
			var ie *convo.ImportError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, convo.ImportError{ConversationID: "c1", Imported: 10, Failed: 10, Total: 25, Err: ie.Err}, *ie)
			assert.True(t, strings.HasPrefix(err.Error(), `convo: import into conversation "c1": messages 0 to 9 of 25 imported; `+
				`messages 10 to 19 may have been imported (do not import them again before you check); messages 20 to 24 were not sent: `), err.Error())
		})
	}
}

func TestImportMessagesRetriedWhenSurelyUntouched(t *testing.T) {
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(429, `{}`).Then(ok200))
	require.NoError(t, c.Conversations.ImportMessages(context.Background(), "c1", imports(3)...))
	assert.Equal(t, 2, mt.GetTotalCallCount(), "a 429 was not acted on")

	c, mt, _ = convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(400, `{"reasons":{"messages[0].sender":["\"ghost\" is not a participant of the conversation"]}}`))
	err := c.Conversations.ImportMessages(context.Background(), "c1", imports(3)...)
	require.ErrorIs(t, err, convo.ErrInvalidRequest)
	assert.False(t, errors.Is(err, convo.ErrOutcomeUnknown))
	assert.Equal(t, 1, mt.GetTotalCallCount())
	assert.Equal(t, `convo: import into conversation "c1": none of 3 messages imported; messages 0 to 2 were refused: `+
		`convo: talkjs POST /v1/app/import/conversations/c1/messages: 400 Bad Request: messages[0].sender: "ghost" is not a participant of the conversation`,
		err.Error())
}

func TestImportMessagesNothingSentSaysSo(t *testing.T) {
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(ok200)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Conversations.ImportMessages(ctx, "c1", imports(3)...)
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, convo.ErrOutcomeUnknown)
	assert.Zero(t, mt.GetTotalCallCount())
	assert.Contains(t, err.Error(), `none of 3 messages imported; messages 0 to 2 were not imported: `)
}

func TestSendMessagesAttachmentAndLocation(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(idsResponder())
	file := convo.UserMessage("alice", "")
	file.AttachmentToken = "att_1"
	file.IdempotencyKey = "k1"
	here := convo.UserMessage("alice", "I'm here")
	here.Location = &[2]float64{51.481083, -3.178306}
	here.IdempotencyKey = "k2"
	_, err := c.Conversations.SendMessages(context.Background(), "c1", file, here)
	require.NoError(t, err)
	assert.JSONEq(t, `[
	  {"sender":"alice","type":"UserMessage","attachmentToken":"att_1","idempotencyKey":"k1"},
	  {"text":"I'm here","sender":"alice","type":"UserMessage","location":[51.481083,-3.178306],"idempotencyKey":"k2"}
	]`, string(rc.Calls()[0].Body))

	sys := convo.SystemMessage("Meet here")
	sys.Location = &[2]float64{0, 0}
	bad := convo.UserMessage("alice", "x")
	bad.Location = &[2]float64{91, -181}
	_, err = c.Conversations.SendMessages(context.Background(), "c1", sys, bad, convo.UserMessage("alice", ""))
	assert.Equal(t, []convo.Problem{
		{Field: "msgs[0].Location", Reason: "a system message cannot carry a location"},
		{Field: "msgs[1].Location", Reason: "latitude must be from -90 to 90, got 91"},
		{Field: "msgs[1].Location", Reason: "longitude must be from -180 to 180, got -181"},
		{Field: "msgs[2].Text", Reason: "must not be empty"},
	}, requireValidation(t, err).Problems)
	assert.Len(t, rc.Calls(), 1, "nothing sent")
}

// TestTalkJSRestOnConvotest runs every new call against the fake, with app
// tokens instead of the secret key.
func TestTalkJSRestOnConvotest(t *testing.T) {
	srv := convotest.NewServer()
	t.Cleanup(srv.Close)
	c, err := srv.Client(convo.WithTalkJSTokenAuth())
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Users.Upsert(ctx, "alice", convo.UserUpdate{Name: "Alice", AvailabilityText: "Back on Monday"}))
	require.NoError(t, c.Users.Upsert(ctx, "bob", convo.UserUpdate{Name: "Bob"}))
	require.NoError(t, c.Conversations.Upsert(ctx, "c1", convo.ConversationUpdate{Participants: []string{"alice", "bob"}}))

	ids, err := c.Conversations.SendMessages(ctx, "c1", convo.UserMessage("bob", "_Let me think..._"))
	require.NoError(t, err)
	require.NoError(t, c.Conversations.EditMessage(ctx, "c1", ids[0], convo.MessageEdit{Text: "It ships today."}))
	m, err := c.Conversations.Message(ctx, "c1", ids[0])
	require.NoError(t, err)
	assert.Equal(t, "It ships today.", m.Text)
	assert.False(t, m.EditedAt.IsZero())
	require.NoError(t, c.Conversations.DeleteMessage(ctx, "c1", ids[0]))
	require.ErrorIs(t, c.Conversations.DeleteMessage(ctx, "c1", ids[0]), convo.ErrNotFound)

	require.NoError(t, c.Conversations.ImportMessages(ctx, "c1", imports(12)...))
	msgs := srv.Messages("c1")
	require.Len(t, msgs, 12)
	assert.Equal(t, "import", msgs[0].Origin)
	assert.Equal(t, "m0", msgs[0].Text)

	require.NoError(t, c.Conversations.TriggerNotifications(ctx, "c1", convo.NotificationTrigger{Channels: []convo.NotificationChannel{convo.ChannelSMS}}))
	assert.Equal(t, 1, srv.Stats().TalkJSNotifications)

	srv.SetPresence("alice", &convotest.Presence{Widgets: []convotest.PresenceSession{{HasFocus: true, SessionID: "s1"}}})
	ps, err := c.Users.Presence(ctx, convo.PresenceQuery{HasFocus: convo.Bool(true)})
	require.NoError(t, err)
	assert.Equal(t, map[string]convo.Presence{"alice": {Status: "online", BackgroundSessions: []convo.PresenceSession{},
		Widgets: []convo.PresenceSession{{Custom: map[string]string{}, HasFocus: true, SessionID: "s1"}}}}, ps)
	var online []string
	for u, err := range c.Users.List(ctx, &convo.ListOptions{IsOnline: convo.Bool(true)}) {
		require.NoError(t, err)
		online = append(online, u.ID)
	}
	assert.Equal(t, []string{"alice"}, online)

	// The fake refuses what TalkJS refuses, with its reasons.
	err = c.Conversations.ImportMessages(ctx, "c1", convo.ImportMessage{Sender: "ghost", Text: "x", Timestamp: time.Now()})
	var ae *convo.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, []convo.Problem{{Field: "messages[0].sender", Reason: `"ghost" is not a participant of the conversation`}}, ae.Problems)
	assert.Contains(t, err.Error(), `400 Bad Request: messages[0].sender: "ghost" is not a participant of the conversation`)

	for _, r := range srv.Requests() {
		auth := r.Header.Get("Authorization")
		assert.True(t, strings.HasPrefix(auth, "Bearer ey"), "an app token: %s %s", r.Method, r.Path)
		assert.NotContains(t, auth, srv.SecretKey())
	}
}
