package convo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const selartiFixture = "testdata/selarti-all-messages.json"

func readSelartiFixture(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(selartiFixture)
	require.NoError(tb, err)
	return b
}

// selartiBody is the fixture with some keys set to other raw JSON values
// (a nil value removes the key).
func selartiBody(t *testing.T, set map[string]any) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(readSelartiFixture(t), &m))
	for k, v := range set {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestParseSelartiEventFixture(t *testing.T) {
	body := readSelartiFixture(t)
	ev, err := ParseSelartiEvent(body)
	require.NoError(t, err)

	assert.Equal(t, "5q", ev.ChannelID)
	assert.False(t, ev.Close)
	assert.Equal(t, "1708251850060x460235863640434700", ev.CompanyID)
	assert.Equal(t, "123456789", ev.Contacts)
	assert.Equal(t, "123456789", ev.ExternalChatID)
	assert.False(t, ev.GetContact)
	assert.False(t, ev.Interest)
	assert.False(t, ev.IsBot)
	assert.Equal(t, "4q", ev.ManagerID)
	assert.Equal(t, "1731336491876x582725124419040400", ev.MessageID)
	assert.Equal(t, "It looks like you are testing API functionality by sending a test message along with metadata like a timestamp and timezone. If you have any questions or need assistance with this, feel free to ask!", ev.MessageText)
	assert.Equal(t, AuthorBot, ev.MessageType)
	assert.False(t, ev.Operator)
	assert.Equal(t, "https://selarti.com/panel?menu=chats&thread=1731336491572x316716105037601100", ev.PanelURL)
	assert.Equal(t, "https://selarti.com/share?thread=1731336491572x316716105037601100", ev.ShareURL)
	assert.False(t, ev.Success)
	assert.Equal(t, "1721129985149x478019552540622850", ev.TaskID)
	assert.Equal(t, "1731336491572x316716105037601100", ev.ThreadID)
	assert.Equal(t, "API chat 123456789", ev.Title)
	assert.Equal(t, SelartiAllMessages, ev.Type)
	assert.Equal(t, json.RawMessage(body), ev.Raw)
}

func TestParseSelartiEventYesNo(t *testing.T) {
	tests := []struct {
		name string
		raw  any // the value of "close"; nil removes the key
		want bool
	}{
		{"yes", "yes", true},
		{"Yes", "Yes", true},
		{"YES", "YES", true},
		{"no", "no", false},
		{"No", "No", false},
		{"NO", "NO", false},
		{"string true", "true", true},
		{"string True", "True", true},
		{"string false", "false", false},
		{"JSON true", true, true},
		{"JSON false", false, false},
		{"empty string", "", false},
		{"escaped yes", json.RawMessage(`"\u0079es"`), true},
		{"null", json.RawMessage(`null`), false},
		{"missing", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every yes/no field decodes the same way.
			for _, key := range []string{"close", "get_contact", "interest", "is_bot", "operator", "success"} {
				ev, err := ParseSelartiEvent(selartiBody(t, map[string]any{key: tt.raw}))
				require.NoError(t, err, key)
				got := map[string]bool{
					"close": ev.Close, "get_contact": ev.GetContact, "interest": ev.Interest,
					"is_bot": ev.IsBot, "operator": ev.Operator, "success": ev.Success,
				}
				assert.Equal(t, tt.want, got[key], key)
			}
		})
	}
}

func TestParseSelartiEventErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		field string
		want  string
	}{
		{"bad yes/no word", selartiBody(t, map[string]any{"close": "maybe"}), "close",
			`convo: selarti webhook: close: want "yes", "no", true or false, got string "maybe"`},
		{"yes with a space", selartiBody(t, map[string]any{"success": " yes"}), "success",
			`convo: selarti webhook: success: want "yes", "no", true or false, got string " yes"`},
		{"number for a bool", selartiBody(t, map[string]any{"is_bot": 1}), "is_bot",
			`convo: selarti webhook: is_bot: want "yes", "no", true or false, got number 1`},
		{"object for a bool", selartiBody(t, map[string]any{"operator": map[string]any{}}), "operator",
			`convo: selarti webhook: operator: want "yes", "no", true or false, got object`},
		{"object for an id", selartiBody(t, map[string]any{"message_id": map[string]any{"a": 1}}), "message_id",
			`convo: selarti webhook: message_id: want a string or a number, got object`},
		{"bool for an id", selartiBody(t, map[string]any{"thread_id": true}), "thread_id",
			`convo: selarti webhook: thread_id: want a string or a number, got bool true`},
		{"number for a text", selartiBody(t, map[string]any{"title": 7}), "title",
			`convo: selarti webhook: title: want a string, got number`},
		{"not JSON", []byte(`{"close": yes}`), "",
			`convo: selarti webhook: not valid JSON: invalid character 'y' looking for beginning of value`},
		{"truncated", []byte(`{"close": "yes"`), "",
			`convo: selarti webhook: not valid JSON: unexpected end of JSON input`},
		{"array", []byte(`[{"close":"yes"}]`), "",
			`convo: selarti webhook: want a JSON object, got array`},
		{"string", []byte(`"all_messages"`), "",
			`convo: selarti webhook: want a JSON object, got string "all_messages"`},
		{"null", []byte(`null`), "",
			`convo: selarti webhook: want a JSON object, got null`},
		{"empty body", nil, "", `convo: selarti webhook: empty body`},
		{"blank body", []byte(" \n"), "", `convo: selarti webhook: empty body`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseSelartiEvent(tt.body)
			require.Error(t, err)
			assert.Nil(t, ev)
			assert.EqualError(t, err, tt.want)
			assert.ErrorIs(t, err, ErrInvalidPayload)
			var pe *PayloadError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.field, pe.Field)
			assert.Equal(t, ProviderSelarti, pe.Provider)
		})
	}
}

func TestParseSelartiEventNumericIDs(t *testing.T) {
	body := selartiBody(t, map[string]any{
		"message_id":       json.RawMessage(`1731336491876`),
		"channel_id":       json.RawMessage(`12.50`),
		"external_chat_id": json.RawMessage(`-100123`),
		"contacts":         json.RawMessage(`79991234567`),
		"manager_id":       json.RawMessage(`null`),
		"task_id":          nil,
	})
	ev, err := ParseSelartiEvent(body)
	require.NoError(t, err)
	assert.Equal(t, "1731336491876", ev.MessageID)
	assert.Equal(t, "12.50", ev.ChannelID)
	assert.Equal(t, "-100123", ev.ExternalChatID)
	assert.Equal(t, "79991234567", ev.Contacts)
	assert.Empty(t, ev.ManagerID)
	assert.Empty(t, ev.TaskID)
}

func TestParseSelartiEventKeepsEscapesAndUnicode(t *testing.T) {
	body := []byte(`{"message_id":"a\"b","title":"Мария \u00e9","message_text":"line\nnext","wh_type":"all_messages","message_type":"operator","thread_id":"x\u0041"}`)
	ev, err := ParseSelartiEvent(body)
	require.NoError(t, err)
	assert.Equal(t, `a"b`, ev.MessageID)
	assert.Equal(t, "Мария é", ev.Title)
	assert.Equal(t, "line\nnext", ev.MessageText)
	assert.Equal(t, "xA", ev.ThreadID)
	assert.Equal(t, AuthorOperator, ev.MessageType)
}

func TestSelartiEventRoundTrip(t *testing.T) {
	body := readSelartiFixture(t)
	ev, err := ParseSelartiEvent(body)
	require.NoError(t, err)
	out, err := json.Marshal(ev)
	require.NoError(t, err)
	assert.JSONEq(t, string(body), string(out))

	// A value marshals the same, and true flags come out as "yes".
	ev.Close, ev.Success = true, true
	out, err = json.Marshal(*ev)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	assert.Equal(t, "yes", m["close"])
	assert.Equal(t, "yes", m["success"])
	assert.Equal(t, "no", m["interest"])
	assert.NotContains(t, m, "Raw")
	assert.Len(t, m, 20)
}

func TestSelartiEventUnmarshalJSON(t *testing.T) {
	body := readSelartiFixture(t)
	var wrapper struct {
		Event SelartiEvent `json:"event"`
	}
	in := append(append([]byte(`{"event":`), body...), '}')
	require.NoError(t, json.Unmarshal(in, &wrapper))
	assert.Equal(t, "1731336491876x582725124419040400", wrapper.Event.MessageID)
	assert.JSONEq(t, string(body), string(wrapper.Event.Raw))

	err := json.Unmarshal([]byte(`{"event":{"close":"maybe"}}`), &wrapper)
	assert.ErrorIs(t, err, ErrInvalidPayload)
}

// --- TalkJS parsing and signatures --------------------------------------

const talkjsMessageSent = `{
  "id": "evt_AbC123",
  "createdAt": 1632919967100,
  "type": "message.sent",
  "data": {
    "conversation": {
      "id": "order_391_fc", "subject": null, "photoUrl": null, "welcomeMessages": null,
      "custom": {"answered": "false"}, "topicId": null, "createdAt": 1623926680929,
      "participants": {"user_1": {"access": "ReadWrite", "notify": true}, "user_2": {"access": "Read", "notify": "MentionsOnly"}}
    },
    "message": {
      "id": "msg_0UQbqdxnQWkoIw7Db7fZHK", "conversationId": "order_391_fc", "type": "UserMessage",
      "senderId": "user_1", "text": "Hello", "readBy": [], "origin": "web", "attachment": null,
      "location": null, "custom": {}, "createdAt": 1632919967033, "editedAt": null,
      "referencedMessageId": null
    },
    "sender": {
      "id": "user_1", "name": "Alice", "email": ["alice@example.com"], "phone": null, "photoUrl": null,
      "role": "customer", "locale": null, "welcomeMessage": null, "availabilityText": null,
      "custom": {}, "pushTokens": {}, "createdAt": 1623926680918
    }
  }
}`

func TestParseTalkJSEventMessageSent(t *testing.T) {
	ev, err := ParseTalkJSEvent([]byte(talkjsMessageSent))
	require.NoError(t, err)
	assert.Equal(t, "evt_AbC123", ev.ID)
	assert.Equal(t, TalkJSMessageSent, ev.Type)
	assert.Equal(t, time.UnixMilli(1632919967100).UTC(), ev.CreatedAt)
	assert.Equal(t, time.UTC, ev.CreatedAt.Location())
	assert.Equal(t, talkjsMessageSent, string(ev.Raw))

	d, err := ev.MessageSent()
	require.NoError(t, err)
	require.NotNil(t, d.Conversation)
	assert.Equal(t, "order_391_fc", d.Conversation.ID)
	assert.Empty(t, d.Conversation.Subject)
	assert.Equal(t, map[string]string{"answered": "false"}, d.Conversation.Custom)
	assert.Equal(t, NotifyOn, d.Conversation.Participants["user_1"].Notify)
	assert.Equal(t, AccessReadWrite, d.Conversation.Participants["user_1"].Access)
	assert.Equal(t, NotifyMentionsOnly, d.Conversation.Participants["user_2"].Notify)
	require.NotNil(t, d.Message)
	assert.Equal(t, "msg_0UQbqdxnQWkoIw7Db7fZHK", d.Message.ID)
	assert.Equal(t, "Hello", d.Message.Text)
	assert.Equal(t, "user_1", d.Message.SenderID)
	assert.Equal(t, UnixMillis(1632919967033), d.Message.CreatedAt)
	assert.Zero(t, d.Message.EditedAt)
	assert.Nil(t, d.Message.Attachment)
	require.NotNil(t, d.Sender)
	assert.Equal(t, "Alice", d.Sender.Name)
	assert.Equal(t, "customer", d.Sender.Role)
	assert.Equal(t, []string{"alice@example.com"}, d.Sender.Email)
	assert.Nil(t, d.Sender.Phone)

	_, err = ev.User()
	assert.ErrorIs(t, err, ErrWrongEventType)
}

func TestParseTalkJSEventSystemMessage(t *testing.T) {
	for name, sender := range map[string]string{"null sender": `,"sender":null`, "no sender": ``} {
		t.Run(name, func(t *testing.T) {
			body := `{"id":"evt_1","type":"message.sent","createdAt":"1632919967100","data":{"conversation":{"id":"c"},` +
				`"message":{"id":"m","type":"SystemMessage","senderId":null,"text":"Welcome"}` + sender + `}}`
			ev, err := ParseTalkJSEvent([]byte(body))
			require.NoError(t, err)
			assert.Equal(t, time.UnixMilli(1632919967100).UTC(), ev.CreatedAt, "numeric string createdAt")
			d, err := ev.MessageSent()
			require.NoError(t, err)
			assert.Nil(t, d.Sender)
			assert.Empty(t, d.Message.SenderID)
			assert.Equal(t, MessageTypeSystem, d.Message.Type)
		})
	}
}

func TestParseTalkJSEventUser(t *testing.T) {
	body := `{"id":"evt_2","type":"user.updated","createdAt":1623926680918,"data":{"user":` +
		`{"id":"123456789","name":"Alice","locale":"en-US","phone":null,"custom":{},"pushTokens":{"apns:MY_TOKEN_ID":true,"fcm:x":null},"createdAt":1623926680918}}}`
	ev, err := ParseTalkJSEvent([]byte(body))
	require.NoError(t, err)
	u, err := ev.User()
	require.NoError(t, err)
	assert.Equal(t, "123456789", u.ID)
	assert.Equal(t, "en-US", u.Locale)
	assert.Equal(t, map[string]bool{"apns:MY_TOKEN_ID": true, "fcm:x": false}, u.PushTokens)

	_, err = ev.MessageSent()
	assert.ErrorIs(t, err, ErrWrongEventType)

	ev, err = ParseTalkJSEvent([]byte(`{"id":"evt_3","type":"user.created","data":{}}`))
	require.NoError(t, err)
	_, err = ev.User()
	assert.EqualError(t, err, "convo: talkjs webhook: data.user: missing")

	ev, err = ParseTalkJSEvent([]byte(`{"id":"evt_3","type":"user.created","data":{"user":{"name":5}}}`))
	require.NoError(t, err)
	_, err = ev.User()
	assert.EqualError(t, err, "convo: talkjs webhook: data.user.name: want a string, got number")
	assert.ErrorIs(t, err, ErrInvalidPayload)

	ev, err = ParseTalkJSEvent([]byte(`{"id":"evt_4","type":"message.sent","data":{"message":"hi"}}`))
	require.NoError(t, err)
	_, err = ev.MessageSent()
	assert.EqualError(t, err, "convo: talkjs webhook: data.message: want an object, got string")
}

func TestParseTalkJSEventLenient(t *testing.T) {
	ev, err := ParseTalkJSEvent([]byte(`{"id":"evt_9","type":"reaction.added","createdAt":"2021-09-29T12:52:47.1Z","data":{"x":1}}`))
	require.NoError(t, err, "an unknown type is not an error")
	assert.Equal(t, TalkJSEventType("reaction.added"), ev.Type)
	assert.Equal(t, time.Date(2021, 9, 29, 12, 52, 47, 1e8, time.UTC), ev.CreatedAt)
	assert.JSONEq(t, `{"x":1}`, string(ev.Data))

	ev, err = ParseTalkJSEvent([]byte(`{"id":"evt_9","type":"message.read"}`))
	require.NoError(t, err)
	assert.True(t, ev.CreatedAt.IsZero())
}

func TestParseTalkJSEventErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"empty", ``, "convo: talkjs webhook: empty body"},
		{"array", `[]`, "convo: talkjs webhook: want a JSON object, got array"},
		{"not JSON", `{"id":`, "convo: talkjs webhook: not valid JSON: unexpected end of JSON input"},
		{"bad createdAt", `{"id":"e","createdAt":"yesterday"}`, `convo: talkjs webhook: createdAt: want Unix milliseconds, got string "yesterday"`},
		{"bool createdAt", `{"id":"e","createdAt":true}`, `convo: talkjs webhook: createdAt: want Unix milliseconds, got bool true`},
		{"number type", `{"id":"e","type":5}`, "convo: talkjs webhook: type: want a string, got number"},
		{"array data", `{"id":"e","data":[1]}`, "convo: talkjs webhook: data: want an object, got array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTalkJSEvent([]byte(tt.body))
			assert.EqualError(t, err, tt.want)
			assert.ErrorIs(t, err, ErrInvalidPayload)
		})
	}
}

func TestTalkJSSignature(t *testing.T) {
	const secret, ts = "sk_test_AbCdEf", "1632919967100"
	body := []byte(talkjsMessageSent)
	sig := SignTalkJSWebhook(secret, ts, body)
	assert.Len(t, sig, 64)
	assert.Equal(t, strings.ToUpper(sig), sig, "TalkJS sends uppercase hex")

	assert.NoError(t, VerifyTalkJSSignature(secret, ts, body, sig))
	assert.NoError(t, VerifyTalkJSSignature(secret, ts, body, strings.ToLower(sig)))

	tests := []struct {
		name                  string
		secret, ts, body, sig string
		want                  error
	}{
		{"empty secret", "", ts, string(body), sig, ErrNoSecret},
		{"empty signature", secret, ts, string(body), "", ErrMissingSignature},
		{"empty timestamp", secret, "", string(body), sig, ErrMissingSignature},
		{"other body", secret, ts, string(body) + " ", sig, ErrInvalidSignature},
		{"other timestamp", secret, "1632919967101", string(body), sig, ErrInvalidSignature},
		{"other secret", "sk_test_other", ts, string(body), sig, ErrInvalidSignature},
		{"not hex", secret, ts, string(body), strings.Repeat("Z", 64), ErrInvalidSignature},
		{"short", secret, ts, string(body), sig[:62], ErrInvalidSignature},
		{"body only (a common mistake)", secret, ts, string(body), bodyOnlySig(secret, body), ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyTalkJSSignature(tt.secret, tt.ts, []byte(tt.body), tt.sig)
			require.ErrorIs(t, err, tt.want)
			if tt.secret != "" {
				assert.NotContains(t, err.Error(), tt.secret)
			}
			assert.NotContains(t, strings.ToUpper(err.Error()), sig)
		})
	}
}

// bodyOnlySig is the HMAC of the body alone, without "timestamp.".
func bodyOnlySig(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}

// --- dedup store --------------------------------------------------------

func TestMemoryDedupStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryDedupStore(2)
	claim := func(id string) ClaimState {
		st, err := s.Claim(ctx, id)
		require.NoError(t, err)
		return st
	}
	assert.Equal(t, ClaimNew, claim("a"))
	assert.Equal(t, ClaimInProgress, claim("a"))
	require.NoError(t, s.Release(ctx, "a"))
	assert.Equal(t, ClaimNew, claim("a"))
	require.NoError(t, s.Complete(ctx, "a"))
	assert.Equal(t, ClaimDone, claim("a"))

	for _, id := range []string{"b", "c"} {
		assert.Equal(t, ClaimNew, claim(id))
		require.NoError(t, s.Complete(ctx, id))
	}
	assert.Equal(t, ClaimNew, claim("a"), "the oldest done id is forgotten past capacity")
	assert.Equal(t, ClaimDone, claim("b"))
	assert.Equal(t, ClaimDone, claim("c"))
	require.NoError(t, s.Complete(ctx, "a"))
	assert.Equal(t, ClaimNew, claim("b"))
	assert.Equal(t, ClaimDone, claim("c"))
	assert.Len(t, s.done, 2)

	assert.Equal(t, "in progress", ClaimInProgress.String())
	assert.Equal(t, "ClaimState(0)", ClaimState(0).String())
	assert.Panics(t, func() { NewMemoryDedupStore(0) })
}

func TestMemoryDedupStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryDedupStore(100)
	var news atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := s.Claim(ctx, "same")
			if st == ClaimNew {
				news.Add(1)
				_ = s.Complete(ctx, "same")
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), news.Load())
}

// --- handlers -----------------------------------------------------------

type hookRequest struct {
	method string
	target string
	body   []byte
	header map[string]string
}

func serveHook(h http.Handler, r hookRequest) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.target == "" {
		r.target = "/hook"
	}
	req := httptest.NewRequest(r.method, r.target, bytes.NewReader(r.body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// hookCounter is an fn for the handlers that counts its calls and returns the
// errors queued in errs, one a call.
type hookCounter struct {
	mu    sync.Mutex
	calls int
	errs  []error
	ids   []string
}

func (c *hookCounter) next(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.ids = append(c.ids, id)
	if len(c.errs) > 0 {
		err := c.errs[0]
		c.errs = c.errs[1:]
		return err
	}
	return nil
}

func (c *hookCounter) selarti(_ context.Context, ev *SelartiEvent) error { return c.next(ev.MessageID) }
func (c *hookCounter) talkjs(_ context.Context, ev *TalkJSEvent) error   { return c.next(ev.ID) }

func (c *hookCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func assertJSONError(t *testing.T, rec *httptest.ResponseRecorder, status int, msg string) {
	t.Helper()
	assert.Equal(t, status, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	assert.Contains(t, body.Error, msg)
}

func assertOK(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "{}", rec.Body.String())
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
}

func TestSelartiHandlerDelivers(t *testing.T) {
	var got *SelartiEvent
	var gotCtx context.Context
	h := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		got, gotCtx = ev, ctx
		return nil
	})
	body := readSelartiFixture(t)
	req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	type key struct{}
	req = req.WithContext(context.WithValue(req.Context(), key{}, "v"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assertOK(t, rec)
	require.NotNil(t, got)
	assert.Equal(t, "1731336491876x582725124419040400", got.MessageID)
	assert.Equal(t, string(body), string(got.Raw))
	assert.Equal(t, "v", gotCtx.Value(key{}), "fn runs with the request's context")
}

func TestSelartiHandlerStatuses(t *testing.T) {
	fixture := readSelartiFixture(t)
	withID := func(id string, set map[string]any) []byte {
		if set == nil {
			set = map[string]any{}
		}
		set["message_id"] = id
		return selartiBody(t, set)
	}

	t.Run("405 for GET with Allow", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti)
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodHead, http.MethodDelete} {
			rec := serveHook(h, hookRequest{method: m, body: fixture})
			assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, m)
			assert.Equal(t, "POST", rec.Header().Get("Allow"), m)
		}
		assert.Equal(t, 0, c.count())
	})

	t.Run("413 over the limit", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithBodyLimit(100))
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusRequestEntityTooLarge, "body too large")

		// Without a Content-Length the reader stops at the limit.
		req := httptest.NewRequest(http.MethodPost, "/hook", struct{ *bytes.Reader }{bytes.NewReader(fixture)})
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assertJSONError(t, rec, http.StatusRequestEntityTooLarge, "body too large")

		// The default limit is 1 MiB.
		h = NewSelartiHandler(c.selarti)
		big := selartiBody(t, map[string]any{"message_text": strings.Repeat("a", 1<<20)})
		assert.Equal(t, http.StatusRequestEntityTooLarge, serveHook(h, hookRequest{body: big}).Code)
		assert.Equal(t, 0, c.count())
	})

	t.Run("400 bad body", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti)
		assertJSONError(t, serveHook(h, hookRequest{body: []byte(`{"close":`)}), http.StatusBadRequest, "not valid JSON")
		assertJSONError(t, serveHook(h, hookRequest{body: nil}), http.StatusBadRequest, "empty body")
		assertJSONError(t, serveHook(h, hookRequest{body: withID("x", map[string]any{"close": "maybe"})}), http.StatusBadRequest,
			`close: want "yes", "no", true or false, got string "maybe"`)
		assert.Equal(t, 0, c.count())
	})

	t.Run("200 skip other wh_type", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti)
		assertOK(t, serveHook(h, hookRequest{body: withID("1", map[string]any{"wh_type": "tag_success"})}))
		assertOK(t, serveHook(h, hookRequest{body: withID("2", map[string]any{"wh_type": nil})}))
		assert.Equal(t, 0, c.count())
	})

	t.Run("200 skip user message", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti)
		assertOK(t, serveHook(h, hookRequest{body: withID("1", map[string]any{"message_type": "user"})}))
		assertOK(t, serveHook(h, hookRequest{body: withID("2", map[string]any{"message_type": "system"})}))
		assert.Equal(t, 0, c.count())
		assertOK(t, serveHook(h, hookRequest{body: withID("3", map[string]any{"message_type": "operator"})}))
		assertOK(t, serveHook(h, hookRequest{body: withID("4", map[string]any{"message_type": "bot"})}))
		assert.Equal(t, 2, c.count())
	})

	t.Run("200 user message with WithUserMessages", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithUserMessages())
		assertOK(t, serveHook(h, hookRequest{body: withID("1", map[string]any{"message_type": "user"})}))
		assert.Equal(t, 1, c.count())
	})

	t.Run("200 duplicate with one call", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti)
		for i := 0; i < 3; i++ {
			assertOK(t, serveHook(h, hookRequest{body: fixture}))
		}
		assert.Equal(t, 1, c.count())
		// The same id in another body is still a duplicate.
		assertOK(t, serveHook(h, hookRequest{body: withID("1731336491876x582725124419040400", map[string]any{"message_text": "other"})}))
		assert.Equal(t, 1, c.count())
	})

	t.Run("500 fn error then redelivery handled", func(t *testing.T) {
		c := hookCounter{errs: []error{errors.New("relay down")}}
		h := NewSelartiHandler(c.selarti)
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusInternalServerError, "handler failed")
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assert.Equal(t, 2, c.count())
	})

	t.Run("500 fn panic then redelivery handled", func(t *testing.T) {
		calls := 0
		h := NewSelartiHandler(func(context.Context, *SelartiEvent) error {
			calls++
			if calls == 1 {
				panic("boom")
			}
			return nil
		})
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusInternalServerError, "handler failed")
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assert.Equal(t, 2, calls)
	})

	t.Run("no message_id handled every time", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti)
		body := selartiBody(t, map[string]any{"message_id": nil})
		assertOK(t, serveHook(h, hookRequest{body: body}))
		assertOK(t, serveHook(h, hookRequest{body: body}))
		body = selartiBody(t, map[string]any{"message_id": ""})
		assertOK(t, serveHook(h, hookRequest{body: body}))
		assert.Equal(t, 3, c.count())
	})
}

func TestSelartiHandlerInProgress(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	h := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return nil
	})
	fixture := readSelartiFixture(t)

	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- serveHook(h, hookRequest{body: fixture}) }()
	<-started
	assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusConflict, "in progress")
	close(release)
	assertOK(t, <-first)
	assertOK(t, serveHook(h, hookRequest{body: fixture}))
	assert.Equal(t, int32(1), calls.Load())
}

func TestSelartiHandlerSharedSecret(t *testing.T) {
	const secret = "s3cr3t-value"
	fixture := readSelartiFixture(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	tests := []struct {
		name   string
		target string
		header map[string]string
		status int
	}{
		{"missing", "/hook", nil, http.StatusUnauthorized},
		{"wrong header", "/hook", map[string]string{"X-Convo-Secret": "nope"}, http.StatusUnauthorized},
		{"wrong query", "/hook?secret=nope", nil, http.StatusUnauthorized},
		{"prefix of the secret", "/hook?secret=s3cr3t", nil, http.StatusUnauthorized},
		{"empty query", "/hook?secret=", nil, http.StatusUnauthorized},
		{"wrong header wins over right query", "/hook?secret=" + secret, map[string]string{"X-Convo-Secret": "nope"}, http.StatusUnauthorized},
		{"header", "/hook", map[string]string{"X-Convo-Secret": secret}, http.StatusOK},
		{"query", "/hook?secret=" + secret, nil, http.StatusOK},
		{"rotated second secret", "/hook?secret=next-secret", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c hookCounter
			h := NewSelartiHandler(c.selarti, WithSharedSecret(secret), WithSharedSecret("next-secret"), WithHandlerLogger(logger))
			rec := serveHook(h, hookRequest{target: tt.target, header: tt.header, body: fixture})
			assert.Equal(t, tt.status, rec.Code)
			want := 0
			if tt.status == http.StatusOK {
				want = 1
			} else {
				assertJSONError(t, rec, http.StatusUnauthorized, "missing or wrong secret")
			}
			assert.Equal(t, want, c.count())
		})
	}
	assert.NotEmpty(t, logs.String())
	assert.NotContains(t, logs.String(), secret)
	assert.NotContains(t, logs.String(), "next-secret")
	assert.NotContains(t, logs.String(), "nope")
}

func TestHandlerConstructionPanics(t *testing.T) {
	fn := func(context.Context, *SelartiEvent) error { return nil }
	tfn := func(context.Context, *TalkJSEvent) error { return nil }
	assert.PanicsWithValue(t, "convo: NewSelartiHandler: nil fn", func() { NewSelartiHandler(nil) })
	assert.PanicsWithValue(t, "convo: WithSharedSecret: empty secret", func() { NewSelartiHandler(fn, WithSharedSecret("")) })
	assert.Panics(t, func() { NewSelartiHandler(fn, WithBodyLimit(0)) })
	assert.Panics(t, func() { NewSelartiHandler(fn, WithDedupStore(nil)) })
	assert.PanicsWithValue(t, "convo: NewTalkJSHandler: empty secret", func() { NewTalkJSHandler("", tfn) })
	assert.Panics(t, func() { NewTalkJSHandler("k", nil) })
	assert.Panics(t, func() { NewTalkJSHandler("k", tfn, WithExtraSecrets("")) })
	assert.Panics(t, func() { NewTalkJSHandler("k", tfn, WithMaxAge(0)) })
	assert.NotPanics(t, func() { NewTalkJSHandler("k", tfn, WithBodyLimit(10), WithExtraSecrets("k2"), WithMaxAge(time.Minute)) })
}

// failingStore fails the calls named in fail.
type failingStore struct {
	*MemoryDedupStore
	claim, complete, release error
	state                    ClaimState
}

func (s *failingStore) Claim(ctx context.Context, id string) (ClaimState, error) {
	if s.claim != nil || s.state != 0 {
		return s.state, s.claim
	}
	return s.MemoryDedupStore.Claim(ctx, id)
}

func (s *failingStore) Complete(ctx context.Context, id string) error {
	if s.complete != nil {
		return s.complete
	}
	return s.MemoryDedupStore.Complete(ctx, id)
}

func (s *failingStore) Release(ctx context.Context, id string) error {
	if s.release != nil {
		return s.release
	}
	return s.MemoryDedupStore.Release(ctx, id)
}

func TestHandlerDedupStoreFailures(t *testing.T) {
	fixture := readSelartiFixture(t)
	down := errors.New("redis down")

	t.Run("claim error is 503 with no call", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), claim: down}))
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusServiceUnavailable, "dedup store")
		assert.Equal(t, 0, c.count())
	})
	t.Run("unknown state is 503 with no call", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), state: 42}))
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusServiceUnavailable, "dedup store")
		assert.Equal(t, 0, c.count())
	})
	t.Run("complete error still 200", func(t *testing.T) {
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), complete: down}))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		assert.Equal(t, 1, c.count())
	})
	t.Run("release error still 500", func(t *testing.T) {
		c := hookCounter{errs: []error{errors.New("fail")}}
		h := NewSelartiHandler(c.selarti, WithDedupStore(&failingStore{MemoryDedupStore: NewMemoryDedupStore(10), release: down}))
		assertJSONError(t, serveHook(h, hookRequest{body: fixture}), http.StatusInternalServerError, "handler failed")
		assert.Equal(t, 1, c.count())
	})
	t.Run("ids are namespaced by provider", func(t *testing.T) {
		store := NewMemoryDedupStore(10)
		var c hookCounter
		h := NewSelartiHandler(c.selarti, WithDedupStore(store))
		assertOK(t, serveHook(h, hookRequest{body: fixture}))
		st, err := store.Claim(context.Background(), "selarti:1731336491876x582725124419040400")
		require.NoError(t, err)
		assert.Equal(t, ClaimDone, st)
	})
}

func TestSelartiHandlerOverHTTP(t *testing.T) {
	var c hookCounter
	srv := httptest.NewServer(NewSelartiHandler(c.selarti, WithSharedSecret("k")))
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/hook?secret=k", "application/json", bytes.NewReader(readSelartiFixture(t)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 1, c.count())
}

// --- TalkJS handler -----------------------------------------------------

const (
	talkjsSecret = "sk_test_primary"
	talkjsTS     = "1632919967100"
)

func signedHook(secret string, body []byte) hookRequest {
	return hookRequest{body: body, header: map[string]string{
		"X-TalkJS-Timestamp": talkjsTS,
		"X-TalkJS-Signature": SignTalkJSWebhook(secret, talkjsTS, body),
	}}
}

func TestTalkJSHandlerStatuses(t *testing.T) {
	body := []byte(talkjsMessageSent)

	t.Run("200 delivers once, duplicate answered 200", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs)
		assertOK(t, serveHook(h, signedHook(talkjsSecret, body)))
		assertOK(t, serveHook(h, signedHook(talkjsSecret, body)))
		assert.Equal(t, 1, c.count())
		assert.Equal(t, []string{"evt_AbC123"}, c.ids)
	})

	t.Run("upper and lower case hex", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs)
		r := signedHook(talkjsSecret, []byte(`{"id":"evt_u","type":"message.read"}`))
		assertOK(t, serveHook(h, r))
		r = signedHook(talkjsSecret, []byte(`{"id":"evt_l","type":"message.read"}`))
		r.header["X-TalkJS-Signature"] = strings.ToLower(r.header["X-TalkJS-Signature"])
		assertOK(t, serveHook(h, r))
		assert.Equal(t, 2, c.count())
	})

	t.Run("401 missing or bad signature with no call", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs)
		assertJSONError(t, serveHook(h, hookRequest{body: body}), http.StatusUnauthorized, "missing signature")
		r := signedHook(talkjsSecret, body)
		delete(r.header, "X-TalkJS-Timestamp")
		assertJSONError(t, serveHook(h, r), http.StatusUnauthorized, "missing signature")
		assertJSONError(t, serveHook(h, signedHook("sk_test_wrong", body)), http.StatusUnauthorized, "invalid signature")
		r = signedHook(talkjsSecret, body)
		r.header["X-TalkJS-Timestamp"] = "1632919967101"
		assertJSONError(t, serveHook(h, r), http.StatusUnauthorized, "invalid signature")
		r = signedHook(talkjsSecret, body)
		r.header["X-TalkJS-Signature"] = "zz"
		assertJSONError(t, serveHook(h, r), http.StatusUnauthorized, "invalid signature")
		// A bad body with a bad signature is 401, not 400: verified before parsing.
		assertJSONError(t, serveHook(h, signedHook("sk_test_wrong", []byte("not json"))), http.StatusUnauthorized, "invalid signature")
		assert.Equal(t, 0, c.count())
	})

	t.Run("rotation: second secret accepted", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs, WithExtraSecrets("sk_test_next", "sk_test_third"))
		assertOK(t, serveHook(h, signedHook("sk_test_next", []byte(`{"id":"e1"}`))))
		assertOK(t, serveHook(h, signedHook("sk_test_third", []byte(`{"id":"e2"}`))))
		assertOK(t, serveHook(h, signedHook(talkjsSecret, []byte(`{"id":"e3"}`))))
		assert.Equal(t, http.StatusUnauthorized, serveHook(h, signedHook("sk_test_other", []byte(`{"id":"e4"}`))).Code)
		assert.Equal(t, 3, c.count())
	})

	t.Run("405", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs)
		r := signedHook(talkjsSecret, body)
		r.method = http.MethodGet
		rec := serveHook(h, r)
		assertJSONError(t, rec, http.StatusMethodNotAllowed, "method not allowed")
		assert.Equal(t, "POST", rec.Header().Get("Allow"))
		assert.Equal(t, 0, c.count())
	})

	t.Run("413", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs, WithBodyLimit(64))
		assertJSONError(t, serveHook(h, signedHook(talkjsSecret, body)), http.StatusRequestEntityTooLarge, "body too large")
		assert.Equal(t, 0, c.count())
	})

	t.Run("400 signed bad body", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs)
		assertJSONError(t, serveHook(h, signedHook(talkjsSecret, []byte(`[1]`))), http.StatusBadRequest, "want a JSON object")
		assertJSONError(t, serveHook(h, signedHook(talkjsSecret, []byte(`{"id":"e","createdAt":"soon"}`))), http.StatusBadRequest, "createdAt")
		assert.Equal(t, 0, c.count())
	})

	t.Run("500 then redelivery handled", func(t *testing.T) {
		c := hookCounter{errs: []error{errors.New("queue full")}}
		h := NewTalkJSHandler(talkjsSecret, c.talkjs)
		assertJSONError(t, serveHook(h, signedHook(talkjsSecret, body)), http.StatusInternalServerError, "handler failed")
		assertOK(t, serveHook(h, signedHook(talkjsSecret, body)))
		assertOK(t, serveHook(h, signedHook(talkjsSecret, body)))
		assert.Equal(t, 2, c.count())
	})

	t.Run("no id handled every time", func(t *testing.T) {
		var c hookCounter
		h := NewTalkJSHandler(talkjsSecret, c.talkjs)
		b := []byte(`{"type":"message.read"}`)
		assertOK(t, serveHook(h, signedHook(talkjsSecret, b)))
		assertOK(t, serveHook(h, signedHook(talkjsSecret, b)))
		assert.Equal(t, 2, c.count())
	})
}

func TestTalkJSHandlerInProgress(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	h := NewTalkJSHandler(talkjsSecret, func(ctx context.Context, ev *TalkJSEvent) error {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return nil
	})
	body := []byte(talkjsMessageSent)
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- serveHook(h, signedHook(talkjsSecret, body)) }()
	<-started
	assertJSONError(t, serveHook(h, signedHook(talkjsSecret, body)), http.StatusConflict, "in progress")
	close(release)
	assertOK(t, <-first)
	assertOK(t, serveHook(h, signedHook(talkjsSecret, body)))
	assert.Equal(t, int32(1), calls.Load())
}

func TestTalkJSHandlerMaxAge(t *testing.T) {
	now := time.UnixMilli(1632919967100)
	cfg := talkjsHookConfig{maxAge: 5 * time.Minute, now: func() time.Time { return now }}
	tests := []struct {
		ts   string
		want bool
	}{
		{"1632919967100", true},         // ms, now
		{"1632919967", true},            // s, now
		{"1632919667100", true},         // ms, 5 min ago
		{"1632919667099", false},        // ms, just over 5 min ago
		{"1632920267100", true},         // ms, 5 min ahead
		{"1632920300000", false},        // ms, too far ahead
		{"1632919000", false},           // s, 16 min ago
		{"not a number", false},         // unreadable
		{"1632919967100.5", false},      // not an integer
		{"-9223372036854775808", false}, // extreme
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, cfg.fresh(tt.ts), tt.ts)
	}
}

func TestTalkJSHandlerStaleTimestamp(t *testing.T) {
	var c hookCounter
	h := NewTalkJSHandler(talkjsSecret, c.talkjs, WithMaxAge(time.Minute))
	// talkjsTS is from 2021: stale now.
	assertJSONError(t, serveHook(h, signedHook(talkjsSecret, []byte(talkjsMessageSent))), http.StatusUnauthorized, "stale")
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	body := []byte(talkjsMessageSent)
	assertOK(t, serveHook(h, hookRequest{body: body, header: map[string]string{
		"X-TalkJS-Timestamp": ts,
		"X-TalkJS-Signature": SignTalkJSWebhook(talkjsSecret, ts, body),
	}}))
	assert.Equal(t, 1, c.count())
}

// --- benchmark ----------------------------------------------------------

// plainSelarti is the fixture decoded the plain way: 20 string fields, no
// yes/no or id handling. BenchmarkParseSelartiEvent compares against it.
type plainSelarti struct {
	ChannelID      string `json:"channel_id"`
	Close          string `json:"close"`
	CompanyID      string `json:"company_id"`
	Contacts       string `json:"contacts"`
	ExternalChatID string `json:"external_chat_id"`
	GetContact     string `json:"get_contact"`
	Interest       string `json:"interest"`
	IsBot          string `json:"is_bot"`
	ManagerID      string `json:"manager_id"`
	MessageID      string `json:"message_id"`
	MessageText    string `json:"message_text"`
	MessageType    string `json:"message_type"`
	Operator       string `json:"operator"`
	PanelURL       string `json:"panel_url"`
	ShareURL       string `json:"share_url"`
	Success        string `json:"success"`
	TaskID         string `json:"task_id"`
	ThreadID       string `json:"thread_id"`
	Title          string `json:"title"`
	WhType         string `json:"wh_type"`
}

// TestParseSelartiEventAllocs keeps ParseSelartiEvent from allocating more
// than a plain decode into strings: the yes/no flags must cost nothing.
func TestParseSelartiEventAllocs(t *testing.T) {
	body := readSelartiFixture(t)
	sdk := testing.AllocsPerRun(50, func() { sinkSelarti, _ = ParseSelartiEvent(body) })
	plain := testing.AllocsPerRun(50, func() {
		sinkPlain = new(plainSelarti)
		_ = json.Unmarshal(body, sinkPlain)
	})
	assert.LessOrEqual(t, sdk, plain)
}

var (
	sinkSelarti *SelartiEvent
	sinkPlain   *plainSelarti
)

// BenchmarkParseSelartiEvent compares ParseSelartiEvent with a plain
// encoding/json decode of the same fixture into a new struct of 20
// strings. The SDK should take at most 1.2 times as long.
func BenchmarkParseSelartiEvent(b *testing.B) {
	body := readSelartiFixture(b)
	b.Run("convo", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			ev, err := ParseSelartiEvent(body)
			if err != nil {
				b.Fatal(err)
			}
			sinkSelarti = ev
		}
	})
	b.Run("encoding-json-plain", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			v := new(plainSelarti)
			if err := json.Unmarshal(body, v); err != nil {
				b.Fatal(err)
			}
			sinkPlain = v
		}
	})
}

type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestHandlerBodyReadError(t *testing.T) {
	var c hookCounter
	h := NewSelartiHandler(c.selarti)
	req := httptest.NewRequest(http.MethodPost, "/hook", brokenBody{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assertJSONError(t, rec, http.StatusBadRequest, "could not read body")
	assert.Equal(t, 0, c.count())
}

func TestHandlerLogsFailures(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	c := hookCounter{errs: []error{errors.New("relay down")}}
	h := NewTalkJSHandler(talkjsSecret, c.talkjs, WithHandlerLogger(logger))
	rec := serveHook(h, signedHook(talkjsSecret, []byte(talkjsMessageSent)))
	assertJSONError(t, rec, http.StatusInternalServerError, "handler failed")
	assert.NotContains(t, rec.Body.String(), "relay down", "fn's error stays in the log")
	assert.Contains(t, logs.String(), "relay down")
	assert.Contains(t, logs.String(), "id=evt_AbC123")
	assert.NotContains(t, logs.String(), talkjsSecret)
	assert.NotContains(t, logs.String(), SignTalkJSWebhook(talkjsSecret, talkjsTS, []byte(talkjsMessageSent)))
}

func TestHandlerPermanentFailureIsNotRedelivered(t *testing.T) {
	c := &hookCounter{errs: []error{fmt.Errorf("chat gone: %w", ErrPermanent)}}
	h := NewSelartiHandler(c.selarti)
	body := readSelartiFixture(t)
	assertOK(t, serveHook(h, hookRequest{body: body}))
	assertOK(t, serveHook(h, hookRequest{body: body}))
	assert.Equal(t, 1, c.count(), "a permanent failure is remembered like a success")

	c = &hookCounter{errs: []error{errors.New("database down")}}
	h = NewSelartiHandler(c.selarti)
	assertJSONError(t, serveHook(h, hookRequest{body: body}), http.StatusInternalServerError, "handler failed")
	assertOK(t, serveHook(h, hookRequest{body: body}))
	assert.Equal(t, 2, c.count(), "any other failure lets the redelivery through")
}

// The handlers leave no goroutine behind once their server shuts down,
// even with a delivery whose client gave up while fn was running.
func TestHandlersLeaveNoGoroutines(t *testing.T) {
	noLeak := GoroutineCheck(t)
	release := make(chan struct{})
	selarti := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		if ev.MessageID == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	})
	const secret = "whsec_test"
	talkjs := NewTalkJSHandler(secret, func(context.Context, *TalkJSEvent) error { return nil })
	mux := http.NewServeMux()
	mux.Handle("/selarti", selarti)
	mux.Handle("/talkjs", talkjs)
	srv := httptest.NewServer(mux)

	post := func(ctx context.Context, path string, body []byte, h map[string]string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, bytes.NewReader(body))
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}
	for i := range 20 {
		post(context.Background(), "/selarti", selartiBody(t, map[string]any{"message_id": strconv.Itoa(i)}), nil)
		ev := []byte(`{"id":"evt_` + strconv.Itoa(i) + `","type":"user.updated","createdAt":1,"data":{"user":{"id":"u"}}}`)
		post(context.Background(), "/talkjs", ev, map[string]string{
			"X-TalkJS-Timestamp": "1", "X-TalkJS-Signature": SignTalkJSWebhook(secret, "1", ev)})
	}
	post(context.Background(), "/selarti", []byte("not json"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	post(ctx, "/selarti", selartiBody(t, map[string]any{"message_id": "slow"}), nil)
	cancel()

	close(release)
	srv.Close()
	srv.Client().CloseIdleConnections()
	noLeak()
}
