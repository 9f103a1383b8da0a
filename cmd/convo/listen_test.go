package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// postTalkJS posts body to url signed with secret, as TalkJS does.
func postTalkJS(t *testing.T, url, secret string, body []byte) int {
	t.Helper()
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TalkJS-Timestamp", ts)
	req.Header.Set("X-TalkJS-Signature", convo.SignTalkJSWebhook(secret, ts, body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// lines decodes the JSON lines printed so far.
func lines(t *testing.T, out string) []delivery {
	t.Helper()
	var ds []delivery
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var d delivery
		require.NoError(t, json.Unmarshal([]byte(l), &d), "line %q", l)
		ds = append(ds, d)
	}
	return ds
}

func TestListenPrintsSignedTalkJSAndRefusesBadSignature(t *testing.T) {
	// The SDK handlers log to slog.Default unless given a logger: the
	// command reports each refusal once, itself, and nothing goes there.
	var defaultLog syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&defaultLog, nil)))
	defer slog.SetDefault(prev)
	cmd := startCmd(t, map[string]string{"TALKJS_SECRET_KEY": testSecret}, "listen", "-talkjs", "127.0.0.1:0")
	url := await(t, cmd.stderr, `talkjs webhooks: (http://\S+)`)

	body := []byte(`{"id":"evt_1","createdAt":1700000000000,"type":"message.sent","data":{"message":{"text":"hi"}}}`)
	require.Equal(t, http.StatusOK, postTalkJS(t, url, testSecret, body))
	got := lines(t, await(t, cmd.stdout, `(?s)(.*\n)`))
	require.Len(t, got, 1)
	assert.Equal(t, "talkjs", got[0].Provider)
	assert.Equal(t, "evt_1", got[0].ID)
	assert.Equal(t, "message.sent", got[0].Type)
	assert.JSONEq(t, string(body), string(got[0].Event))
	assert.WithinDuration(t, time.Now(), got[0].Received, time.Minute)

	bad := []byte(`{"id":"evt_2","createdAt":1700000000000,"type":"message.sent","data":{}}`)
	assert.Equal(t, http.StatusUnauthorized, postTalkJS(t, url, "sk_wrong", bad))
	await(t, cmd.stderr, `talkjs delivery refused: 401`)
	assert.Equal(t, exitOK, cmd.wait(t))
	assert.Len(t, lines(t, cmd.stdout.String()), 1, "a refused delivery is not printed")
	assert.Equal(t, 1, strings.Count(cmd.stderr.String(), "refused"), "reported once: %s", cmd.stderr.String())
	assert.True(t, strings.HasPrefix(cmd.stderr.String(), "convo listen: calls no host\n"), cmd.stderr.String())
	assert.Empty(t, defaultLog.String(), "the SDK handler's own log line")
	assertNoSecret(t, cmd.stdout.String(), cmd.stderr.String())
}

func TestListenPrintsSelartiDelivery(t *testing.T) {
	cmd := startCmd(t, nil, "listen", "-selarti", "127.0.0.1:0")
	url := await(t, cmd.stderr, `selarti webhooks: (http://\S+)`)
	srv := convotest.NewServer()
	defer srv.Close()
	ev := convo.SelartiEvent{Type: convo.SelartiAllMessages, MessageID: "m-1", MessageType: convo.AuthorBot,
		MessageText: "Your order ships today", ExternalChatID: "chat-9", TaskID: "t-1"}
	resp, err := srv.DeliverSelarti(context.Background(), url+"hooks/selarti", ev)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	got := lines(t, await(t, cmd.stdout, `(?s)(.*\n)`))
	require.Len(t, got, 1)
	assert.Equal(t, delivery{Provider: "selarti", ID: "m-1", Type: "all_messages", Author: "bot",
		Received: got[0].Received, Event: got[0].Event}, got[0])
	parsed, err := convo.ParseSelartiEvent(got[0].Event)
	require.NoError(t, err)
	assert.Equal(t, "Your order ships today", parsed.MessageText)
	assert.Equal(t, exitOK, cmd.wait(t))
}

func TestListenForwardsBodyWithSignature(t *testing.T) {
	type hit struct {
		header http.Header
		body   []byte
	}
	hits := make(chan hit, 4)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hits <- hit{r.Header.Clone(), b}
	}))
	defer target.Close()
	cmd := startCmd(t, map[string]string{"TALKJS_SECRET_KEY": testSecret},
		"listen", "-talkjs", "127.0.0.1:0", "-forward", target.URL+"/dev/hooks")
	url := await(t, cmd.stderr, `talkjs webhooks: (http://\S+)`)

	body := []byte(`{"id":"evt_f","createdAt":1700000000000,"type":"user.created","data":{}}`)
	require.Equal(t, http.StatusOK, postTalkJS(t, url, testSecret, body))
	select {
	case h := <-hits:
		assert.Equal(t, body, h.body, "the raw body, byte for byte")
		assert.NoError(t, convo.VerifyTalkJSSignature(testSecret, h.header.Get("X-TalkJS-Timestamp"), h.body, h.header.Get("X-TalkJS-Signature")))
		assert.Equal(t, "talkjs", h.header.Get("X-Convo-Provider"))
	case <-time.After(10 * time.Second):
		t.Fatal("nothing forwarded")
	}
	assert.Equal(t, exitOK, cmd.wait(t))
}

func TestListenUsage(t *testing.T) {
	r := runCmd(t, nil, "listen", "-talkjs", "127.0.0.1:0")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "TALKJS_SECRET_KEY")
	r = runCmd(t, nil, "listen", "-selarti", "127.0.0.1:0", "-forward", "not a url")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "-forward")
}

// TestListenFailedForwardAnswers500: the provider is told to deliver again.
func TestListenFailedForwardAnswers500(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer target.Close()
	cmd := startCmd(t, map[string]string{"TALKJS_SECRET_KEY": testSecret},
		"listen", "-talkjs", "127.0.0.1:0", "-forward", target.URL)
	url := await(t, cmd.stderr, `talkjs webhooks: (http://\S+)`)
	body := []byte(`{"id":"evt_x","createdAt":1700000000000,"type":"user.created","data":{}}`)
	assert.Equal(t, http.StatusInternalServerError, postTalkJS(t, url, testSecret, body))
	await(t, cmd.stderr, `forward of talkjs delivery "evt_x" failed: .*503`)
	assert.Equal(t, exitOK, cmd.wait(t))
	assertNoSecret(t, cmd.stdout.String(), cmd.stderr.String())
}

// A delivery whose body trickles in is answered 408 within the handler's
// read timeout: the listener's ResponseWriter lets http.ResponseController
// set the read deadline.
func TestListenAnswers408ToATrickledBody(t *testing.T) {
	l, _, err := newListener(cmdIO{ctx: context.Background(), stdout: io.Discard, stderr: io.Discard, env: envOf(t, nil)}, "127.0.0.1:0", "", "")
	require.NoError(t, err)
	l.readTimeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- serveUntilDone(cmdIO{ctx: ctx, stdout: io.Discard, stderr: io.Discard, env: envOf(t, nil)}, "listen", endpoint{ln, l.handler("selarti", "")})
	}()
	defer func() { cancel(); <-done }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /hooks/selarti HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	require.NoError(t, err)
	// Far longer than the read timeout, far shorter than ReadTimeout.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "no answer to a trickled body")
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
}

// The servers of the commands bound headers, bodies and idle keep-alives.
func TestCommandServersSetTheirTimeouts(t *testing.T) {
	hs := newHTTPServer(http.NotFoundHandler())
	assert.Positive(t, hs.ReadHeaderTimeout)
	assert.Greater(t, hs.ReadTimeout, readTimeout, "the handlers answer 408 first")
	assert.Positive(t, hs.IdleTimeout)
	assert.Positive(t, hs.WriteTimeout)
}

// A body holding bytes that are not UTF-8 is printed as a valid JSON line.
func TestListenPrintsValidJSONForInvalidUTF8(t *testing.T) {
	cmd := startCmd(t, map[string]string{"TALKJS_SECRET_KEY": testSecret}, "listen", "-talkjs", "127.0.0.1:0")
	url := await(t, cmd.stderr, `talkjs webhooks: (http://\S+)`)
	body := []byte("{\"id\":\"evt_u\",\"createdAt\":1700000000000,\"type\":\"message.sent\",\"data\":{\"message\":{\"text\":\"caf\xe9 \xff\"}}}")
	require.Equal(t, http.StatusOK, postTalkJS(t, url, testSecret, body))
	out := await(t, cmd.stdout, `(?s)(.*\n)`)
	assert.True(t, utf8.ValidString(out), "%q", out)
	got := lines(t, out)
	require.Len(t, got, 1)
	assert.True(t, json.Valid(got[0].Event))
	assert.Contains(t, string(got[0].Event), "caf\uFFFD \uFFFD")
	assert.Equal(t, exitOK, cmd.wait(t))
}

// What a command prints holds no secret in any form a server echoes it
// in, and a short test key is redacted only as a whole token.
func TestRedactEscapedForms(t *testing.T) {
	const sec = "sk_live/Se<cr>et&1"
	in := `raw sk_live/Se<cr>et&1 go "sk_live/Se\u003ccr\u003eet\u00261" php "sk_live\/Se<cr>et&1" url k=sk_live%2FSe%3Ccr%3Eet%261 path /sk_live%2FSe%3Ccr%3Eet&1/`
	assert.Equal(t, `raw [redacted] go "[redacted]" php "[redacted]" url k=[redacted] path /[redacted]/`, redact(in, []string{sec}))
	assert.Equal(t, `token [redacted] "[redacted]"`, redact(`token k "k"`, []string{"k"}))
}

// A -forward URL may carry a password (user:pass@host, sent as basic
// auth): it is used, and never printed, neither in the line that says
// which host the command calls nor in a usage error.
func TestListenForwardPasswordIsNotPrinted(t *testing.T) {
	const pass = "fwd-pass-7Qx9"
	r := runCmd(t, nil, "listen", "-selarti", "127.0.0.1:0", "-forward", "ftp://dev:"+pass+"@127.0.0.1/hooks")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "-forward")
	assert.NotContains(t, r.stderr, pass)

	auth := make(chan string, 1)
	target := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
	}))
	defer target.Close()
	fwd := strings.Replace(target.URL, "http://", "http://dev:"+pass+"@", 1)
	cmd := startCmd(t, map[string]string{"TALKJS_SECRET_KEY": testSecret}, "listen", "-talkjs", "127.0.0.1:0", "-forward", fwd)
	url := await(t, cmd.stderr, `talkjs webhooks: (http://\S+)`)
	body := []byte(`{"id":"evt_p","createdAt":1700000000000,"type":"user.created","data":{}}`)
	require.Equal(t, http.StatusOK, postTalkJS(t, url, testSecret, body))
	select {
	case a := <-auth:
		assert.Equal(t, "Basic ZGV2OmZ3ZC1wYXNzLTdReDk=", a, "the forward carries the URL's credentials")
	case <-time.After(10 * time.Second):
		t.Fatal("nothing forwarded")
	}
	assert.Equal(t, exitOK, cmd.wait(t))
	assert.Contains(t, cmd.stderr.String(), "calls http://dev:xxxxx@127.0.0.1")
	assert.NotContains(t, cmd.stderr.String()+cmd.stdout.String(), pass)

	// Nor in the report of a failed forward.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer refusing.Close()
	fwd = strings.Replace(refusing.URL, "http://", "http://dev:"+pass+"@", 1)
	cmd = startCmd(t, map[string]string{"TALKJS_SECRET_KEY": testSecret}, "listen", "-talkjs", "127.0.0.1:0", "-forward", fwd)
	url = await(t, cmd.stderr, `talkjs webhooks: (http://\S+)`)
	assert.Equal(t, http.StatusInternalServerError, postTalkJS(t, url, testSecret, body))
	await(t, cmd.stderr, `forward of talkjs delivery "evt_p" failed: .*503`)
	assert.Equal(t, exitOK, cmd.wait(t))
	assert.NotContains(t, cmd.stderr.String()+cmd.stdout.String(), pass)
}
