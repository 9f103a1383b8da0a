package convo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/convokit/convo"
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
