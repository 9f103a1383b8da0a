package convo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// Every example runs on a convotest fake: srv.Client() is a *convo.Client
// wired to it. Your code builds its client with NewClient, as below.

func ExampleNewClient() {
	srv := convotest.NewServer()
	defer srv.Close()

	c, err := convo.NewClient(
		convo.WithTalqui(convotest.DefaultTenantID, convo.PluginConnection{
			ID: convotest.DefaultConnectionID, Token: convotest.DefaultConnectionToken,
		}),
		convo.WithTalkJS(convotest.DefaultAppID, convotest.DefaultSecretKey),
		// The base URLs default to the real APIs.
		convo.WithTalquiURL(srv.URL),
		convo.WithTalkJSURL(srv.URL),
		convo.WithUserAgent("my-app/1.2"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.Users.Upsert(context.Background(), "12081", convo.UserUpdate{Name: "Alice"})
	fmt.Println("upsert:", err)

	// An option with bad input makes NewClient fail.
	_, err = convo.NewClient(convo.WithTalkJS("app-id", "sk_test_secret"), convo.WithTalkJSURL("http://api.example.com"))
	fmt.Println(err)

	// A provider that was not configured answers ErrNotConfigured and sends
	// nothing.
	talkJSOnly, _ := convo.NewClient(convo.WithTalkJS("app-id", "sk_test_secret"))
	_, err = talkJSOnly.Sessions.Start(context.Background(), convo.WhatsAppBusiness{Phone: "+55 27 99999-9999", Text: "Hi"})
	fmt.Println(errors.Is(err, convo.ErrNotConfigured))
	// Output:
	// upsert: <nil>
	// convo: validation failed: talkjsURL: plain http is allowed only to a loopback host
	// true
}

func ExampleSessionsService_Start() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()

	started, err := c.Sessions.Start(context.Background(), convo.WhatsAppOfficial{
		Phone:     "+55 27 99999-9999",
		Name:      "Maria",
		ModelID:   "order_update", // a model Meta approved
		Variables: []string{"Maria", "#391"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(started.Session.SessionChannel, started.Session.SessionKind)
	fmt.Println(started.Contact.ContactFullName, started.Contact.ContactExternalID)
	fmt.Println(started.Message.MessageValue)
	fmt.Println(srv.Stats().TalquiSessions, "session opened")
	// Output:
	// urn:talqui:whatsapp-cloud:0 marketing
	// Maria 5527999999999
	// order_update
	// 1 session opened
}

// A session start that fails after it may have reached Talqui is not
// retried, since a second try could message the contact twice: its error
// matches ErrOutcomeUnknown. Here the fake opens the session, then answers
// 503, so the contact did get the message.
func ExampleSessionsService_Start_outcomeUnknown() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()
	srv.Inject(convotest.Fault{Method: http.MethodPost, Path: "/tenants/*", Status: http.StatusServiceUnavailable, AfterApply: true})

	_, err := c.Sessions.Start(context.Background(), convo.WhatsAppBusiness{
		Phone: "+55 27 99999-9999", Text: "Your order #391 has shipped.",
	})
	var apiErr *convo.APIError
	switch {
	case errors.Is(err, convo.ErrOutcomeUnknown):
		// Do not start it again blindly: find out first (your records, the
		// Talqui panel) whether the contact got the message.
		errors.As(err, &apiErr)
		fmt.Println("outcome unknown after", apiErr.Attempts, "attempt, status", apiErr.StatusCode)
	case errors.Is(err, convo.ErrBadResponse):
		fmt.Println("started, but the answer could not be read") // do not start it again
	case err != nil:
		fmt.Println("not started:", err) // Talqui did not act on it
	}
	fmt.Println(srv.Stats().TalquiSessions, "session opened")
	// Output:
	// outcome unknown after 1 attempt, status 503
	// 1 session opened
}

func ExampleValidationError() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()

	// WhatsApp API Official without a model, and a phone too short.
	_, err := c.Sessions.Start(context.Background(), convo.WhatsAppOfficial{Phone: "+55 9999", Name: "Maria"})
	fmt.Println(errors.Is(err, convo.ErrValidation))
	var ve *convo.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Println(p.Field+":", p.Reason)
		}
	}
	fmt.Println(len(srv.Requests()), "requests sent")
	// Output:
	// true
	// Phone: must have 8 to 15 digits, has 6
	// ModelID: required: WhatsApp API Official opens a conversation only with an approved model
	// 0 requests sent
}

func ExampleUsersService_Upsert() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()
	ctx := context.Background()

	err := c.Users.Upsert(ctx, "12081", convo.UserUpdate{
		Name:           "Alice",
		Email:          []string{"alice@example.com"},
		WelcomeMessage: "Hey there! :-)",
		Role:           "buyer",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// An update sends only the fields it sets; Clear erases fields.
	err = c.Users.Upsert(ctx, "12081", convo.UserUpdate{Locale: "pt-BR", Clear: []string{"welcomeMessage"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	u, err := c.Users.Get(ctx, "12081")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u.Name, u.Email, u.Role, u.Locale)
	fmt.Printf("welcome message: %q\n", u.WelcomeMessage)
	// Output:
	// Alice [alice@example.com] buyer pt-BR
	// welcome message: ""
}

func ExampleConversationsService_SendMessages() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()
	ctx := context.Background()
	_ = c.Users.Upsert(ctx, "12081", convo.UserUpdate{Name: "Alice"})
	_ = c.Users.Upsert(ctx, "8029", convo.UserUpdate{Name: "Bob"})
	_ = c.Conversations.Upsert(ctx, "order_391_fc", convo.ConversationUpdate{Participants: []string{"12081", "8029"}})

	ids, err := c.Conversations.SendMessages(ctx, "order_391_fc",
		convo.UserMessage("8029", "Hello Alice!"),
		convo.SystemMessage("Order #391 shipped"),
	)
	fmt.Println(len(ids), "ids,", err)
	for _, m := range srv.Messages("order_391_fc") {
		fmt.Println(m.Type, m.Text)
	}

	// A user message needs a sender: refused, nothing sent.
	_, err = c.Conversations.SendMessages(ctx, "order_391_fc", convo.UserMessage("", "Hi"))
	fmt.Println(err)
	// Output:
	// 2 ids, <nil>
	// UserMessage Hello Alice!
	// SystemMessage Order #391 shipped
	// convo: validation failed: msgs[0].Sender: a user message needs a sender
}

func ExampleConversationsService_Messages() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()
	ctx := context.Background()
	_ = c.Users.Upsert(ctx, "8029", convo.UserUpdate{Name: "Bob"})
	_ = c.Conversations.Upsert(ctx, "order_391_fc", convo.ConversationUpdate{Participants: []string{"8029"}})
	var msgs []convo.OutgoingMessage
	for i := 1; i <= 25; i++ {
		msgs = append(msgs, convo.UserMessage("8029", fmt.Sprintf("update %d", i)))
	}
	_, _ = c.Conversations.SendMessages(ctx, "order_391_fc", msgs...) // 3 requests of at most 10

	// The list is lazy: it fetches a page of Limit messages when the loop
	// needs more, newest first, and stops after a short page.
	n, newest := 0, ""
	for m, err := range c.Conversations.Messages(ctx, "order_391_fc", &convo.ListOptions{Limit: 10}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		if n == 0 {
			newest = m.Text
		}
		n++
	}
	pages := srv.RequestCount("GET", "/v1/"+srv.AppID()+"/conversations/order_391_fc/messages")
	fmt.Println(n, "messages in", pages, "pages; newest:", newest)
	// Output:
	// 25 messages in 3 pages; newest: update 25
}

func ExampleConversationsService_Open() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()
	ctx := context.Background()

	// TalkJS's "start a conversation" in one call: users, conversation,
	// first message.
	open := convo.OpenConversation{
		Users: map[string]convo.UserUpdate{
			"12081": {Name: "Alice", Email: []string{"alice@example.com"}, Role: "buyer"},
			"8029":  {Name: "Bob"},
		},
		Conversation: convo.ConversationUpdate{
			Subject: "What a lovely day!",
			Custom:  map[string]string{"category": "order_inquiry"},
		},
		Messages: []convo.OutgoingMessage{convo.UserMessage("8029", "Hello Alice!")},
	}
	first, err := c.Conversations.Open(ctx, "order_391_fc", open)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Every step is idempotent: after a failure, call Open again. The
	// message is not sent twice.
	again, err := c.Conversations.Open(ctx, "order_391_fc", open)
	fmt.Println(err, first[0] == again[0])
	conv, _ := srv.Conversation("order_391_fc")
	fmt.Println(len(conv.Participants), "participants,", len(srv.Messages("order_391_fc")), "message")
	// Output:
	// <nil> true
	// 2 participants, 1 message
}

func ExampleAPIError() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client() // retries with waits of at most 10 ms
	ctx := context.Background()

	_, err := c.Conversations.Get(ctx, "no_such_conversation")
	var apiErr *convo.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Provider, apiErr.StatusCode, errors.Is(err, convo.ErrNotFound))
	}

	// A 429 is retried, honouring Retry-After up to the policy's MaxWait;
	// past it, the error comes back at once with the server's RetryAfter.
	srv.Inject(convotest.Fault{Path: "/v1/*", Status: http.StatusTooManyRequests, RetryAfter: "120"})
	_, err = c.Users.Get(ctx, "12081")
	if errors.As(err, &apiErr) {
		fmt.Println(errors.Is(err, convo.ErrRateLimited), apiErr.RetryAfter, apiErr.Attempts)
	}
	// Output:
	// talkjs 404 true
	// true 2m0s 1
}

func ExampleWithObserver() {
	srv := convotest.NewServer()
	defer srv.Close()

	// One line per call: operation, path template, attempts, status and
	// outcome. A metrics library would count them instead.
	obs := convo.Observer{
		CallDone: func(ctx context.Context, r convo.CallResult) {
			fmt.Println(r.Call.Operation, r.Call.Method, r.Call.PathTemplate, r.Attempts, r.Status, r.Outcome)
		},
	}
	c, _ := srv.Client(convo.WithObserver(obs))
	ctx := context.Background()

	_ = c.Users.Upsert(ctx, "12081", convo.UserUpdate{Name: "Alice"})
	_, _ = c.Users.Get(ctx, "no-such-user")
	_, _ = c.Conversations.SendMessages(ctx, "order_391_fc") // no message: refused, nothing sent
	// Output:
	// talkjs.users.upsert PUT /v1/{appID}/users/{userID} 1 200 ok
	// talkjs.users.get GET /v1/{appID}/users/{userID} 1 404 not_found
	// talkjs.conversations.send_messages POST /v1/{appID}/conversations/{conversationID}/messages 0 0 validation
}

// The loop of Selarti's external-messenger integration: a person's message
// goes to the AI with your chat id, and the AI's answer comes back to your
// "All messages" webhook with that chat id.
func ExampleSelartiService_Send() {
	srv := convotest.NewServer() // its AI answers "AI: you said <text>"
	defer srv.Close()

	answers := make(chan *convo.SelartiEvent, 1)
	hooks := httptest.NewServer(convo.NewSelartiHandler(func(_ context.Context, ev *convo.SelartiEvent) error {
		answers <- ev
		return nil
	}))
	defer hooks.Close()
	srv.SetSelartiWebhook(hooks.URL) // in Selarti's panel: Integrations, "All messages"

	c, _ := srv.Client() // your code: convo.NewClient(convo.WithSelarti(apiKey))
	ctx := context.Background()
	res, err := c.Selarti.Send(ctx, convo.SelartiMessage{
		TaskID: convotest.DefaultSelartiTaskID, // the task of type Web whose AI answers
		ChatID: "tg-123456789",                 // your id of the person's chat
		Text:   "Where is my order?",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sent; the workflow answered", string(res.Response))
	ev := <-answers
	fmt.Printf("%s answer for %s: %s\n", ev.MessageType, ev.ExternalChatID, ev.MessageText)

	// Nothing is sent, not even the token exchange, when a field is
	// missing.
	_, err = c.Selarti.Send(ctx, convo.SelartiMessage{ChatID: "tg-123456789"})
	fmt.Println(err)
	// Output:
	// sent; the workflow answered {}
	// bot answer for tg-123456789: AI: you said Where is my order?
	// convo: validation failed: TaskID: required; Text: required
}

func ExampleConversationsService_EditMessage() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()
	ctx := context.Background()
	_ = c.Users.Upsert(ctx, "support-bot", convo.UserUpdate{Name: "Support"})
	_ = c.Conversations.Upsert(ctx, "order_391_fc", convo.ConversationUpdate{Participants: []string{"support-bot"}})

	// An AI "typing…" placeholder, replaced by the answer once it is ready.
	typing := convo.UserMessage("support-bot", "_Let me think..._")
	typing.Custom = map[string]string{"isTyping": "true"}
	ids, _ := c.Conversations.SendMessages(ctx, "order_391_fc", typing)
	err := c.Conversations.EditMessage(ctx, "order_391_fc", ids[0], convo.MessageEdit{
		Text:   "Your order ships today.",
		Custom: map[string]string{"isTyping": "false"},
	})
	fmt.Println("edit:", err)
	m, _ := c.Conversations.Message(ctx, "order_391_fc", ids[0])
	fmt.Println(m.Text, m.Custom["isTyping"], m.EditedAt.IsZero())

	// An edit must change something: refused, nothing sent.
	err = c.Conversations.EditMessage(ctx, "order_391_fc", ids[0], convo.MessageEdit{})
	fmt.Println(err)
	// Output:
	// edit: <nil>
	// Your order ships today. false false
	// convo: validation failed: e: nothing to edit: set Text or Custom, or name custom in Clear
}

func ExampleConversationsService_ImportMessages() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client()
	ctx := context.Background()
	_ = c.Users.Upsert(ctx, "12081", convo.UserUpdate{Name: "Alice"})
	_ = c.Users.Upsert(ctx, "8029", convo.UserUpdate{Name: "Bob"})
	_ = c.Conversations.Upsert(ctx, "order_391_fc", convo.ConversationUpdate{Participants: []string{"12081", "8029"}})

	// History from another chat system, with its original times.
	t0 := time.Date(2021, 3, 1, 9, 0, 0, 0, time.UTC)
	history := []convo.ImportMessage{
		{Sender: "12081", Text: "Where is my order?", Timestamp: t0, ReadBy: []string{"8029"}},
		{Sender: "8029", Text: "It left the warehouse this morning.", Timestamp: t0.Add(5 * time.Minute)},
	}
	err := c.Conversations.ImportMessages(ctx, "order_391_fc", history...)
	fmt.Println("import:", err)
	for _, m := range srv.Messages("order_391_fc") {
		fmt.Println(m.Origin, time.UnixMilli(m.CreatedAt).UTC().Format(time.Kitchen), *m.SenderID, m.Text)
	}

	// A failed request is never repeated (TalkJS would store its messages
	// twice); the error says which messages went in.
	srv.Inject(convotest.Fault{Method: "POST", Path: "/v1/*", Status: 503, AfterApply: true})
	err = c.Conversations.ImportMessages(ctx, "order_391_fc", history...)
	var ie *convo.ImportError
	fmt.Println(errors.As(err, &ie), ie.Imported, ie.Failed, errors.Is(err, convo.ErrOutcomeUnknown))
	// Output:
	// import: <nil>
	// import 9:00AM 12081 Where is my order?
	// import 9:05AM 8029 It left the warehouse this morning.
	// true 0 2 true
}

func ExampleWithTalkJSTokenAuth() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, _ := srv.Client(convo.WithTalkJSTokenAuth())

	err := c.Users.Upsert(context.Background(), "12081", convo.UserUpdate{Name: "Alice"})
	fmt.Println("upsert:", err)
	auth := srv.Requests()[0].Header.Get("Authorization")
	fmt.Println(strings.HasPrefix(auth, "Bearer ey"), strings.Contains(auth, srv.SecretKey()))
	// Output:
	// upsert: <nil>
	// true false
}

// Raw sends what convo does not wrap, with everything a wrapped call gets.
// Here, TalkJS's file upload, shaped as TalkJS's own example sends it: a
// multipart form with the file and its name, POST /v1/{appId}/files,
// answered with the attachment token a message then carries.
func ExampleClient_Raw() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = c.Users.Upsert(ctx, "alice", convo.UserUpdate{Name: "Alice"})
	_ = c.Conversations.Upsert(ctx, "order_391", convo.ConversationUpdate{Participants: []string{"alice"}})

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "receipt.txt")
	_, _ = fw.Write([]byte("Order #391: 2 x boots, 89.90 BRL"))
	_ = mw.WriteField("filename", "Receipt #391")
	_ = mw.Close()

	var up struct {
		AttachmentToken string `json:"attachmentToken"`
	}
	err = c.Raw(ctx, convo.RawRequest{
		Provider:    convo.ProviderTalkJS,
		Method:      http.MethodPost,
		Path:        "/files", // below /v1/{appId}
		Body:        bytes.NewReader(form.Bytes()),
		ContentType: mw.FormDataContentType(),
		Repeatable:  true, // a second upload stores a second copy, which harms nothing
	}, &up)
	if err != nil {
		fmt.Println("upload failed:", err)
		return
	}

	m := convo.UserMessage("alice", "Your receipt")
	m.AttachmentToken = up.AttachmentToken
	ids, err := c.Conversations.SendMessages(ctx, "order_391", m)
	if err != nil {
		fmt.Println("send failed:", err)
		return
	}
	fmt.Println("uploaded:", srv.Files()[up.AttachmentToken].Filename)
	fmt.Println("messages with the file:", len(ids))

	// A path outside the API prefix is refused before anything is sent.
	err = c.Raw(ctx, convo.RawRequest{Provider: convo.ProviderTalkJS, Method: http.MethodGet, Path: "/../other-app/users"}, nil)
	fmt.Println(err)
	// Output:
	// uploaded: Receipt #391
	// messages with the file: 1
	// convo: validation failed: Path: must not hold a "." or ".." segment, escaped or not: it would leave the API prefix
}

// A phone number without '+' or "00" is read as international only when it
// is valid as such: a Brazilian mobile written without +55 is refused,
// never sent to +27, South Africa. NormalizePhoneIn reads it as a client
// made with WithDefaultCountry("BR") does.
func ExampleNormalizePhoneIn() {
	for _, phone := range []string{"+55 (27) 99999-9999", "0055 27 99999-9999", "5527999999999", "27 99999-9999"} {
		intl, err := convo.NormalizePhone(phone)
		br, _ := convo.NormalizePhoneIn(phone, "BR")
		fmt.Printf("%-20s %-14s %s\n", phone, intl, br)
		if err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// +55 (27) 99999-9999  5527999999999  5527999999999
	// 0055 27 99999-9999   5527999999999  5527999999999
	// 5527999999999        5527999999999  5527999999999
	// 27 99999-9999        27999999999    5527999999999
	// convo: validation failed: phone: is not a valid international number (read with country code +27, ZA, by libphonenumber's metadata): write it with '+' and its country code, or read national numbers with the client option WithDefaultCountry
}

// WithDefaultCountry makes a session start read a national number as one of
// the country's: "27 99999-9999" is sent as Brazil's 5527999999999.
func ExampleWithDefaultCountry() {
	srv := convotest.NewServer()
	defer srv.Close()
	c, err := srv.Client(convo.WithDefaultCountry("BR")) // or NewClient(WithTalqui(…), WithDefaultCountry("BR"))
	if err != nil {
		fmt.Println(err)
		return
	}
	started, err := c.Sessions.Start(context.Background(), convo.WhatsAppBusiness{Phone: "27 99999-9999", Text: "Your order #391 has shipped."})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(started.Contact.ContactExternalID)
	// Output:
	// 5527999999999
}
