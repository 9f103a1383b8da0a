package convo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

func ExampleNewSelartiHandler() {
	h := convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
		// ev.MessageType is AuthorBot or AuthorOperator: relay the text to
		// the user's chat, found by ExternalChatID.
		fmt.Printf("to chat %s (%s): %s\n", ev.ExternalChatID, ev.MessageType, ev.MessageText)
		return nil
	}, convo.WithSharedSecret("long-random-secret"))

	// Selarti posts to the URL given in its integration form, here with the
	// secret in the query.
	body := `{"wh_type":"all_messages","message_type":"bot","message_id":"1731336491876x58","external_chat_id":"123456789","message_text":"Hello!","close":"no"}`
	for i := 0; i < 2; i++ { // the second delivery is a duplicate
		req := httptest.NewRequest(http.MethodPost, "/hooks/selarti?secret=long-random-secret", strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Body.String())
	}
	// Output:
	// to chat 123456789 (bot): Hello!
	// 200 {}
	// 200 {}
}

func ExampleVerifyTalkJSSignature() {
	const secret = "sk_test_webhooks"
	body := []byte(`{"id":"evt_1","type":"message.sent","createdAt":1632919967100,"data":{}}`)
	ts := "1632919967100"
	sig := convo.SignTalkJSWebhook(secret, ts, body) // what TalkJS sends in X-TalkJS-Signature

	fmt.Println(convo.VerifyTalkJSSignature(secret, ts, body, sig))
	fmt.Println(convo.VerifyTalkJSSignature("sk_other", ts, body, sig))
	ev, err := convo.ParseTalkJSEvent(body)
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.ID, ev.Type, ev.CreatedAt.Format("2006-01-02"))
	// Output:
	// <nil>
	// convo: webhook signature invalid
	// evt_1 message.sent 2021-09-29
}

// A TalkJS webhook handler checks each delivery's signature before it
// parses the body. Here the convotest fake plays TalkJS: it signs each
// delivery with the app's secret key, which the handler is given too.
func ExampleNewTalkJSHandler() {
	srv := convotest.NewServer()
	defer srv.Close()

	h := convo.NewTalkJSHandler(srv.SecretKey(), func(ctx context.Context, ev *convo.TalkJSEvent) error {
		if ev.Type != convo.TalkJSMessageSent {
			return nil // a type you do not handle: answered 200
		}
		d, err := ev.MessageSent()
		if err != nil {
			return err // answered 500: TalkJS delivers it once more
		}
		fmt.Printf("%s wrote: %s\n", d.Message.SenderID, d.Message.Text)
		return nil
	})
	hooks := httptest.NewServer(h)
	defer hooks.Close()

	resp, err := srv.DeliverTalkJS(context.Background(), hooks.URL, "message.sent", map[string]any{
		"message": map[string]any{"id": "msg_1", "conversationId": "order_391", "type": "UserMessage",
			"senderId": "12081", "text": "Where is my order?"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode)

	// A delivery signed with another key is refused (401) before it is parsed.
	body := []byte(`{"id":"evt_2","type":"message.sent","data":{}}`)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req := httptest.NewRequest(http.MethodPost, "/hooks/talkjs", bytes.NewReader(body))
	req.Header.Set("X-TalkJS-Timestamp", ts)
	req.Header.Set("X-TalkJS-Signature", convo.SignTalkJSWebhook("sk_other", ts, body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 12081 wrote: Where is my order?
	// 200
	// 401 {"error":"invalid signature"}
}

func ExampleWithInbox() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := convo.NewMemoryInbox(convo.WithInboxBackoff(time.Millisecond, time.Millisecond), convo.WithInboxLogger(quiet))
	done := make(chan struct{})
	h := convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
		d, _ := convo.DeliveryFromContext(ctx)
		fmt.Printf("run %d: to chat %s: %s\n", d.Attempt, ev.ExternalChatID, ev.MessageText)
		if d.Attempt == 1 {
			return errors.New("talkjs: 503") // run again after the backoff
		}
		close(done)
		return nil
	}, convo.WithInbox(in), convo.WithHandlerLogger(quiet))

	body := `{"wh_type":"all_messages","message_type":"bot","message_id":"1731336491876x58","external_chat_id":"123456789","message_text":"Hello!"}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks/selarti", strings.NewReader(body)))
	fmt.Println("answered", rec.Code) // once kept, before any run

	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- in.Run(ctx) }() // in a program: for as long as it serves
	<-done
	cancel()
	fmt.Println("run ended:", <-ran)
	// Output:
	// answered 200
	// run 1: to chat 123456789: Hello!
	// run 2: to chat 123456789: Hello!
	// run ended: <nil>
}
