package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// offline clears the credentials, so run uses convotest.
func offline(t *testing.T) {
	for _, k := range append(credentialVars, "QUICKSTART_PHONE") {
		t.Setenv(k, "")
	}
}

func TestQuickstartRunsOffline(t *testing.T) {
	offline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	for _, want := range []string{
		"convo quickstart: offline, on a convotest fake",
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

func TestQuickstartRefusesPartialCredentials(t *testing.T) {
	offline(t)
	t.Setenv("TALKJS_APP_ID", "app")
	err := run(context.Background(), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "missing TALQUI_TENANT") {
		t.Fatalf("run = %v, want an error naming the missing variables", err)
	}
}
