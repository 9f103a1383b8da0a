// Command quickstart runs the whole convo flow once and prints each step:
//
//  1. TalkJS: sync two users, create a conversation, send a message (the
//     "start a conversation" guide);
//  2. Talqui: start a WhatsApp API Official session with an approved model;
//  3. Selarti: the customer's question goes to Selarti's AI with the
//     conversation id as chat_id; the AI's answer arrives at a local
//     NewSelartiHandler ("All messages" webhook), which posts it into the
//     TalkJS conversation;
//  4. TalkJS: list the conversation's messages.
//
// By default it runs offline, on a convotest fake started in-process, whose
// Selarti AI answers by webhook, whatever the environment holds. With -live
// it calls the hosts that convo.WithEnv configures from the environment
// (TALKJS_APP_ID and TALKJS_SECRET_KEY at least; TALQUI_*, SELARTI_* and
// each *_URL as set): the real APIs, or the fake of "convo fake" when its
// variables are exported. The WhatsApp session is then started only when
// Talqui is configured and QUICKSTART_PHONE names a phone you own, and the
// question goes to Selarti only when Selarti is configured and
// SELARTI_TASK_ID is set (its answer then goes to the webhook URL
// registered in Selarti's panel, not to this program: see
// examples/selarti-bridge). Its first line says which hosts it calls.
//
//	go run ./examples/quickstart [-live]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// The ids of the TalkJS guide, and the bot user that relays Selarti.
const (
	aliceID      = "12081"
	bobID        = "8029"
	convID       = "order_391_fc"
	botID        = "selarti-bot"
	offlinePhone = "+55 27 99999-9999"
	question     = "Where is my order #391?"
	// offlineAnswer is what the offline fake's AI answers, a stand-in for
	// the AI you configure in Selarti's panel.
	offlineAnswer = "Hi Alice! Order #391 left our warehouse today and should arrive on Friday."
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain is main with its arguments and outputs: -h prints the usage to
// stdout and gives 0 before anything is started or dialled.
func realMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	live := fs.Bool("live", false, "call the hosts the environment configures (TALKJS_*, TALQUI_*, SELARTI_*: see convo.WithEnv)\ninstead of an in-process convotest fake")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: quickstart [-live]\n\nRuns the convo flow once, offline on an in-process convotest fake unless -live.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		if err == nil {
			err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		fmt.Fprintln(stderr, "quickstart:", err)
		fs.SetOutput(stderr)
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, stdout, *live); err != nil {
		fmt.Fprintln(stderr, "quickstart failed:", err)
		return 1
	}
	return 0
}

// run picks the backend (-live or not) and runs the flow on it. Its first
// line says which hosts it calls.
func run(ctx context.Context, w io.Writer, live bool) error {
	b, err := connect(live)
	if err != nil {
		return err
	}
	defer b.close()
	fmt.Fprintln(w, "convo quickstart:", b.about)
	return quickstart(ctx, w, b)
}

// backend is where the calls go.
type backend struct {
	client *convo.Client
	about  string // the first line: which hosts are called
	phone  string // the contact of the WhatsApp session; "" skips it
	task   string // the Selarti task whose AI answers; "" skips Selarti
	fake   *convotest.Server
	close  func()
}

// offlineBackend is a convotest fake with its client.
func offlineBackend() (backend, error) {
	srv := convotest.NewServer(convotest.WithSelartiAI(func(context.Context, convotest.SelartiMessage) string {
		return offlineAnswer
	}))
	c, err := srv.Client()
	about := "offline: calls only a convotest fake in this process, at " + srv.URL + " (-live calls the hosts the environment configures)"
	return backend{client: c, about: about, phone: offlinePhone, task: srv.SelartiTaskID(), fake: srv, close: srv.Close}, err
}

// connect builds a client on an in-process fake, or with live on what the
// environment configures (convo.WithEnv).
func connect(live bool) (backend, error) {
	if !live {
		return offlineBackend()
	}
	c, err := convo.NewClient(convo.WithEnv(), convo.WithUserAgent("convo-quickstart"))
	if err != nil {
		return backend{}, fmt.Errorf("-live: %w", err)
	}
	if c.BaseURL(convo.ProviderTalkJS) == "" {
		return backend{}, fmt.Errorf("-live needs TalkJS: set TALKJS_APP_ID and TALKJS_SECRET_KEY")
	}
	b := backend{client: c, about: "live: calls " + hosts(c), close: c.CloseIdleConnections}
	if c.BaseURL(convo.ProviderTalqui) != "" {
		b.phone = os.Getenv("QUICKSTART_PHONE")
	}
	if c.BaseURL(convo.ProviderSelarti) != "" {
		b.task = os.Getenv("SELARTI_TASK_ID")
	}
	return b, nil
}

// hosts names the base URL of each provider c is configured for.
func hosts(c *convo.Client) string {
	var parts []string
	for _, p := range []convo.Provider{convo.ProviderTalqui, convo.ProviderTalkJS, convo.ProviderSelarti} {
		if u := c.BaseURL(p); u != "" {
			parts = append(parts, string(p)+" "+u)
		}
	}
	return strings.Join(parts, ", ")
}

// quickstart runs the flow on b.
func quickstart(ctx context.Context, w io.Writer, b backend) error {
	c := b.client
	if err := startConversation(ctx, w, c); err != nil {
		return err
	}
	if err := startWhatsAppSession(ctx, w, c, b.phone); err != nil {
		return err
	}
	if err := askSelarti(ctx, w, b); err != nil {
		return err
	}
	return listMessages(ctx, w, c)
}

// startConversation follows TalkJS's guide: sync the users, create the
// conversation, send the first message.
func startConversation(ctx context.Context, w io.Writer, c *convo.Client) error {
	users := []struct {
		id string
		u  convo.UserUpdate
	}{
		{aliceID, convo.UserUpdate{Name: "Alice", Email: []string{"alice@example.com"}, PhotoURL: "https://yoursite.com/userpictures/12081.png", WelcomeMessage: "Hey there! :-)", Role: "buyer"}},
		{bobID, convo.UserUpdate{Name: "Bob", Email: []string{"bob@example.com"}, Role: "seller"}},
	}
	for _, u := range users {
		if err := c.Users.Upsert(ctx, u.id, u.u); err != nil {
			return fmt.Errorf("syncing user %s: %w", u.id, err)
		}
	}
	fmt.Fprintf(w, "1. TalkJS: synced users %s (Alice) and %s (Bob)\n", aliceID, bobID)

	err := c.Conversations.Upsert(ctx, convID, convo.ConversationUpdate{
		Participants: []string{aliceID, bobID},
		Subject:      "Order #391",
		Custom:       map[string]string{"category": "order_inquiry"},
	})
	if err != nil {
		return fmt.Errorf("creating conversation %s: %w", convID, err)
	}
	fmt.Fprintf(w, "2. TalkJS: created conversation %s with subject %q\n", convID, "Order #391")

	ids, err := c.Conversations.SendMessages(ctx, convID, convo.UserMessage(bobID, "Hello Alice!"))
	if err != nil {
		return fmt.Errorf("sending the first message: %w", err)
	}
	fmt.Fprintf(w, "3. TalkJS: %s sent %q (message %s)\n", bobID, "Hello Alice!", ids[0])
	return nil
}

// startWhatsAppSession opens a WhatsApp API Official session with the
// approved model "order_update".
func startWhatsAppSession(ctx context.Context, w io.Writer, c *convo.Client, phone string) error {
	if phone == "" {
		fmt.Fprintln(w, "4. Talqui: skipped: set QUICKSTART_PHONE to a phone you own to receive the order_update model")
		return nil
	}
	started, err := c.Sessions.Start(ctx, convo.WhatsAppOfficial{
		Phone: phone, Name: "Maria", ModelID: "order_update", Variables: []string{"Maria", "#391"},
	})
	if err != nil {
		return fmt.Errorf("starting the WhatsApp session: %w", err)
	}
	contact, session := "?", "?" // a part Talqui sent in an unexpected shape is nil; Raw has it
	if started.Contact != nil {
		contact = started.Contact.ContactID
	}
	if started.Session != nil {
		session = started.Session.SessionID
	}
	fmt.Fprintf(w, "4. Talqui: WhatsApp Official session started with model order_update\n   contact %s, session %s\n", contact, session)
	return nil
}

// askSelarti closes Selarti's loop: Alice's question is posted in the
// conversation and sent to Selarti's AI with the conversation id as
// chat_id; the AI's answer comes to a local Selarti handler, which posts it
// into the conversation as the bot user. The answer is then delivered
// again, as a webhook may be, and the handler drops it.
func askSelarti(ctx context.Context, w io.Writer, b backend) error {
	c := b.client
	if _, err := c.Conversations.SendMessages(ctx, convID, convo.UserMessage(aliceID, question)); err != nil {
		return fmt.Errorf("posting Alice's question: %w", err)
	}
	if b.task == "" {
		fmt.Fprintln(w, "5. Selarti: skipped: set SELARTI_API_KEY and SELARTI_TASK_ID to ask Selarti's AI")
		return nil
	}
	if err := c.Users.Upsert(ctx, botID, convo.UserUpdate{Name: "Assistant", Role: "bot"}); err != nil {
		return fmt.Errorf("syncing the bot user: %w", err)
	}
	if err := c.Conversations.Join(ctx, convID, botID, convo.Participation{Notify: convo.NotifyOff}); err != nil {
		return fmt.Errorf("adding the bot to %s: %w", convID, err)
	}
	r := &relay{c: c, relayed: make(chan *convo.SelartiEvent, 4)}
	mux := http.NewServeMux()
	mux.Handle("/hooks/selarti", convo.NewSelartiHandler(r.send))
	hooks := httptest.NewServer(mux)
	defer hooks.Close()
	url := hooks.URL + "/hooks/selarti"
	if b.fake != nil {
		b.fake.SetSelartiWebhook(url) // in Selarti's panel: Integrations, "All messages"
	}

	if _, err := c.Selarti.Send(ctx, convo.SelartiMessage{TaskID: b.task, ChatID: convID, Text: question}); err != nil {
		return fmt.Errorf("sending the question to Selarti: %w", err)
	}
	fmt.Fprintf(w, "5. Selarti: %s asked %q; sent to Selarti's AI with chat_id %s\n", aliceID, question, convID)
	if b.fake == nil {
		fmt.Fprintln(w, `   Selarti posts the answer to the webhook URL of your "All messages" integration`)
		return nil
	}
	var ev *convo.SelartiEvent
	select {
	case ev = <-r.relayed:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the AI's answer: %w (relay: %v)", ctx.Err(), r.err())
	}
	fmt.Fprintf(w, "   the AI's answer, at the handler %s: relayed to %s as %s\n", url, ev.ExternalChatID, botID)
	// The relay has run, but the handler may not have answered Selarti
	// yet; until it has, the id is in progress and a redelivery gets a
	// 409. Wait for the fake's delivery to end, as Selarti's would.
	if err := b.fake.WaitSelartiReplies(ctx); err != nil {
		return fmt.Errorf("waiting for the answer's delivery to end: %w", err)
	}
	status, err := postJSON(ctx, url, ev)
	if err != nil {
		return fmt.Errorf("delivering the answer again: %w", err)
	}
	if status != http.StatusOK || len(r.relayed) != 0 {
		return fmt.Errorf("the answer delivered again: status %d, relayed %d more", status, len(r.relayed))
	}
	fmt.Fprintf(w, "   the same answer again: %d, ignored (a message_id already handled)\n", status)
	return nil
}

// relay sends Selarti's answers into the TalkJS conversation named by the
// event's external_chat_id, as the bot user.
type relay struct {
	c       *convo.Client
	relayed chan *convo.SelartiEvent // each answer relayed

	mu      sync.Mutex
	lastErr error // the last failure
}

func (r *relay) send(ctx context.Context, ev *convo.SelartiEvent) error {
	m := convo.UserMessage(botID, ev.MessageText)
	// Keyed on Selarti's message id, a redelivery that the handler's
	// in-memory dedup missed (say after a restart) is dropped by TalkJS.
	m.IdempotencyKey = "selarti-" + ev.MessageID
	m.Custom = map[string]string{"selartiAuthor": string(ev.MessageType)}
	if _, err := r.c.Conversations.SendMessages(ctx, ev.ExternalChatID, m); err != nil {
		r.mu.Lock()
		r.lastErr = err
		r.mu.Unlock()
		return err
	}
	r.relayed <- ev
	return nil
}

func (r *relay) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// postJSON posts v as JSON, as Selarti posts a webhook, and returns the
// status.
func postJSON(ctx context.Context, url string, v any) (int, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// listMessages prints the conversation's messages with the lazy iterator.
func listMessages(ctx context.Context, w io.Writer, c *convo.Client) error {
	fmt.Fprintf(w, "6. TalkJS: messages in %s, newest first:\n", convID)
	n := 0
	for m, err := range c.Conversations.Messages(ctx, convID, nil) {
		if err != nil {
			return fmt.Errorf("listing messages: %w", err)
		}
		from := m.SenderID
		if from == "" {
			from = "(system)"
		}
		fmt.Fprintf(w, "   %s: %s\n", from, m.Text)
		n++
	}
	fmt.Fprintf(w, "done: %d messages in %s\n", n, convID)
	return nil
}
