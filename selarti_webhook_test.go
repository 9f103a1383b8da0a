package convo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of selarti_webhook.go: the Selarti event and its handler.

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

func BenchmarkSelartiHandler(b *testing.B) {
	h := NewSelartiHandler(func(context.Context, *SelartiEvent) error { return nil }, WithDedupStore(alwaysNewStore{}))
	benchHandler(b, h, readSelartiFixture(b), nil)
}
