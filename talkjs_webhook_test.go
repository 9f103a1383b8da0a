package convo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of talkjs_webhook.go: TalkJS signatures, events and their handler.

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

const (
	talkjsSecret = "sk_test_primary"
	talkjsTS     = "1632919967100"
)

// signedHook is a delivery of body signed with secret, sent now.
func signedHook(secret string, body []byte) hookRequest {
	return signedHookAt(secret, strconv.FormatInt(time.Now().UnixMilli(), 10), body)
}

// signedHookAt is a delivery of body signed with secret at timestamp ts.
func signedHookAt(secret, ts string, body []byte) hookRequest {
	return hookRequest{body: body, header: map[string]string{
		"X-TalkJS-Timestamp": ts,
		"X-TalkJS-Signature": SignTalkJSWebhook(secret, ts, body),
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
	assertJSONError(t, serveHook(h, signedHookAt(talkjsSecret, talkjsTS, []byte(talkjsMessageSent))), http.StatusUnauthorized, "stale")
	assertOK(t, serveHook(h, signedHook(talkjsSecret, []byte(talkjsMessageSent))))
	assert.Equal(t, 1, c.count())
}

// The replay window is on by default: 5 minutes either way of now.
func TestTalkJSHandlerReplayWindowByDefault(t *testing.T) {
	body := []byte(`{"type":"message.read"}`) // no id: every delivery would run fn
	at := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10) }
	var c hookCounter
	h := NewTalkJSHandler(talkjsSecret, c.talkjs)
	for _, ts := range []string{talkjsTS, at(-5*time.Minute - 10*time.Second), at(5*time.Minute + 10*time.Second), "1"} {
		assertJSONError(t, serveHook(h, signedHookAt(talkjsSecret, ts, body)), http.StatusUnauthorized, "stale")
	}
	assert.Zero(t, c.count(), "a replay of a signed delivery is refused")
	for _, ts := range []string{at(0), at(-4 * time.Minute), at(4 * time.Minute)} {
		assertOK(t, serveHook(h, signedHookAt(talkjsSecret, ts, body)))
	}
	assert.Equal(t, 3, c.count())

	// WithMaxAge(0) turns the window off.
	c = hookCounter{}
	h = NewTalkJSHandler(talkjsSecret, c.talkjs, WithMaxAge(0))
	assertOK(t, serveHook(h, signedHookAt(talkjsSecret, talkjsTS, body)))
	assertOK(t, serveHook(h, signedHookAt(talkjsSecret, "1", body)))
	assert.Equal(t, 2, c.count())
}

func BenchmarkTalkJSHandler(b *testing.B) {
	body := []byte(talkjsMessageSent)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	h := NewTalkJSHandler(talkjsSecret, func(context.Context, *TalkJSEvent) error { return nil }, WithDedupStore(alwaysNewStore{}))
	benchHandler(b, h, body, map[string]string{
		"X-TalkJS-Timestamp": ts,
		"X-TalkJS-Signature": SignTalkJSWebhook(talkjsSecret, ts, body),
	})
}

func TestTalkJSHeadersAreCanonical(t *testing.T) {
	assert.Equal(t, textproto.CanonicalMIMEHeaderKey("X-TalkJS-Signature"), talkjsSignatureHeader)
	assert.Equal(t, textproto.CanonicalMIMEHeaderKey("X-TalkJS-Timestamp"), talkjsTimestampHeader)
}

// raceBuild reports a test binary built with -race.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	return ok && slices.Contains(bi.Settings, debug.BuildSetting{Key: "-race", Value: "true"})
}

func TestTalkJSVerifyIsPooled(t *testing.T) {
	body := []byte(talkjsMessageSent)
	keys := []*talkjsKey{newTalkJSKey("sk_other"), newTalkJSKey(talkjsSecret)}
	sig := SignTalkJSWebhook(talkjsSecret, talkjsTS, body)
	require.NoError(t, verifyTalkJS(keys, talkjsTS, body, sig))
	allocs := testing.AllocsPerRun(50, func() {
		if verifyTalkJS(keys, talkjsTS, body, sig) != nil {
			t.Fatal("signature refused")
		}
	})
	if !raceBuild() { // the race detector makes sync.Pool drop items
		assert.Zero(t, allocs, "a verification with pooled HMACs allocates nothing")
	}

	// Concurrent verifications share the pools safely.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := []byte(strconv.Itoa(i) + talkjsMessageSent)
			s := SignTalkJSWebhook(talkjsSecret, talkjsTS, b)
			for range 50 {
				assert.NoError(t, verifyTalkJS(keys, talkjsTS, b, s))
				assert.ErrorIs(t, verifyTalkJS(keys, talkjsTS, b, sig), ErrInvalidSignature)
			}
		}()
	}
	wg.Wait()
}

// readTalkJSEvent parses the documented payload of an event type from
// testdata/talkjs-events.
func readTalkJSEvent(t *testing.T, typ TalkJSEventType) *TalkJSEvent {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "talkjs-events", string(typ)+".json"))
	require.NoError(t, err)
	ev, err := ParseTalkJSEvent(body)
	require.NoError(t, err)
	require.Equal(t, typ, ev.Type)
	return ev
}

// Every documented event type has a typed accessor that decodes its
// payload, and refuses the events of the other types.
func TestTalkJSEventAccessors(t *testing.T) {
	accessors := map[string]func(e *TalkJSEvent) (any, error){
		"MessageSent":         func(e *TalkJSEvent) (any, error) { return e.MessageSent() },
		"MessageRead":         func(e *TalkJSEvent) (any, error) { return e.MessageRead() },
		"MessageUpdated":      func(e *TalkJSEvent) (any, error) { return e.MessageUpdated() },
		"MessageDeleted":      func(e *TalkJSEvent) (any, error) { return e.MessageDeleted() },
		"ConversationDeleted": func(e *TalkJSEvent) (any, error) { return e.ConversationDeleted() },
		"User":                func(e *TalkJSEvent) (any, error) { return e.User() },
		"Notification":        func(e *TalkJSEvent) (any, error) { return e.Notification() },
	}
	checks := map[TalkJSEventType]struct {
		accessor string
		check    func(t *testing.T, v any)
	}{
		TalkJSMessageSent: {"MessageSent", func(t *testing.T, v any) {
			d := v.(*MessageSentData)
			assert.Equal(t, "msg_0UQbqdxnQWkoIw7Db7fZHK", d.Message.ID)
			assert.Equal(t, "Alice", d.Sender.Name)
			assert.Equal(t, NotifyMentionsOnly, d.Conversation.Participants["user_2"].Notify)
			require.Len(t, d.Mentions, 2)
			assert.Equal(t, "user_2", d.Mentions[0].UserID)
			assert.JSONEq(t, `{"userId":"user_2"}`, string(d.Mentions[0].Raw))
			assert.Equal(t, "user_3", d.Mentions[1].UserID)
			assert.Empty(t, d.MentionedUserIDs)
			assert.Equal(t, []string{"user_2", "user_3"}, d.MentionedUsers())
		}},
		TalkJSMessageRead: {"MessageRead", func(t *testing.T, v any) {
			d := v.(*MessageReadData)
			assert.Equal(t, []string{"user_2"}, d.Message.ReadBy)
			assert.Equal(t, "user_2", d.Recipient.ID)
			assert.Equal(t, "user_1", d.Sender.ID)
			assert.Equal(t, "order_391_fc", d.Conversation.ID)
		}},
		TalkJSMessageUpdated: {"MessageUpdated", func(t *testing.T, v any) {
			d := v.(*MessageChangeData)
			assert.Equal(t, "Hello @Bob, edited", d.Message.Text)
			assert.Equal(t, UnixMillis(1632919999000), d.Message.EditedAt)
			assert.Equal(t, "user_1", d.Sender.ID)
		}},
		TalkJSMessageDeleted: {"MessageDeleted", func(t *testing.T, v any) {
			d := v.(*MessageChangeData)
			assert.Equal(t, "msg_0UQbqdxnQWkoIw7Db7fZHK", d.Message.ID)
			assert.Equal(t, "order_391_fc", d.Conversation.ID)
			assert.Nil(t, d.Sender)
		}},
		TalkJSConversationDeleted: {"ConversationDeleted", func(t *testing.T, v any) {
			assert.Equal(t, "order_391_fc", v.(*ConversationDeletedData).Conversation.ID)
		}},
		TalkJSUserCreated: {"User", func(t *testing.T, v any) { assert.Equal(t, "Alice", v.(*User).Name) }},
		TalkJSUserUpdated: {"User", func(t *testing.T, v any) {
			assert.Equal(t, map[string]bool{"apns:MY_TOKEN_ID": true}, v.(*User).PushTokens)
		}},
	}
	notification := func(t *testing.T, v any) {
		d := v.(*NotificationData)
		assert.Equal(t, "ntf_AbC", d.NotificationID)
		assert.Equal(t, "user_2", d.Recipient.ID)
		assert.Equal(t, "user_1", d.Sender.ID)
		assert.Equal(t, "order_391_fc", d.Conversation.ID)
		require.Len(t, d.Messages, 1)
		assert.Equal(t, "Hello @Bob", d.Messages[0].Text)
	}
	for _, typ := range []TalkJSEventType{TalkJSNotificationTriggered, TalkJSNotificationSent, TalkJSNotificationDelivered,
		TalkJSNotificationBounced, TalkJSNotificationOpened, TalkJSNotificationLinkClicked} {
		checks[typ] = struct {
			accessor string
			check    func(t *testing.T, v any)
		}{"Notification", notification}
	}
	require.Len(t, checks, 13, "every event type of the reference")

	for typ, c := range checks {
		t.Run(string(typ), func(t *testing.T) {
			ev := readTalkJSEvent(t, typ)
			v, err := accessors[c.accessor](ev)
			require.NoError(t, err)
			c.check(t, v)
			for name, other := range accessors {
				if name != c.accessor {
					_, err := other(ev)
					assert.ErrorIs(t, err, ErrWrongEventType, name)
				}
			}
		})
	}
}

func TestTalkJSEventAccessorsUnconfirmedShapes(t *testing.T) {
	// An unconfirmed shape that differs leaves fields zero rather than fail.
	ev, err := ParseTalkJSEvent([]byte(`{"id":"e","type":"message.deleted","data":{"messageId":"msg_1"}}`))
	require.NoError(t, err)
	d, err := ev.MessageDeleted()
	require.NoError(t, err)
	assert.Nil(t, d.Message)
	assert.JSONEq(t, `{"messageId":"msg_1"}`, string(ev.Data), "what the SDK does not model stays in Data")

	// Mentions: ids, objects keyed id, null items; a number is refused.
	ev, err = ParseTalkJSEvent([]byte(`{"id":"e","type":"message.sent","data":{"message":{"id":"m"},"mentions":[{"id":"u1"},null,{"name":"x"}]}}`))
	require.NoError(t, err)
	ms, err := ev.MessageSent()
	require.NoError(t, err)
	require.Len(t, ms.Mentions, 3)
	assert.Equal(t, "u1", ms.Mentions[0].UserID)
	assert.Empty(t, ms.Mentions[2].UserID)
	assert.JSONEq(t, `{"name":"x"}`, string(ms.Mentions[2].Raw))
	ev, err = ParseTalkJSEvent([]byte(`{"id":"e","type":"message.sent","data":{"message":{"id":"m"},"mentions":[5]}}`))
	require.NoError(t, err)
	_, err = ev.MessageSent()
	assert.ErrorIs(t, err, ErrInvalidPayload)
	assert.ErrorContains(t, err, "data.mentions")

	// Mentions in data.mentionedUserIds, as a public handler reads them;
	// with data.mentions too, each user once.
	body, err := os.ReadFile(filepath.Join("testdata", "talkjs-events", "message.sent.mentionedUserIds.json"))
	require.NoError(t, err)
	ev, err = ParseTalkJSEvent(body)
	require.NoError(t, err)
	ms, err = ev.MessageSent()
	require.NoError(t, err)
	assert.Empty(t, ms.Mentions)
	assert.Equal(t, []string{"user_2"}, ms.MentionedUserIDs)
	assert.Equal(t, []string{"user_2"}, ms.MentionedUsers())
	ev, err = ParseTalkJSEvent([]byte(`{"id":"e","type":"message.sent","data":{"message":{"id":"m"},"mentions":["u1",{"userId":"u2"}],"mentionedUserIds":["u2","u3",""]}}`))
	require.NoError(t, err)
	ms, err = ev.MessageSent()
	require.NoError(t, err)
	assert.Equal(t, []string{"u1", "u2", "u3"}, ms.MentionedUsers())
	ev, err = ParseTalkJSEvent([]byte(`{"id":"e","type":"message.sent","data":{"message":{"id":"m"}}}`))
	require.NoError(t, err)
	ms, err = ev.MessageSent()
	require.NoError(t, err)
	assert.Nil(t, ms.MentionedUsers())
	ev, err = ParseTalkJSEvent([]byte(`{"id":"e","type":"message.sent","data":{"message":{"id":"m"},"mentionedUserIds":[5]}}`))
	require.NoError(t, err)
	_, err = ev.MessageSent()
	assert.ErrorIs(t, err, ErrInvalidPayload)
	assert.ErrorContains(t, err, "data.mentionedUserIds")

	// message.read without its message is refused, like message.sent.
	ev, err = ParseTalkJSEvent([]byte(`{"id":"e","type":"message.read","data":{"recipient":{"id":"u"}}}`))
	require.NoError(t, err)
	_, err = ev.MessageRead()
	assert.EqualError(t, err, "convo: talkjs webhook: data.message: missing")

	// An unknown type has no accessor but stays readable.
	ev, err = ParseTalkJSEvent([]byte(`{"id":"e","type":"reaction.added","data":{"emoji":"👍"}}`))
	require.NoError(t, err)
	_, err = ev.Notification()
	assert.ErrorIs(t, err, ErrWrongEventType)
	assert.JSONEq(t, `{"emoji":"👍"}`, string(ev.Data))
}
