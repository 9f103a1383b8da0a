package convotest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// A test points its code at the fake, injects a fault, and checks what the
// fake received and stored.
func Example() {
	srv := convotest.NewServer()
	defer srv.Close()

	// The first send fails before the fake acts on it.
	srv.Inject(convotest.Fault{Method: "POST", Path: "/v1/*", Status: http.StatusServiceUnavailable})

	send := func(method, path, body string) int {
		req, _ := http.NewRequest(method, srv.URL+"/v1/"+srv.AppID()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.SecretKey())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println(send("PUT", "/users/8029", `{"name": "Bob"}`))
	fmt.Println(send("PUT", "/conversations/order_391_fc", `{"participants": ["8029"]}`))
	msg := `[{"text": "Hello Alice!", "sender": "8029", "type": "UserMessage", "idempotencyKey": "k1"}]`
	fmt.Println(send("POST", "/conversations/order_391_fc/messages", msg))
	fmt.Println(send("POST", "/conversations/order_391_fc/messages", msg))
	fmt.Println(send("POST", "/conversations/order_391_fc/messages", msg))

	fmt.Println(len(srv.Messages("order_391_fc")), "message stored")
	fmt.Println(srv.RequestCount("POST", "/v1/"+srv.AppID()+"/conversations/order_391_fc/messages"), "sends received")
	// Output:
	// 200
	// 200
	// 503
	// 200
	// 200
	// 1 message stored
	// 3 sends received
}

// notifyShipped stands for the code under test: it takes a *convo.Client.
func notifyShipped(ctx context.Context, c *convo.Client, order string) error {
	_, err := c.Conversations.SendMessages(ctx, "order_"+order, convo.SystemMessage("Order #"+order+" shipped"))
	return err
}

// A test gives its code a client wired to the fake, then checks what the
// fake stored. Here the server fails twice, once after storing the
// message: the client retries, and the idempotency key keeps the message
// from being stored twice.
func ExampleServer_Client() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client() // fast retries: waits of 1 to 10 ms
	ctx := context.Background()
	_ = c.Conversations.Upsert(ctx, "order_391", convo.ConversationUpdate{Subject: "Order #391"})

	srv.Inject(
		convotest.Fault{Method: "POST", Path: "/v1/*", Status: http.StatusServiceUnavailable},
		convotest.Fault{Method: "POST", Path: "/v1/*", Status: http.StatusBadGateway, AfterApply: true},
	)
	err := notifyShipped(ctx, c, "391")

	fmt.Println("error:", err)
	for _, m := range srv.Messages("order_391") {
		fmt.Println(m.Type, m.Text)
	}
	st := srv.Stats()
	fmt.Println(st.TalkJSMessages, "stored,", st.TalkJSReplays, "replay dropped,", st.FaultsApplied, "faults")
	// Output:
	// error: <nil>
	// SystemMessage Order #391 shipped
	// 1 stored, 1 replay dropped, 2 faults
}

// DeliverSelarti posts an "All messages" webhook to a handler, as Selarti
// does.
func ExampleServer_DeliverSelarti() {
	srv := convotest.NewServer()
	defer srv.Close()

	got := make(chan string, 1)
	hooks := httptest.NewServer(convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
		got <- string(ev.MessageType) + " to chat " + ev.ExternalChatID + ": " + ev.MessageText
		return nil
	}))
	defer hooks.Close()

	resp, err := srv.DeliverSelarti(context.Background(), hooks.URL, convo.SelartiEvent{
		Type:           convo.SelartiAllMessages,
		MessageID:      "1731336491876x582725124419040400",
		MessageType:    convo.AuthorBot,
		ExternalChatID: "123456789",
		MessageText:    "Your order has shipped.",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode)
	fmt.Println(<-got)
	// Output:
	// 200
	// bot to chat 123456789: Your order has shipped.
}
