package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convokit/convo/convotest"
)

// envVars are the variables the quickstart reads.
var envVars = []string{
	"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN", "TALQUI_URL",
	"TALKJS_APP_ID", "TALKJS_SECRET_KEY", "TALKJS_URL", "SELARTI_API_KEY", "SELARTI_URL", "SELARTI_TASK_ID",
	"QUICKSTART_PHONE",
}

// setEnv sets the variables of m and clears the others the quickstart reads.
func setEnv(t *testing.T, m map[string]string) {
	for _, k := range envVars {
		t.Setenv(k, m[k])
	}
}

// offline clears the environment.
func offline(t *testing.T) { setEnv(t, nil) }

// fakeEnv is what "convo fake" prints for srv.
func fakeEnv(srv *convotest.Server) map[string]string {
	conn := srv.Connections()[0]
	return map[string]string{
		"TALQUI_URL": srv.URL, "TALQUI_TENANT": srv.TenantID(), "TALQUI_CONNECTION_ID": conn.ID, "TALQUI_TOKEN": conn.Token,
		"TALKJS_URL": srv.URL, "TALKJS_APP_ID": srv.AppID(), "TALKJS_SECRET_KEY": srv.SecretKey(),
		"SELARTI_URL": srv.URL + "/api/1.1", "SELARTI_API_KEY": srv.SelartiKey(), "SELARTI_TASK_ID": srv.SelartiTaskID(),
	}
}

// realEnv is credentials for the real APIs, with no *_URL.
var realEnv = map[string]string{
	"TALQUI_TENANT": "tenant-real", "TALQUI_CONNECTION_ID": "pc-real", "TALQUI_TOKEN": "pct_real_token",
	"TALKJS_APP_ID": "app-real", "TALKJS_SECRET_KEY": "sk_live_real", "SELARTI_API_KEY": "selarti_real_key",
	"SELARTI_TASK_ID": "task-real", "QUICKSTART_PHONE": "+55 27 99999-9999",
}

func TestQuickstartRunsOffline(t *testing.T) {
	offline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, false); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	for _, want := range []string{
		"convo quickstart: offline: calls only a convotest fake in this process, at http://127.0.0.1:",
		"1. TalkJS: synced users 12081 (Alice) and 8029 (Bob)",
		`2. TalkJS: created conversation order_391_fc with subject "Order #391"`,
		`3. TalkJS: 8029 sent "Hello Alice!"`,
		"4. Talqui: WhatsApp Official session started with model order_update",
		`5. Selarti: 12081 asked "Where is my order #391?"; sent to Selarti's AI with chat_id order_391_fc`,
		"   the AI's answer, at the handler http://127.0.0.1:",
		"/hooks/selarti: relayed to order_391_fc as selarti-bot",
		"   the same answer again: 200, ignored (a message_id already handled)",
		"   selarti-bot: Hi Alice! Order #391 left our warehouse today",
		"   12081: Where is my order #391?",
		"   8029: Hello Alice!",
		"done: 3 messages in order_391_fc",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\noutput:\n%s", want, out.String())
		}
	}
}

func TestQuickstartRequests(t *testing.T) {
	offline(t)
	b, err := offlineBackend()
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	srv := b.fake
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := quickstart(ctx, &out, b); err != nil {
		t.Fatalf("quickstart: %v\noutput:\n%s", err, out.String())
	}

	app := "/v1/" + srv.AppID()
	want := []string{
		"PUT " + app + "/users/12081",
		"PUT " + app + "/users/8029",
		"PUT " + app + "/conversations/order_391_fc",
		"POST " + app + "/conversations/order_391_fc/messages", // Hello Alice!
		"POST /tenants/" + srv.TenantID() + "/sessions",
		"POST " + app + "/conversations/order_391_fc/messages", // Alice's question
		"PUT " + app + "/users/selarti-bot",
		"PUT " + app + "/conversations/order_391_fc/participants/selarti-bot",
		"POST /api/1.1/wf/auth",
		"POST /api/1.1/wf/send_external_message",               // the question, to Selarti
		"POST " + app + "/conversations/order_391_fc/messages", // the AI's answer, once
		"GET " + app + "/conversations/order_391_fc/messages",
	}
	var got []string
	for _, r := range srv.Requests() {
		got = append(got, r.Method+" "+r.Path)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	st := srv.Stats()
	if st.TalquiSessions != 1 || st.TalkJSMessages != 3 || st.TalkJSReplays != 0 || st.SelartiMessages != 1 || st.SelartiReplies != 1 {
		t.Errorf("stats = %+v, want 1 session, 3 TalkJS messages, no replays, 1 Selarti message and answer", st)
	}
	sessions := srv.Sessions()
	if len(sessions) != 1 || sessions[0].Channel != "urn:talqui:whatsapp-cloud:0" || sessions[0].CampaignModelID != "order_update" {
		t.Errorf("sessions = %+v, want one WhatsApp Official start with model order_update", sessions)
	}
	msgs := srv.Messages("order_391_fc")
	if len(msgs) != 3 {
		t.Fatalf("stored %d messages, want 3", len(msgs))
	}
	senders := map[string]string{}
	for _, m := range msgs {
		if m.SenderID != nil {
			senders[*m.SenderID] = m.Text
		}
	}
	if senders["8029"] != "Hello Alice!" || senders["12081"] != question || senders["selarti-bot"] != offlineAnswer {
		t.Errorf("messages by sender = %q", senders)
	}
}

func TestQuickstartLiveRefusesPartialCredentials(t *testing.T) {
	offline(t)
	t.Setenv("TALKJS_APP_ID", "app")
	err := run(context.Background(), new(bytes.Buffer), true)
	if err == nil || !strings.Contains(err.Error(), "TALKJS_SECRET_KEY: must be set with TALKJS_APP_ID") {
		t.Fatalf("run = %v, want an error naming the missing variable", err)
	}
}

// With the fake's variables exported (as "convo fake" prints them) and no
// -live, the quickstart runs on its own fake: nothing reaches the exported
// one, and nothing but loopback is dialled.
func TestQuickstartWithTheFakesVariablesStaysOffline(t *testing.T) {
	trap.Reset()
	exported := convotest.NewServer()
	defer exported.Close()
	setEnv(t, fakeEnv(exported))
	var out bytes.Buffer
	if code := realMain(nil, &out, io.Discard); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if !strings.HasPrefix(first, "convo quickstart: offline: calls only a convotest fake in this process") {
		t.Errorf("first line %q", first)
	}
	if n := len(exported.Requests()); n != 0 {
		t.Errorf("the exported fake got %d requests without -live", n)
	}
	assertNoDial(t)
}

// With -live and the fake's variables, every call goes to that fake.
func TestQuickstartLiveOnTheFakesVariablesCallsOnlyTheFake(t *testing.T) {
	trap.Reset()
	exported := convotest.NewServer()
	defer exported.Close()
	setEnv(t, fakeEnv(exported))
	t.Setenv("QUICKSTART_PHONE", "+55 27 99999-9999")
	var out bytes.Buffer
	if code := realMain([]string{"-live"}, &out, &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	u := exported.URL
	if want := "convo quickstart: live: calls talqui " + u + ", talkjs " + u + ", selarti " + u + "/api/1.1"; first != want {
		t.Errorf("first line %q\nwant       %q", first, want)
	}
	st := exported.Stats()
	if st.TalquiSessions != 1 || st.TalkJSMessages != 2 || st.SelartiMessages != 1 {
		t.Errorf("the exported fake's stats = %+v, want the session, 2 messages and the question", st)
	}
	assertNoDial(t)
}

// With real credentials in the environment and no -live, nothing is sent
// to the real APIs.
func TestQuickstartWithRealCredentialsSendsNothingWithoutLive(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv)
	var out bytes.Buffer
	if code := realMain(nil, &out, &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	if !strings.HasPrefix(out.String(), "convo quickstart: offline:") {
		t.Errorf("output %q", out.String())
	}
	assertNoDial(t)
}

// The check above can fail: with -live, the same environment dials the
// real host (here, the trap in its place), after saying so.
func TestQuickstartLiveWithRealCredentialsDialsTheRealHosts(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, true) }()
	select {
	case <-trap.Hit():
	case err := <-done:
		t.Fatalf("run ended without dialling: %v\n%s", err, out.String())
	case <-time.After(20 * time.Second):
		t.Fatal("nothing dialled")
	}
	cancel()
	<-done
	if got := trap.Requests(); len(got) == 0 || got[0] != "CONNECT api.talkjs.com:443 HTTP/1.1" {
		t.Errorf("dialled %q, want api.talkjs.com", got)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if want := "convo quickstart: live: calls talqui https://api.talqui.chat, talkjs https://api.talkjs.com, selarti https://selarti.com/api/1.1"; first != want {
		t.Errorf("first line %q\nwant       %q", first, want)
	}
}

func TestQuickstartHelp(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv)
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	if !strings.HasPrefix(stdout.String(), "usage: quickstart [-live]") || !strings.Contains(stdout.String(), "-live") || stderr.Len() != 0 {
		t.Errorf("-h: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if code := realMain([]string{"-nope"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "flag provided but not defined: -nope") {
		t.Errorf("-nope: exit %d, stderr %q", code, stderr.String())
	}
	assertNoDial(t)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
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
