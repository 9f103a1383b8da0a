package convo_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/jarcoal/httpmock"

	"github.com/convokit/convo"
)

// The SDK never uses http.DefaultTransport, so httpmock.Activate() does not
// intercept its calls: give the client an http.Client whose transport is a
// mock. A per-test httpmock.NewMockTransport (shown here) keeps tests
// independent; httpmock.ActivateNonDefault(hc) with WithHTTPClient(hc)
// works too, on httpmock's global mock.
//
// Each method's documentation names the success answer it expects;
// SendMessages expects a list of objects with the new ids, one per message.
func Example_httpmock() {
	mt := httpmock.NewMockTransport()
	mt.RegisterResponder(http.MethodPost, "https://api.talkjs.com/v1/app-id/conversations/order_391/messages",
		httpmock.NewStringResponder(http.StatusOK, `[{"id":"msg_1"}]`))

	c, err := convo.NewClient(
		convo.WithTalkJS("app-id", "sk_test_secret"),
		convo.WithHTTPClient(&http.Client{Transport: mt}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ids, err := c.Conversations.SendMessages(context.Background(), "order_391", convo.UserMessage("8029", "Hello Alice!"))
	fmt.Println(ids, err)
	fmt.Println("requests:", mt.GetTotalCallCount())
	// Output:
	// [msg_1] <nil>
	// requests: 1
}

// A Selarti send is two calls on a client's first send: the API key's
// exchange at /wf/auth, whose token is read at response.token, then the
// workflow with that token (see SelartiService.Send).
func Example_httpmockSelarti() {
	mt := httpmock.NewMockTransport()
	mt.RegisterResponder(http.MethodPost, "https://selarti.com/api/1.1/wf/auth",
		httpmock.NewStringResponder(http.StatusOK, `{"status":"success","response":{"token":"tok_1"}}`))
	mt.RegisterResponder(http.MethodPost, "https://selarti.com/api/1.1/wf/send_external_message",
		func(r *http.Request) (*http.Response, error) {
			if r.Header.Get("Authorization") != "Bearer tok_1" {
				return httpmock.NewStringResponse(http.StatusUnauthorized, `{"status":"UNAUTHORIZED"}`), nil
			}
			return httpmock.NewStringResponse(http.StatusOK, `{"status":"success","response":{}}`), nil
		})

	c, err := convo.NewClient(convo.WithSelarti("selarti-api-key"), convo.WithHTTPClient(&http.Client{Transport: mt}))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.Selarti.Send(context.Background(), convo.SelartiMessage{TaskID: "task-1", ChatID: "chat-9", Text: "Where is my order?"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(res.Response))
	fmt.Println("requests:", mt.GetTotalCallCount())
	// Output:
	// {}
	// requests: 2
}
