package convotest_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// selarti posts body as JSON to the workflow, with a bearer token unless
// token is "".
func selarti(t *testing.T, srv *convotest.Server, workflow, token string, body any) answer {
	t.Helper()
	h := []string{"Content-Type", "application/json"}
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	return call(t, srv, "POST", "/api/1.1/wf/"+workflow, body, h...)
}

// selartiToken exchanges the fake's key for a token.
func selartiToken(t *testing.T, srv *convotest.Server) string {
	t.Helper()
	a := selarti(t, srv, "auth", "", map[string]any{"key": srv.SelartiKey()})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var v struct {
		Status   string `json:"status"`
		Response struct {
			Token string `json:"token"`
		} `json:"response"`
	}
	require.NoError(t, json.Unmarshal(a.Body, &v))
	require.Equal(t, "success", v.Status)
	require.NotEmpty(t, v.Response.Token)
	return v.Response.Token
}

// bubble decodes Bubble's error body into its status code, status and
// message.
func bubble(t *testing.T, a answer) (int, string, string) {
	t.Helper()
	var v struct {
		StatusCode int `json:"statusCode"`
		Body       struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"body"`
	}
	require.NoError(t, json.Unmarshal(a.Body, &v), "%s", a.Body)
	return v.StatusCode, v.Body.Status, v.Body.Message
}

// selartiHook is a webhook receiver that keeps every body it gets and
// answers status.
type selartiHook struct {
	mu     sync.Mutex
	bodies [][]byte
}

func newSelartiHook(t *testing.T, srv *convotest.Server, status int) *selartiHook {
	t.Helper()
	h := &selartiHook{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(hs.Close)
	srv.SetSelartiWebhook(hs.URL)
	return h
}

func (h *selartiHook) got() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies)
}

func waitReplies(t *testing.T, srv *convotest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.WaitSelartiReplies(ctx))
}

func sendBody(chat, text string) map[string]any {
	return map[string]any{"task": convotest.DefaultSelartiTaskID, "chat_id": chat, "text": text}
}

func TestSelartiAuth(t *testing.T) {
	srv := newServer(t)
	t1, t2 := selartiToken(t, srv), selartiToken(t, srv)
	assert.NotEqual(t, t1, t2, "each exchange makes a new token")
	assert.Equal(t, 2, srv.Stats().SelartiTokens)

	a := selarti(t, srv, "auth", "", map[string]any{"key": "wrong"})
	assert.Equal(t, http.StatusUnauthorized, a.Status)
	code, status, msg := bubble(t, a)
	assert.Equal(t, 401, code)
	assert.Equal(t, "UNAUTHORIZED", status)
	assert.Equal(t, "invalid API key", msg)

	a = selarti(t, srv, "auth", "", map[string]any{"kee": srv.SelartiKey()})
	assert.Equal(t, http.StatusBadRequest, a.Status)
	_, status, msg = bubble(t, a)
	assert.Equal(t, "MISSING_DATA", status)
	assert.Equal(t, "key is missing; kee is not a known field", msg)

	a = call(t, srv, "POST", "/api/1.1/wf/auth", `{"key":"`+srv.SelartiKey()+`"}`, "Content-Type", "text/plain")
	assert.Equal(t, http.StatusBadRequest, a.Status)
	a = call(t, srv, "POST", "/api/1.1/wf/auth", `["key"]`, "Content-Type", "application/json")
	assert.Equal(t, http.StatusBadRequest, a.Status)
	assert.Equal(t, http.StatusMethodNotAllowed, call(t, srv, "GET", "/api/1.1/wf/auth", nil).Status)
	assert.Equal(t, http.StatusNotFound, selarti(t, srv, "nope", "", map[string]any{}).Status)
	assert.Equal(t, 2, srv.Stats().SelartiTokens)

	custom := newServer(t, convotest.WithSelartiAccount("k2", "task-a", "task-b"))
	assert.Equal(t, "k2", custom.SelartiKey())
	assert.Equal(t, "task-a", custom.SelartiTaskID())
	assert.Equal(t, custom.URL+"/api/1.1", custom.SelartiURL())
	selartiToken(t, custom)
}

func TestSelartiSendNeedsToken(t *testing.T) {
	srv := newServer(t)
	body := sendBody("chat-1", "hi")
	a := selarti(t, srv, "send_external_message", "", body)
	assert.Equal(t, http.StatusUnauthorized, a.Status)
	_, status, _ := bubble(t, a)
	assert.Equal(t, "UNAUTHORIZED", status)
	assert.Equal(t, http.StatusUnauthorized, selarti(t, srv, "send_external_message", "tok_made_up", body).Status)

	token := selartiToken(t, srv)
	assert.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", token, body).Status)
	srv.ExpireSelartiTokens()
	assert.Equal(t, http.StatusUnauthorized, selarti(t, srv, "send_external_message", token, body).Status)
	assert.Equal(t, http.StatusUnauthorized, selarti(t, srv, "add_target", token, map[string]any{"task": srv.SelartiTaskID(), "target": "@maria"}).Status)
	assert.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", selartiToken(t, srv), body).Status)
	waitReplies(t, srv)
	assert.Equal(t, 2, srv.Stats().SelartiMessages)
}

func TestSelartiSendRefused(t *testing.T) {
	srv := newServer(t)
	token := selartiToken(t, srv)
	a := selarti(t, srv, "send_external_message", token, map[string]any{"chat_id": " ", "text": 5})
	assert.Equal(t, http.StatusBadRequest, a.Status)
	code, status, msg := bubble(t, a)
	assert.Equal(t, 400, code)
	assert.Equal(t, "MISSING_DATA", status)
	assert.Equal(t, "task is missing; chat_id is blank; text must be a string", msg, "every problem at once")

	a = selarti(t, srv, "send_external_message", token, map[string]any{"task": "1x2", "chat_id": "c", "text": "t"})
	assert.Equal(t, http.StatusBadRequest, a.Status)
	_, status, msg = bubble(t, a)
	assert.Equal(t, "INVALID_DATA", status)
	assert.Equal(t, `task "1x2" is not a task of the account`, msg)

	a = call(t, srv, "POST", "/api/1.1/wf/send_external_message", `{}`, "Authorization", "Bearer "+token)
	assert.Equal(t, http.StatusBadRequest, a.Status, "no Content-Type")
	waitReplies(t, srv)
	assert.Zero(t, srv.Stats().SelartiMessages)
	assert.Nil(t, srv.SelartiMessages("c"))
}

// The fixture is Selarti's own example: the fake's webhooks have its keys.
func fixtureKeys(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../testdata/selarti-all-messages.json")
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(b, &v))
	return slices.Sorted(maps.Keys(v))
}

func TestSelartiAIAnswersByWebhook(t *testing.T) {
	srv := newServer(t)
	hook := newSelartiHook(t, srv, http.StatusOK)
	token := selartiToken(t, srv)

	body := sendBody("tg-1", "Where is my order?")
	body["metadata"] = map[string]any{"order": 391}
	a := selarti(t, srv, "send_external_message", token, body)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.JSONEq(t, `{"status":"success","response":{}}`, string(a.Body))
	waitReplies(t, srv)
	require.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", token, sendBody("tg-1", "Thanks")).Status)
	require.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", token, sendBody("tg-2", "Hello")).Status)
	waitReplies(t, srv)

	got := hook.got()
	require.Len(t, got, 6, "one webhook per message: the user's echo, then the answer")
	var evs []*convo.SelartiEvent
	echoes := map[string]string{}
	for _, b := range got {
		var raw map[string]any
		require.NoError(t, json.Unmarshal(b, &raw))
		assert.Equal(t, fixtureKeys(t), slices.Sorted(maps.Keys(raw)), "the keys of Selarti's example")
		ev, err := convo.ParseSelartiEvent(b)
		require.NoError(t, err)
		if ev.MessageType == convo.AuthorUser {
			echoes[ev.MessageText] = ev.ExternalChatID
			continue
		}
		evs = append(evs, ev)
	}
	assert.Equal(t, map[string]string{"Where is my order?": "tg-1", "Thanks": "tg-1", "Hello": "tg-2"}, echoes)
	byChat := map[string][]*convo.SelartiEvent{}
	for _, ev := range evs {
		assert.Equal(t, convo.SelartiAllMessages, ev.Type)
		assert.Equal(t, convo.AuthorBot, ev.MessageType)
		assert.Equal(t, convotest.DefaultSelartiTaskID, ev.TaskID)
		assert.Regexp(t, `^[0-9]{13}x[0-9]{18}$`, ev.MessageID)
		assert.Contains(t, ev.PanelURL, ev.ThreadID)
		byChat[ev.ExternalChatID] = append(byChat[ev.ExternalChatID], ev)
	}
	require.Len(t, byChat["tg-1"], 2)
	require.Len(t, byChat["tg-2"], 1)
	assert.Equal(t, byChat["tg-1"][0].ThreadID, byChat["tg-1"][1].ThreadID, "one thread per chat")
	assert.NotEqual(t, byChat["tg-1"][0].ThreadID, byChat["tg-2"][0].ThreadID)
	assert.NotEqual(t, byChat["tg-1"][0].MessageID, byChat["tg-1"][1].MessageID, "a fresh message id each")
	texts := []string{byChat["tg-1"][0].MessageText, byChat["tg-1"][1].MessageText}
	assert.ElementsMatch(t, []string{"AI: you said Where is my order?", "AI: you said Thanks"}, texts)

	dialog := srv.SelartiMessages("tg-1")
	require.Len(t, dialog, 4)
	var users, bots int
	for _, m := range dialog {
		switch m.Type {
		case "user":
			users++
		case "bot":
			bots++
		}
		assert.Equal(t, http.StatusOK, m.WebhookStatus)
		assert.Empty(t, m.WebhookError)
		assert.Equal(t, dialog[0].ThreadID, m.ThreadID)
	}
	assert.Equal(t, 2, users)
	assert.Equal(t, 2, bots)
	assert.JSONEq(t, `{"order":391}`, string(dialog[0].Extra["metadata"]), "keys beyond the three are kept")
	assert.Equal(t, convotest.Stats{SelartiTokens: 1, SelartiMessages: 3, SelartiReplies: 3, SelartiWebhooks: 6}, srv.Stats())
}

func TestSelartiCustomAI(t *testing.T) {
	srv := newServer(t, convotest.WithSelartiAI(func(_ context.Context, m convotest.SelartiMessage) string {
		if m.Text == "silence" {
			return ""
		}
		return "Your chat is " + m.ChatID
	}))
	token := selartiToken(t, srv)
	require.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", token, sendBody("c1", "silence")).Status)
	require.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", token, sendBody("c1", "hello")).Status)
	waitReplies(t, srv)
	dialog := srv.SelartiMessages("c1")
	require.Len(t, dialog, 3, "no answer to silence")
	last := dialog[2]
	assert.Equal(t, "bot", last.Type)
	assert.Equal(t, "Your chat is c1", last.Text)
	assert.Zero(t, last.WebhookStatus, "no webhook URL set")
	assert.Contains(t, last.WebhookError, "SetSelartiWebhook")
	assert.Zero(t, srv.Stats().SelartiWebhooks)
}

func TestSelartiReplyAsOperator(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	_, err := srv.ReplyAsOperator(ctx, "c1", "Hello")
	assert.ErrorContains(t, err, "no Selarti dialog")

	token := selartiToken(t, srv)
	require.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", token, sendBody("c1", "hi")).Status)
	waitReplies(t, srv)
	_, err = srv.ReplyAsOperator(ctx, "c1", "Hello")
	assert.ErrorContains(t, err, "SetSelartiWebhook")

	hook := newSelartiHook(t, srv, http.StatusOK)
	m, err := srv.ReplyAsOperator(ctx, "c1", "Maria here, from the shop")
	assert.Contains(t, srv.SelartiMessages("c1")[0].WebhookError, "SetSelartiWebhook", "the user's echo had no URL")
	require.NoError(t, err)
	assert.Equal(t, "operator", m.Type)
	assert.Equal(t, http.StatusOK, m.WebhookStatus)
	got := hook.got()
	require.Len(t, got, 1, "delivered at once")
	ev, err := convo.ParseSelartiEvent(got[0])
	require.NoError(t, err)
	assert.Equal(t, convo.AuthorOperator, ev.MessageType)
	assert.True(t, ev.Operator)
	assert.Equal(t, "c1", ev.ExternalChatID)
	assert.Equal(t, m.ID, ev.MessageID)
	assert.Equal(t, srv.SelartiMessages("c1")[0].ThreadID, ev.ThreadID)

	newSelartiHook(t, srv, http.StatusInternalServerError)
	m, err = srv.ReplyAsOperator(ctx, "c1", "again")
	require.NoError(t, err, "a status is an answer")
	assert.Equal(t, http.StatusInternalServerError, m.WebhookStatus)
}

func TestSelartiAddTarget(t *testing.T) {
	srv := newServer(t)
	token := selartiToken(t, srv)
	task := srv.SelartiTaskID()
	for _, target := range []string{"@maria", "+5527999999999"} {
		a := selarti(t, srv, "add_target", token, map[string]any{"task": task, "target": target})
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
		assert.JSONEq(t, `{"status":"success","response":{}}`, string(a.Body))
	}
	assert.Equal(t, []string{"@maria", "+5527999999999"}, srv.SelartiTargets(task))

	a := selarti(t, srv, "add_target", token, map[string]any{"task": task, "targets": "@x"})
	assert.Equal(t, http.StatusBadRequest, a.Status)
	_, status, msg := bubble(t, a)
	assert.Equal(t, "MISSING_DATA", status)
	assert.Equal(t, "target is missing; targets is not a known field", msg)
	assert.Equal(t, 2, srv.Stats().SelartiTargets)
}

func TestSelartiFaultsAndReset(t *testing.T) {
	srv := newServer(t)
	hook := newSelartiHook(t, srv, http.StatusOK)
	token := selartiToken(t, srv)
	srv.Inject(convotest.Fault{Path: "/api/1.1/wf/send_external_message", Status: http.StatusServiceUnavailable})
	assert.Equal(t, http.StatusServiceUnavailable, selarti(t, srv, "send_external_message", token, sendBody("c1", "one")).Status)
	waitReplies(t, srv)
	assert.Empty(t, hook.got(), "failed before acting: the AI never saw it")

	srv.Inject(convotest.Fault{Path: "/api/1.1/wf/*", Status: http.StatusInternalServerError, AfterApply: true})
	assert.Equal(t, http.StatusInternalServerError, selarti(t, srv, "send_external_message", token, sendBody("c1", "two")).Status)
	waitReplies(t, srv)
	require.Len(t, hook.got(), 2, "acted then failed: the message was echoed and answered")
	assert.Equal(t, 1, srv.Stats().SelartiMessages)
	assert.Equal(t, 2, srv.RequestCount("POST", "/api/1.1/wf/send_external_message"))

	srv.Reset()
	assert.Nil(t, srv.SelartiMessages("c1"))
	assert.Equal(t, http.StatusUnauthorized, selarti(t, srv, "send_external_message", token, sendBody("c1", "x")).Status, "tokens forgotten")
	require.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", selartiToken(t, srv), sendBody("c1", "three")).Status)
	waitReplies(t, srv)
	assert.Len(t, hook.got(), 4, "the webhook URL stays")
}

func TestSelartiCloseEndsAnswers(t *testing.T) {
	started := make(chan struct{})
	srv := convotest.NewServer(convotest.WithSelartiAI(func(ctx context.Context, _ convotest.SelartiMessage) string {
		close(started)
		<-ctx.Done()
		return ""
	}))
	token := selartiToken(t, srv)
	require.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", token, sendBody("c1", "hi")).Status)
	<-started
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the AI's answer")
	}
}

func TestSelartiClientWired(t *testing.T) {
	srv := newServer(t)
	hook := newSelartiHook(t, srv, http.StatusOK)
	c, err := srv.Client()
	require.NoError(t, err)
	ctx := context.Background()
	msg := convo.SelartiMessage{TaskID: srv.SelartiTaskID(), ChatID: "tg-1", Text: "hi"}
	_, err = c.Selarti.Send(ctx, msg)
	require.NoError(t, err)
	require.NoError(t, c.Selarti.AddTarget(ctx, srv.SelartiTaskID(), "@maria"))

	srv.ExpireSelartiTokens()
	_, err = c.Selarti.Send(ctx, msg)
	require.NoError(t, err, "a refused token is exchanged again")
	waitReplies(t, srv)
	assert.Equal(t, convotest.Stats{SelartiTokens: 2, SelartiMessages: 2, SelartiReplies: 2, SelartiWebhooks: 4, SelartiTargets: 1}, srv.Stats())
	assert.Equal(t, 3, srv.RequestCount("POST", "/api/1.1/wf/send_external_message"), "the refused send, repeated once")
	assert.Len(t, hook.got(), 4)
	assert.Equal(t, []string{"@maria"}, srv.SelartiTargets(srv.SelartiTaskID()))
}

func TestSelartiTokenErrorShapes(t *testing.T) {
	body := sendBody("chat-1", "hi")
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden} {
		srv := newServer(t, convotest.WithSelartiTokenError(status, convotest.BubbleErrorClass))
		for _, token := range []string{"", "tok_made_up"} {
			a := selarti(t, srv, "send_external_message", token, body)
			assert.Equal(t, status, a.Status)
			var v map[string]any
			require.NoError(t, json.Unmarshal(a.Body, &v), "%s", a.Body)
			assert.Equal(t, []string{"args", "error_class", "message", "translation"}, slices.Sorted(maps.Keys(v)))
			assert.Equal(t, "Unauthorized", v["error_class"])
			assert.Nil(t, v["message"])
			assert.Regexp(t, `^Invalid or expired token: bus\|\d+x\d{18}\|`+token+`$`, v["translation"])
			assert.Regexp(t, `^\d+x\d{18}$`, v["args"].(map[string]any)["code"])
		}
		assert.Equal(t, http.StatusOK, selarti(t, srv, "send_external_message", selartiToken(t, srv), body).Status)
	}

	// The client takes either shape as a refused token: it exchanges the
	// key again and repeats the call once.
	for _, shape := range []convotest.SelartiTokenError{convotest.BubbleStatusBody, convotest.BubbleErrorClass} {
		srv := newServer(t, convotest.WithSelartiTokenError(http.StatusBadRequest, shape))
		c, err := srv.Client()
		require.NoError(t, err)
		require.NoError(t, c.Selarti.AddTarget(context.Background(), srv.SelartiTaskID(), "@maria"))
		srv.ExpireSelartiTokens()
		require.NoError(t, c.Selarti.AddTarget(context.Background(), srv.SelartiTaskID(), "@joao"))
		assert.Equal(t, 2, srv.Stats().SelartiTokens)
		assert.Equal(t, 3, srv.RequestCount(http.MethodPost, "/api/1.1/wf/add_target"))
		assert.Equal(t, []string{"@maria", "@joao"}, srv.SelartiTargets(srv.SelartiTaskID()))
	}
}
