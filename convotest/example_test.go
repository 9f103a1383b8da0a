package convotest_test

import (
	"fmt"
	"net/http"
	"strings"

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
