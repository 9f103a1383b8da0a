package convotest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hook records the one request it gets and answers status.
func hook(t *testing.T, status int) (string, func() (*http.Request, []byte)) {
	t.Helper()
	var got *http.Request
	var body []byte
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(hs.Close)
	return hs.URL, func() (*http.Request, []byte) { return got, body }
}

func TestDeliverSelarti(t *testing.T) {
	srv := newServer(t)
	url, received := hook(t, http.StatusOK)
	ev := convo.SelartiEvent{
		Type: convo.SelartiAllMessages, MessageType: convo.AuthorBot, MessageID: "1731336491876x582725124419040400",
		ExternalChatID: "123456789", MessageText: "Hello",
	}
	resp, err := srv.DeliverSelarti(context.Background(), url, ev)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.JSONEq(t, `{"ok":true}`, string(b), "the answer's body is kept")

	r, body := received()
	require.NotNil(t, r)
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	got, err := convo.ParseSelartiEvent(body)
	require.NoError(t, err)
	got.Raw = nil
	assert.Equal(t, &ev, got)
	var sent map[string]any
	require.NoError(t, json.Unmarshal(body, &sent))
	assert.Equal(t, "no", sent["close"], "yes/no fields go out in the wire form")
}

func TestDeliverTalkJSSigned(t *testing.T) {
	srv := newServer(t, convotest.WithTalkJSApp("app", "sk_test_hooks"))
	url, received := hook(t, http.StatusOK)
	data := map[string]any{"message": map[string]any{"id": "msg_1", "text": "Hello"}}
	before := time.Now().UnixMilli()
	resp, err := srv.DeliverTalkJS(context.Background(), url, "message.sent", data)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	r, body := received()
	require.NotNil(t, r)
	ts := r.Header.Get("X-TalkJS-Timestamp")
	ms, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ms, before, "Unix milliseconds")

	mac := hmac.New(sha256.New, []byte("sk_test_hooks"))
	mac.Write([]byte(ts + "." + string(body)))
	want := strings.ToUpper(hex.EncodeToString(mac.Sum(nil)))
	assert.Equal(t, want, r.Header.Get("X-TalkJS-Signature"))

	var env struct {
		ID        string         `json:"id"`
		CreatedAt int64          `json:"createdAt"`
		Type      string         `json:"type"`
		Data      map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &env))
	assert.Regexp(t, `^evt_[0-9A-Za-z]+$`, env.ID)
	assert.Equal(t, ms, env.CreatedAt)
	assert.Equal(t, "message.sent", env.Type)
	assert.Equal(t, data, env.Data)
}

func TestDeliverTalkJSErrors(t *testing.T) {
	srv := newServer(t)
	url, _ := hook(t, http.StatusInternalServerError)
	resp, err := srv.DeliverTalkJS(context.Background(), url, "user.created", map[string]any{})
	require.NoError(t, err, "a status is an answer, not an error")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = srv.DeliverTalkJS(ctx, url, "user.created", map[string]any{})
	assert.ErrorIs(t, err, context.Canceled)
}
