package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// startBridge serves a bridge in mode on 127.0.0.1:0 against a convotest
// fake. stop cancels serve and returns its result, failing the test when
// it does not return within 5 s.
func startBridge(t *testing.T, mode, secret string) (srv *convotest.Server, url string, stop func() error) {
	t.Helper()
	srv = convotest.NewServer()
	t.Cleanup(srv.Close)
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b, err := newBridge(ctx, c, mode, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, b.handler(secret), log) }()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("serve did not return within 5s of the cancellation")
			return nil
		}
	}
	return srv, "http://" + ln.Addr().String() + "/hooks/selarti", stop
}

// events are a bot reply and the user's message of the seed's dialog.
func events() (bot, user convo.SelartiEvent) {
	bot = convo.SelartiEvent{
		Type:           convo.SelartiAllMessages,
		ExternalChatID: "123456789",
		Contacts:       "123456789",
		MessageID:      "1731336491876x582725124419040400",
		MessageText:    "Hello from the bot",
		MessageType:    convo.AuthorBot,
		ThreadID:       "1731336491572x316716105037601100",
		Title:          "API chat 123456789",
	}
	user = bot
	user.MessageID = "1731336491876x582725124419040399"
	user.MessageText = "Hello from the user"
	user.MessageType = convo.AuthorUser
	return bot, user
}

// deliver posts evs in order and checks that each is answered want.
func deliver(t *testing.T, srv *convotest.Server, url string, want int, evs ...convo.SelartiEvent) {
	t.Helper()
	for _, ev := range evs {
		resp, err := srv.DeliverSelarti(context.Background(), url, ev)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Fatalf("delivery of %s answered %d, want %d", ev.MessageID, resp.StatusCode, want)
		}
	}
}

func TestBridgeTalkJS(t *testing.T) {
	srv, url, stop := startBridge(t, modeTalkJS, "")
	bot, user := events()
	deliver(t, srv, url, http.StatusOK, bot, user, bot)

	msgs := srv.Messages("selarti_123456789")
	if len(msgs) != 1 {
		t.Fatalf("relayed %d messages, want 1: %+v", len(msgs), msgs)
	}
	if m := msgs[0]; m.SenderID == nil || *m.SenderID != botID || m.Text != bot.MessageText || m.Custom["selartiAuthor"] != "bot" {
		t.Errorf("relayed message = %+v", m)
	}
	if conv, _ := srv.Conversation("selarti_123456789"); conv.Subject == nil || *conv.Subject != bot.Title {
		t.Errorf("conversation = %+v, want subject %q", conv, bot.Title)
	}
	if st := srv.Stats(); st.TalkJSMessages != 1 || st.TalkJSReplays != 0 {
		t.Errorf("stats = %+v, want 1 message and no replay (the handler dropped the duplicate)", st)
	}
	if err := stop(); err != nil {
		t.Errorf("serve = %v, want nil after a graceful shutdown", err)
	}
}

func TestBridgeTalqui(t *testing.T) {
	srv, url, stop := startBridge(t, modeTalqui, "")
	bot, user := events()
	deliver(t, srv, url, http.StatusOK, bot, user, bot)

	sessions := srv.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("started %d sessions, want 1: %+v", len(sessions), sessions)
	}
	if s := sessions[0]; s.Channel != convo.ChannelWhatsAppBusiness || s.Message.Value != bot.MessageText {
		t.Errorf("session = %+v", s)
	}
	if cs := srv.Contacts(); len(cs) != 1 || cs[0].ExternalID != "123456789" || cs[0].FullName != bot.Title {
		t.Errorf("contacts = %+v", cs)
	}
	if err := stop(); err != nil {
		t.Errorf("serve = %v", err)
	}
}

func TestBridgeSharedSecret(t *testing.T) {
	srv, url, stop := startBridge(t, modeTalkJS, "s3cret")
	bot, _ := events()
	deliver(t, srv, url, http.StatusUnauthorized, bot)
	deliver(t, srv, url+"?secret=s3cret", http.StatusOK, bot)
	if n := len(srv.Messages("selarti_123456789")); n != 1 {
		t.Errorf("relayed %d messages, want 1", n)
	}
	if err := stop(); err != nil {
		t.Errorf("serve = %v", err)
	}
}

func TestBridgeRefusesUnknownMode(t *testing.T) {
	if _, err := newBridge(context.Background(), nil, "sms", slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("newBridge accepted mode sms")
	}
}
