package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// withConversation gives the fake a conversation c1 with user u1.
func withConversation(t *testing.T, srv *convotest.Server) {
	t.Helper()
	c, err := srv.Client()
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	ctx := context.Background()
	require.NoError(t, c.Users.Upsert(ctx, "u1", convo.UserUpdate{Name: "Alice"}))
	require.NoError(t, c.Conversations.Upsert(ctx, "c1", convo.ConversationUpdate{Participants: []string{"u1"}}))
	srv.ClearRequests()
}

func TestTalkJSSendDryRunThenSend(t *testing.T) {
	srv, env := newFake(t)
	withConversation(t, srv)
	args := []string{"talkjs", "send", "-conversation", "c1", "-sender", "u1", "-text", "Hello Alice!",
		"-idempotency-key", "k-1", "-custom", "order=391"}
	dry := runCmd(t, env, append(args, "-dry-run")...)
	require.Equal(t, exitOK, dry.code, dry.stderr)
	assert.Empty(t, srv.Requests(), "a dry run sent a request")
	assert.Contains(t, dry.stdout, "POST "+srv.URL+"/v1/app-test/conversations/c1/messages\n")
	assert.Contains(t, dry.stdout, "Authorization: Bearer [redacted]\n")

	r := runCmd(t, env, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Conversation string   `json:"conversation"`
		MessageIDs   []string `json:"messageIds"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	msgs := srv.Messages("c1")
	require.Len(t, msgs, 1)
	assert.Equal(t, []string{msgs[0].ID}, out.MessageIDs)
	assert.Equal(t, map[string]string{"order": "391"}, msgs[0].Custom)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, string(reqs[0].Body), dryRunBody(t, dry.stdout))
}

func TestTalkJSSendErrors(t *testing.T) {
	srv, env := newFake(t)
	r := runCmd(t, env, "talkjs", "send", "-conversation", "missing", "-sender", "u1", "-text", "Hi")
	assert.Equal(t, exitAPI, r.code)
	assert.Contains(t, r.stderr, "404")

	assert.Contains(t, r.stderr, "\nconvo talkjs send: talkjs POST /v1/app-test/conversations/missing/messages: 404 Not Found")
	assert.NotContains(t, r.stderr, "convo: ", "no double prefix")

	r = runCmd(t, env, "talkjs", "send", "-conversation", "c1", "-dry-run")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "validation failed, nothing was sent:\n  -sender: a user message needs a sender\n  -text is required\n")
	assert.NotContains(t, r.stderr, "msgs[0]")

	r = runCmd(t, nil, "talkjs", "send", "-conversation", "c1", "-sender", "u1", "-text", "Hi")
	assert.Equal(t, exitUsage, r.code)
	assert.Equal(t, "convo talkjs send: set TALKJS_APP_ID and TALKJS_SECRET_KEY in the environment (-dry-run needs none)\n", r.stderr)
	assert.Equal(t, 1, len(srv.Requests()), "only the 404 reached the fake")
}

// TestTalkJSSendRetriedOnce: the fake stores the message, then drops the
// connection; the SDK sends again with the same idempotency key, and the
// message is stored once.
func TestTalkJSSendRetriedOnce(t *testing.T) {
	srv, env := newFake(t)
	withConversation(t, srv)
	srv.Inject(convotest.Fault{Method: "POST", Path: "/v1/*", Drop: true, AfterApply: true})
	r := runCmd(t, env, "talkjs", "send", "-conversation", "c1", "-sender", "u1", "-text", "Hi")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Len(t, srv.Messages("c1"), 1)
	assert.Equal(t, 1, srv.Stats().TalkJSReplays)
}

// A refused connection costs the command's three quick attempts (one try,
// two retries 100 and 200 ms apart), not the SDK's default four retries
// over several seconds.
func TestTalkJSSendRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	r := runCmd(t, map[string]string{"TALKJS_APP_ID": "app-test", "TALKJS_SECRET_KEY": testSecret, "TALKJS_URL": "http://" + addr},
		"talkjs", "send", "-conversation", "c1", "-sender", "u1", "-text", "Hi")
	assert.Equal(t, exitAPI, r.code)
	assert.Contains(t, r.stderr, "convo talkjs send: talkjs POST /v1/app-test/conversations/c1/messages: after 3 attempts: ")
	assert.Contains(t, r.stderr, "connection refused")
}

// -timeout bounds the call: a server that never answers ends it.
func TestTalkJSSendTimeout(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	r := runCmd(t, map[string]string{"TALKJS_APP_ID": "app-test", "TALKJS_SECRET_KEY": testSecret, "TALKJS_URL": hung.URL},
		"talkjs", "send", "-conversation", "c1", "-sender", "u1", "-text", "Hi", "-timeout", "200ms")
	assert.Equal(t, exitAPI, r.code)
	assert.Contains(t, r.stderr, "context deadline exceeded")
	assert.Contains(t, r.stderr, "the request may have been applied; do not resend blindly")
}
