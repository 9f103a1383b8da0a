package convo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// selartiSeeds are bodies for the Selarti fuzzers' corpora.
func selartiSeeds(f *testing.F) [][]byte {
	fixture := readSelartiFixture(f)
	seeds := [][]byte{
		fixture,
		nil,
		[]byte(`{}`),
		[]byte(`[]`),
		[]byte(`null`),
		[]byte(`"x"`),
		[]byte(`{"close":"YES","is_bot":true,"success":null,"operator":"","interest":"False"}`),
		[]byte(`{"close":"maybe"}`),
		[]byte(`{"is_bot":1}`),
		[]byte(`{"message_id":1731336491876,"channel_id":-1.5e3,"wh_type":"all_messages","message_type":"bot"}`),
		[]byte(`{"message_id":"a\"b\u00e9","title":"\ud800","wh_type":"all_messages","message_type":"operator"}`),
		[]byte("{\"message_id\":\"\xff\xfe\",\"wh_type\":\"all_messages\",\"message_type\":\"bot\"}"),
		[]byte(`{"message_id":{"x":[1,2]},"close":[]}`),
		[]byte(`{"wh_type":"all_messages","message_type":"user","message_id":"u1"}`),
		[]byte(`{"wh_type":"tag_success","message_id":"t1"}`),
		[]byte(`{"close":"yes"`),
		bytes.Replace(fixture, []byte(`"no"`), []byte(`"Yes"`), -1),
	}
	return seeds
}

func FuzzParseSelartiEvent(f *testing.F) {
	for _, s := range selartiSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseSelartiEvent(body)
		if err != nil {
			if ev != nil {
				t.Fatal("an event with an error")
			}
			var pe *PayloadError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("error %T %v is not a *PayloadError", err, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
		if !bytes.Equal(ev.Raw, body) {
			t.Fatal("Raw is not the body")
		}
		// The wire form parses back to the same event.
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := ParseSelartiEvent(out)
		if err != nil {
			t.Fatalf("parse of marshalled event: %v\n%s", err, out)
		}
		again.Raw, ev.Raw = nil, nil
		if !reflect.DeepEqual(again, ev) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}

func FuzzParseTalkJSEvent(f *testing.F) {
	for _, s := range []string{
		talkjsMessageSent,
		``, `{}`, `[]`, `null`, `{"id":`,
		`{"id":"evt_1","type":"message.sent","createdAt":"1632919967100","data":{"message":{"id":"m","senderId":null},"sender":null}}`,
		`{"id":"evt_2","type":"user.created","createdAt":1.6e12,"data":{"user":{"id":"u","pushTokens":{"a":null},"email":null}}}`,
		`{"id":"evt_3","type":"user.updated","data":{"user":{"name":5}}}`,
		`{"id":7,"type":"x","createdAt":"2021-09-29T12:52:47Z","data":null}`,
		`{"id":"e","createdAt":1e400}`,
		`{"id":"e","createdAt":-9223372036854775808}`,
		`{"id":"e","type":"message.sent","data":{"conversation":{"participants":{"u":{"notify":"MentionsOnly"}}},"message":{"location":[1,2],"attachment":{"url":"x","size":3}}}}`,
		`{"id":"e","type":"message.sent","data":{"message":{"id":"m"},"mentions":[{"userId":"u"},"v",null,{"id":7},5]}}`,
		`{"id":"e","type":"notification.triggered","data":{"notificationId":"n","recipient":{"id":"u"},"messages":[{"id":"m"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseTalkJSEvent(body)
		if err != nil {
			if ev != nil || !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("bad error %T %v", err, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
		// The typed accessors never panic, whatever the data.
		for _, typ := range []TalkJSEventType{TalkJSMessageSent, TalkJSUserCreated, TalkJSMessageRead, TalkJSMessageUpdated,
			TalkJSMessageDeleted, TalkJSConversationDeleted, TalkJSNotificationTriggered, "other"} {
			e := *ev
			e.Type = typ
			if d, err := e.MessageSent(); err == nil && d.Message == nil {
				t.Fatal("MessageSent without a message and without an error")
			}
			if u, err := e.User(); err == nil && u == nil {
				t.Fatal("User nil without an error")
			}
			if d, err := e.MessageRead(); err == nil && d.Message == nil {
				t.Fatal("MessageRead without a message and without an error")
			}
			_, _ = e.MessageUpdated()
			_, _ = e.MessageDeleted()
			_, _ = e.ConversationDeleted()
			_, _ = e.Notification()
		}
	})
}

// fuzzRequest builds a request from fuzzed parts; ok is false for a method
// net/http would refuse.
func fuzzRequest(method string, query string, body []byte, header map[string]string) (*http.Request, bool) {
	target := "http://example.com/hook"
	if query != "" {
		target += "?" + url.Values{"secret": {query}}.Encode()
	}
	r, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		return nil, false
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r, true
}

// statusOK reports whether a handler may answer status when fn succeeds.
func statusOK(status int) bool {
	switch status {
	case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusMethodNotAllowed,
		http.StatusConflict, http.StatusRequestEntityTooLarge:
		return true
	}
	return false
}

func FuzzSelartiHandler(f *testing.F) {
	for i, s := range selartiSeeds(f) {
		f.Add("POST", s, "", "", uint8(i))
	}
	f.Add("GET", []byte(`{}`), "k", "", uint8(2))
	f.Add("POST", readSelartiFixture(f), "k", "k", uint8(2))
	f.Add("POST", readSelartiFixture(f), "", "wrong", uint8(3))
	f.Add("PATCH", []byte(nil), "", "", uint8(7))

	f.Fuzz(func(t *testing.T, method string, body []byte, headerSecret, querySecret string, flags uint8) {
		var opts []HandlerOption
		if flags&1 != 0 {
			opts = append(opts, WithUserMessages())
		}
		if flags&2 != 0 {
			opts = append(opts, WithSharedSecret("k"))
		}
		if flags&4 != 0 {
			opts = append(opts, WithBodyLimit(64))
		}
		calls := 0
		h := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
			calls++
			if ev == nil || ctx == nil {
				t.Fatal("nil event or context")
			}
			return nil
		}, opts...)

		var want *SelartiEvent
		if ev, err := ParseSelartiEvent(body); err == nil {
			want = ev
		}
		for round := 0; round < 2; round++ {
			r, ok := fuzzRequest(method, querySecret, body, map[string]string{"X-Convo-Secret": headerSecret})
			if !ok {
				return
			}
			before := calls
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if !statusOK(rec.Code) {
				t.Fatalf("status %d with a succeeding fn: %s", rec.Code, rec.Body)
			}
			called := calls - before
			if called > 1 || (called == 1 && rec.Code != http.StatusOK) {
				t.Fatalf("%d calls with status %d", called, rec.Code)
			}
			if called == 1 && (method != http.MethodPost || want == nil) {
				t.Fatalf("fn called for method %q or a body that does not parse", method)
			}
			if rec.Code == http.StatusOK && want == nil {
				t.Fatal("200 for a body that does not parse")
			}
			if called == 1 && want.MessageType == AuthorUser && flags&1 == 0 {
				t.Fatal("user message passed without WithUserMessages")
			}
		}
		if want != nil && want.MessageID != "" && calls > 1 {
			t.Fatalf("message %q handled %d times", want.MessageID, calls)
		}
	})
}

func FuzzTalkJSHandler(f *testing.F) {
	bodies := []string{talkjsMessageSent, ``, `{}`, `[]`, `{"id":"e","createdAt":"soon"}`, `{"type":"message.read"}`, `not json`}
	for i, b := range bodies {
		f.Add("POST", []byte(b), talkjsTS, "", uint8(i))
	}
	f.Add("GET", []byte(talkjsMessageSent), talkjsTS, "", uint8(0))
	f.Add("POST", []byte(talkjsMessageSent), "", "", uint8(0))
	f.Add("POST", []byte(talkjsMessageSent), talkjsTS, "zz", uint8(2))
	f.Add("POST", []byte(talkjsMessageSent), talkjsTS, strings.Repeat("0", 64), uint8(2))
	f.Add("POST", []byte(talkjsMessageSent), talkjsTS, "", uint8(16))

	// flags&3 picks the signature: 0 right (uppercase), 1 right (lowercase),
	// 2 the fuzzed one, 3 none. flags&4 adds a second secret and signs with
	// it; flags&8 sets a small body limit; flags&16 keeps the default
	// replay window, which refuses nearly every fuzzed timestamp.
	f.Fuzz(func(t *testing.T, method string, body []byte, ts, sig string, flags uint8) {
		secret := talkjsSecret
		var opts []HandlerOption
		if flags&4 != 0 {
			opts = append(opts, WithExtraSecrets("sk_next"))
			secret = "sk_next"
		}
		if flags&8 != 0 {
			opts = append(opts, WithBodyLimit(64))
		}
		if flags&16 == 0 {
			opts = append(opts, WithMaxAge(0))
		}
		switch flags & 3 {
		case 0:
			sig = SignTalkJSWebhook(secret, ts, body)
		case 1:
			sig = strings.ToLower(SignTalkJSWebhook(secret, ts, body))
		case 3:
			sig = ""
		}
		calls := 0
		h := NewTalkJSHandler(talkjsSecret, func(ctx context.Context, ev *TalkJSEvent) error {
			calls++
			return nil
		}, opts...)
		valid := VerifyTalkJSSignature(secret, ts, body, sig) == nil || VerifyTalkJSSignature(talkjsSecret, ts, body, sig) == nil
		_, parseErr := ParseTalkJSEvent(body)

		for round := 0; round < 2; round++ {
			r, ok := fuzzRequest(method, "", body, map[string]string{"X-TalkJS-Timestamp": ts, "X-TalkJS-Signature": sig})
			if !ok {
				return
			}
			before := calls
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if !statusOK(rec.Code) {
				t.Fatalf("status %d with a succeeding fn: %s", rec.Code, rec.Body)
			}
			called := calls - before
			if called > 0 && (!valid || parseErr != nil || method != http.MethodPost) {
				t.Fatalf("fn called: valid signature %v, parse error %v, method %q", valid, parseErr, method)
			}
			if !valid && method == http.MethodPost && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for a bad signature", rec.Code)
			}
			if called == 1 && rec.Code != http.StatusOK {
				t.Fatalf("status %d after a call", rec.Code)
			}
		}
	})
}
