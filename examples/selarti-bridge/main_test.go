package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// env is a bridge served on 127.0.0.1:0 against a convotest fake whose
// Selarti webhook points at it.
type env struct {
	srv         *convotest.Server
	c           *convo.Client
	talkjsHook  string
	selartiHook string
	stop        func() error
	inbox       *inboxWatch
	b           *bridge
}

// inboxWatch counts what the bridge's inbox keeps and settles, through
// its observer.
type inboxWatch struct {
	mu       sync.Mutex
	kept     int
	settled  int // completed or dead-lettered
	outcomes map[convo.InboxOutcome]int
	changed  chan struct{}
}

func newInboxWatch() *inboxWatch {
	return &inboxWatch{outcomes: map[convo.InboxOutcome]int{}, changed: make(chan struct{})}
}

func (w *inboxWatch) observer() convo.Observer {
	return convo.Observer{
		InboxKept: func(context.Context, convo.InboxInfo) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.kept++
			w.poke()
		},
		InboxRunDone: func(_ context.Context, r convo.InboxRunResult) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.outcomes[r.Outcome]++
			if r.Outcome == convo.InboxCompleted || r.Outcome == convo.InboxDeadLettered {
				w.settled++
			}
			w.poke()
		},
	}
}

func (w *inboxWatch) poke() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// await waits until cond holds of the counts (it is called with w.mu
// held), failing t after 15 s.
func (w *inboxWatch) await(t *testing.T, what string, cond func(w *inboxWatch) bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		w.mu.Lock()
		ok, changed := cond(w), w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: not within 15 s", what)
		}
	}
}

// settle waits until the inbox has run every answer it kept.
func (e *env) settle(t *testing.T) {
	t.Helper()
	e.inbox.await(t, "the inbox settles", func(w *inboxWatch) bool { return w.kept == w.settled })
}

// startBridge serves a bridge; stop closes the fake, cancels serve and
// returns its result, failing the test when it does not return within 15 s.
// (Shutdown waits for a connection that was opened but never sent a
// request, such as one the fake dialled for a delivery another connection
// then served, until net/http deems it idle, after 5 s; closing the fake
// closes it.)
func startBridge(t *testing.T, customerRole string, inboxOpts ...convo.InboxOption) *env {
	t.Helper()
	watch := newInboxWatch()
	inboxOpts = append(inboxOpts, convo.WithInboxObserver(watch.observer()))
	srv := convotest.NewServer()
	t.Cleanup(srv.Close)
	c, err := srv.Client()
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := config{c: c, taskID: srv.SelartiTaskID(), talkjsSecret: srv.SecretKey(), customerRole: customerRole, fake: srv, inboxOpts: inboxOpts}
	b, err := newBridge(ctx, cfg, log)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	srv.SetSelartiWebhook(base + "/hooks/selarti")
	done := make(chan error, 1)
	ran := make(chan error, 1)
	go func() { ran <- b.inbox.Run(ctx) }()
	go func() { done <- serve(ctx, ln, b.handler(), log) }()
	stop := func() error {
		// The fake first: it closes the connections it dialled to deliver
		// webhooks, which Shutdown would otherwise wait for.
		srv.Close()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, <-ran)
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not return within 15s of the cancellation")
			return nil
		}
	}
	return &env{srv: srv, c: c, talkjsHook: base + "/hooks/talkjs", selartiHook: base + "/hooks/selarti", stop: stop, inbox: watch, b: b}
}

const conv = "order_391"

// chat makes a customer and a seller and their conversation.
func (e *env) chat(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, e.c.Users.Upsert(ctx, "alice", convo.UserUpdate{Name: "Alice", Role: "customer"}))
	require.NoError(t, e.c.Users.Upsert(ctx, "bob", convo.UserUpdate{Name: "Bob", Role: "seller"}))
	require.NoError(t, e.c.Conversations.Upsert(ctx, conv, convo.ConversationUpdate{Participants: []string{"alice", "bob"}}))
}

// say stores a message by sender in the fake TalkJS and delivers its
// signed message.sent webhook to the bridge, as TalkJS does; it requires
// a 200 and waits for Selarti's answers.
func (e *env) say(t *testing.T, sender, text string) {
	t.Helper()
	ctx := context.Background()
	ids, err := e.c.Conversations.SendMessages(ctx, conv, convo.UserMessage(sender, text))
	require.NoError(t, err)
	e.deliver(t, ids[0])
}

// deliver delivers the message.sent of a stored message.
func (e *env) deliver(t *testing.T, msgID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	status, err := deliverMessageSent(ctx, e.srv, e.talkjsHook, conv, msgID)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, e.srv.WaitSelartiReplies(ctx))
	e.settle(t)
}

// texts lists the conversation's messages as "sender: text (author)".
func (e *env) texts() []string {
	var out []string
	for _, m := range e.srv.Messages(conv) {
		line := *m.SenderID + ": " + m.Text
		if a := m.Custom["selartiAuthor"]; a != "" {
			line += " (" + a + ")"
		}
		out = append(out, line)
	}
	return out
}

// The loop, end to end: a customer's message in, by a signed TalkJS
// webhook; the AI's answer out, in the same conversation, exactly once.
func TestBridgeEndToEnd(t *testing.T) {
	e := startBridge(t, "")
	e.chat(t)
	e.say(t, "alice", "Where is my order?")

	assert.Equal(t, []string{
		"alice: Where is my order?",
		"selarti-bot: AI: you said Where is my order? (bot)",
	}, e.texts())
	sent := e.srv.SelartiMessages(conv)
	require.Len(t, sent, 2, "the customer's message and the AI's answer")
	assert.Equal(t, "Where is my order?", sent[0].Text)
	assert.Equal(t, http.StatusOK, sent[0].WebhookStatus, "Selarti's echo of the customer's message: answered 200, dropped")
	assert.Equal(t, http.StatusOK, sent[1].WebhookStatus)
	assert.Equal(t, convotest.Stats{
		TalkJSMessages: 2, SelartiTokens: 1, SelartiMessages: 1, SelartiReplies: 1, SelartiWebhooks: 2,
	}, e.srv.Stats())

	// TalkJS also posts message.sent for the bot's answer: it is not sent
	// back to Selarti.
	answer := e.srv.Messages(conv)[1]
	e.deliver(t, answer.ID)
	// An operator answers from Selarti's panel; Selarti redelivers it.
	op, err := e.srv.ReplyAsOperator(context.Background(), conv, "Maria here: it ships today.")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, op.WebhookStatus)
	resp, err := e.srv.DeliverSelarti(context.Background(), e.selartiHook,
		convo.SelartiEvent{Type: convo.SelartiAllMessages, MessageType: convo.AuthorOperator, MessageID: op.ID, ExternalChatID: conv, MessageText: op.Text})
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	e.settle(t)

	assert.Equal(t, []string{
		"alice: Where is my order?",
		"selarti-bot: AI: you said Where is my order? (bot)",
		"selarti-bot: Maria here: it ships today. (operator)",
	}, e.texts())
	st := e.srv.Stats()
	assert.Equal(t, 1, st.SelartiMessages, "only the customer's message went to Selarti")
	assert.Equal(t, 3, st.TalkJSMessages)
	assert.Zero(t, st.TalkJSReplays, "the redelivery was dropped by the handler")
	require.NoError(t, e.stop(), "a graceful shutdown")
}

func TestBridgeCustomerRole(t *testing.T) {
	e := startBridge(t, "customer")
	e.chat(t)
	e.say(t, "bob", "I am the seller")
	e.say(t, "alice", "Hi")
	assert.Equal(t, []string{
		"bob: I am the seller",
		"alice: Hi",
		"selarti-bot: AI: you said Hi (bot)",
	}, e.texts())
	assert.Equal(t, 1, e.srv.Stats().SelartiMessages)
	require.NoError(t, e.stop())
}

// A send that may have reached Selarti is not sent again: the TalkJS
// handler answers 200, so TalkJS does not redeliver it either.
func TestBridgeNeverSendsTwice(t *testing.T) {
	e := startBridge(t, "")
	e.chat(t)
	e.srv.Inject(convotest.Fault{Path: "/api/1.1/wf/send_external_message", Status: http.StatusServiceUnavailable, AfterApply: true})
	e.say(t, "alice", "Where is my order?")
	assert.Equal(t, 1, e.srv.RequestCount("POST", "/api/1.1/wf/send_external_message"), "one try")
	assert.Equal(t, 1, e.srv.Stats().SelartiMessages)
	assert.Equal(t, []string{
		"alice: Where is my order?",
		"selarti-bot: AI: you said Where is my order? (bot)",
	}, e.texts(), "Selarti had it and answered")
	require.NoError(t, e.stop())
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// envVars are the variables the bridge reads.
var envVars = []string{
	"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN", "TALQUI_URL",
	"TALKJS_APP_ID", "TALKJS_SECRET_KEY", "TALKJS_URL", "SELARTI_API_KEY", "SELARTI_URL", "SELARTI_TASK_ID",
	"SELARTI_SHARED_SECRET", "CUSTOMER_ROLE",
}

func setEnv(t *testing.T, m map[string]string) {
	for _, k := range envVars {
		t.Setenv(k, m[k])
	}
	t.Setenv("ADDR", "127.0.0.1:0")
}

// realEnv is credentials for the real APIs, with no *_URL.
var realEnv = map[string]string{
	"TALKJS_APP_ID": "app-real", "TALKJS_SECRET_KEY": "sk_live_real",
	"SELARTI_API_KEY": "selarti_real_key", "SELARTI_TASK_ID": "task-real",
}

// With real credentials in the environment and no -live, the bridge runs
// on its own fake and dials nothing but loopback.
func TestBridgeRunsOffline(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(&logs, nil)), false) }()
	// The demo prints the answer once TalkJS has it, which may be before
	// the inbox's run has returned and logged it.
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "from=selarti-bot") && strings.Contains(logs.String(), "relayed to talkjs")
	}, 10*time.Second, 10*time.Millisecond, "the demo's answer\n%s", &logs)
	cancel()
	require.NoError(t, <-done)
	out := logs.String()
	first, _, _ := strings.Cut(out, "\n")
	assert.Contains(t, first, `msg="offline: calls only a convotest fake in this process (-live calls the hosts the environment configures)" url=http://127.0.0.1:`)
	for _, want := range []string{
		"sent to selarti",
		"relayed to talkjs",
		`from=demo-customer text="Where is my order #391?"`,
		`from=selarti-bot text="AI: you said Where is my order #391?"`,
		"shutting down",
	} {
		assert.Contains(t, out, want)
	}
	assertNoDial(t)
}

// With -live and the variables "convo fake" exports, the bridge calls that
// fake only, and says so first.
func TestBridgeLiveOnTheFakesVariables(t *testing.T) {
	trap.Reset()
	srv := convotest.NewServer()
	defer srv.Close()
	setEnv(t, map[string]string{
		"TALKJS_URL": srv.URL, "TALKJS_APP_ID": srv.AppID(), "TALKJS_SECRET_KEY": srv.SecretKey(),
		"SELARTI_URL": srv.URL + "/api/1.1", "SELARTI_API_KEY": srv.SelartiKey(), "SELARTI_TASK_ID": srv.SelartiTaskID(),
	})
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(&logs, nil)), true) }()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "listening") },
		10*time.Second, 10*time.Millisecond, "%s", &logs)
	cancel()
	require.NoError(t, <-done)
	first, _, _ := strings.Cut(logs.String(), "\n")
	assert.Contains(t, first, `msg="live: calls talkjs `+srv.URL+", selarti "+srv.URL+`/api/1.1"`)
	assert.Equal(t, 1, srv.RequestCount("PUT", "/v1/"+srv.AppID()+"/users/selarti-bot"), "the bot user, on the exported fake")
	assertNoDial(t)
}

// With -live and real credentials, the bridge dials TalkJS (the trap in
// its place).
func TestBridgeLiveWithRealCredentialsDialsTalkJS(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), true) }()
	select {
	case <-trap.Hit():
	case err := <-done:
		t.Fatalf("run ended without dialling: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("nothing dialled")
	}
	cancel()
	<-done
	got := trap.Requests()
	require.NotEmpty(t, got)
	assert.Equal(t, "CONNECT api.talkjs.com:443 HTTP/1.1", got[0])
}

func TestBridgeLiveRefusesPartialCredentials(t *testing.T) {
	setEnv(t, map[string]string{"SELARTI_API_KEY": "k", "TALKJS_APP_ID": "app"})
	err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TALKJS_SECRET_KEY: must be set with TALKJS_APP_ID")

	setEnv(t, map[string]string{"SELARTI_API_KEY": "k"})
	err = run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-live needs TALKJS_APP_ID, TALKJS_SECRET_KEY, SELARTI_API_KEY and SELARTI_TASK_ID")
}

// -h prints the usage and exits 0 without binding ADDR (held here, so a
// bind would fail) or dialling anything.
func TestBridgeHelp(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	t.Setenv("ADDR", held.Addr().String())
	var stdout, stderr bytes.Buffer
	code := realMain(context.Background(), []string{"-h"}, &stdout, &stderr)
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(stdout.String(), "usage: selarti-bridge [-live]"), stdout.String())
	assert.Empty(t, stderr.String())
	assertNoDial(t)

	// The check can fail: without -h the held address cannot be bound.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code = realMain(ctx, nil, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "address already in use")
}

// TalkJS refuses every message for 20 s while Selarti delivers 100 AI
// answers, once each (Selarti never retries): each reaches its
// conversation exactly once, in order, once TalkJS is back.
//
// The test's time runs 100 times faster than the bridge's defaults: the
// inbox backs off from 10 ms to 3 s (1 s to 5 min) and the outage lasts
// 200 ms of wall time (20 s). It lasts longer on a slow machine: until
// TalkJS has refused each conversation's first answer twice, so that the
// retries are tested.
func TestBridgeTalkJSDownFor20s(t *testing.T) {
	const scale = 100
	const outage = 20 * time.Second / scale
	e := startBridge(t, "", convo.WithInboxBackoff(time.Second/scale, 5*time.Minute/scale))
	ctx := context.Background()
	convs := []string{"c0", "c1", "c2", "c3", "c4"}
	require.NoError(t, e.c.Users.Upsert(ctx, "alice", convo.UserUpdate{Name: "Alice", Role: "customer"}))
	for _, c := range convs {
		require.NoError(t, e.c.Conversations.Upsert(ctx, c, convo.ConversationUpdate{Participants: []string{"alice"}}))
	}
	path := func(conv string) string { return "/v1/" + e.srv.AppID() + "/conversations/" + conv + "/messages" }

	// TalkJS down: every message sent is refused, before TalkJS stores it.
	start := time.Now()
	for _, c := range convs {
		e.srv.Inject(convotest.Fault{Method: http.MethodPost, Path: path(c), Status: http.StatusServiceUnavailable, Times: 1 << 30})
	}
	want := map[string][]string{}
	for i := range 100 {
		c := convs[i%len(convs)]
		text := fmt.Sprintf("answer %02d", i)
		want[c] = append(want[c], "selarti-bot: "+text)
		resp, err := e.srv.DeliverSelarti(ctx, e.selartiHook, convo.SelartiEvent{Type: convo.SelartiAllMessages,
			MessageType: convo.AuthorBot, MessageID: fmt.Sprintf("ans-%02d", i), ExternalChatID: c, MessageText: text})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "answered once kept, though TalkJS is down")
		resp.Body.Close()
	}
	e.inbox.await(t, "100 answers kept", func(w *inboxWatch) bool { return w.kept == 100 })
	e.inbox.mu.Lock()
	assert.Zero(t, e.inbox.settled, "none relayed while TalkJS is down")
	e.inbox.mu.Unlock()
	e.inbox.await(t, "retries during the outage", func(w *inboxWatch) bool {
		return w.outcomes[convo.InboxRetried] >= 2*len(convs)
	})
	<-time.After(time.Until(start.Add(outage))) // the outage's length, not a synchronisation
	refused := e.srv.RequestCount(http.MethodPost, "/v1/"+e.srv.AppID()+"/conversations/*")
	e.srv.ClearFaults() // TalkJS is back

	e.settle(t)
	for _, c := range convs {
		assert.Equal(t, want[c], texts(e.srv, c), "conversation %s: each answer once, in order", c)
	}
	st := e.srv.Stats()
	assert.Equal(t, 100, st.TalkJSMessages)
	assert.Zero(t, st.TalkJSReplays)
	e.inbox.mu.Lock()
	assert.Equal(t, 100, e.inbox.outcomes[convo.InboxCompleted])
	assert.Zero(t, e.inbox.outcomes[convo.InboxDeadLettered])
	t.Logf("TalkJS refused %d sends during the outage; %d inbox runs were retried", refused, e.inbox.outcomes[convo.InboxRetried])
	e.inbox.mu.Unlock()
	require.NoError(t, e.stop())
}

// texts lists a conversation's messages as "sender: text".
func texts(srv *convotest.Server, conv string) []string {
	var out []string
	for _, m := range srv.Messages(conv) {
		out = append(out, *m.SenderID+": "+m.Text)
	}
	return out
}

// A relay run twice is harmless: TalkJS keys the message by Selarti's
// message id and drops the second. A run is repeated when TalkJS stored
// the message but its answer was lost, and, with redisdedup.Inbox, when
// the replica running it died after TalkJS stored it (another replica
// takes the run over after the lease).
func TestBridgeRelayRunTwiceIsHarmless(t *testing.T) {
	e := startBridge(t, "", convo.WithInboxBackoff(time.Millisecond, time.Millisecond))
	e.chat(t)
	ctx := context.Background()
	path := "/v1/" + e.srv.AppID() + "/conversations/" + conv + "/messages"

	// TalkJS stores the answer and its reply is lost, on every attempt of
	// the first run (the client's own retries included): the inbox runs
	// the relay again.
	e.srv.Inject(convotest.Fault{Method: http.MethodPost, Path: path, Status: http.StatusServiceUnavailable, AfterApply: true, Times: 4})
	resp, err := e.srv.DeliverSelarti(ctx, e.selartiHook, convo.SelartiEvent{Type: convo.SelartiAllMessages,
		MessageType: convo.AuthorBot, MessageID: "ans-1", ExternalChatID: conv, MessageText: "It ships today."})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	e.settle(t)
	assert.Equal(t, []string{"selarti-bot: It ships today. (bot)"}, e.texts())
	e.inbox.mu.Lock()
	assert.Equal(t, 1, e.inbox.outcomes[convo.InboxRetried])
	assert.Equal(t, 1, e.inbox.outcomes[convo.InboxCompleted])
	e.inbox.mu.Unlock()
	assert.Equal(t, 5, e.srv.RequestCount(http.MethodPost, path), "4 attempts in the first run, 1 in the second")
	assert.Equal(t, 4, e.srv.Stats().TalkJSReplays, "every attempt after the first was dropped by TalkJS")

	// The replica that died mid-run and the one that took it over: the
	// same relay run twice.
	ev := &convo.SelartiEvent{Type: convo.SelartiAllMessages, MessageType: convo.AuthorBot, MessageID: "ans-2", ExternalChatID: conv, MessageText: "Tracking: 1Z999."}
	require.NoError(t, e.b.toTalkJS(ctx, ev))
	require.NoError(t, e.b.toTalkJS(ctx, ev))
	assert.Equal(t, []string{"selarti-bot: It ships today. (bot)", "selarti-bot: Tracking: 1Z999. (bot)"}, e.texts())
	assert.Equal(t, 5, e.srv.Stats().TalkJSReplays)
	require.NoError(t, e.stop())
}
