// Command quickstart runs the whole convo flow once and prints each step:
//
//  1. TalkJS: sync two users, create a conversation, send a message (the
//     "start a conversation" guide);
//  2. Talqui: start a WhatsApp API Official session with an approved model;
//  3. Selarti: receive the "All messages" webhook on a local handler and
//     relay the bot's reply into the TalkJS conversation;
//  4. TalkJS: list the conversation's messages.
//
// With no credentials in the environment it runs offline, on a convotest
// fake started in-process. With TALQUI_TENANT, TALQUI_CONNECTION_ID,
// TALQUI_TOKEN, TALKJS_APP_ID and TALKJS_SECRET_KEY all set it talks to the
// real APIs; the WhatsApp session is then started only when
// QUICKSTART_PHONE names a phone you own. The Selarti webhook is always
// delivered locally, since Selarti calls a URL you register in its panel.
//
//	go run ./examples/quickstart
package main

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// credentialVars must all be set to use the real APIs, or none for offline.
var credentialVars = []string{"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN", "TALKJS_APP_ID", "TALKJS_SECRET_KEY"}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := run(ctx, os.Stdout)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart failed:", err)
		os.Exit(1)
	}
}

// run picks the backend from the environment and runs the flow on it.
func run(ctx context.Context, w io.Writer) error {
	b, err := connect()
	if err != nil {
		return err
	}
	defer b.close()
	fmt.Fprintln(w, "convo quickstart:", b.about)
	return quickstart(ctx, w, b.client, b.phone)
}

// backend is where the calls go.
type backend struct {
	client *convo.Client
	about  string // one line for the reader
	phone  string // the contact of the WhatsApp session; "" skips it
	close  func()
}

// connect builds a client on the real APIs when every credential is set,
// or on a convotest fake when none is.
func connect() (backend, error) {
	var missing []string
	for _, k := range credentialVars {
		if os.Getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) == len(credentialVars) {
		srv := convotest.NewServer()
		c, err := srv.Client()
		about := "offline, on a convotest fake at " + srv.URL + " (set the TALQUI_* and TALKJS_* variables for the real APIs)"
		return backend{client: c, about: about, phone: offlinePhone, close: srv.Close}, err
	}
	if len(missing) > 0 {
		return backend{}, fmt.Errorf("set all of %s, or none to run offline; missing %s",
			strings.Join(credentialVars, ", "), strings.Join(missing, ", "))
	}
	c, err := convo.NewClient(
		convo.WithTalqui(os.Getenv("TALQUI_TENANT"), convo.PluginConnection{ID: os.Getenv("TALQUI_CONNECTION_ID"), Token: os.Getenv("TALQUI_TOKEN")}),
		convo.WithTalkJS(os.Getenv("TALKJS_APP_ID"), os.Getenv("TALKJS_SECRET_KEY")),
		convo.WithUserAgent("convo-quickstart"),
	)
	about := "live, on the real Talqui and TalkJS APIs"
	return backend{client: c, about: about, phone: os.Getenv("QUICKSTART_PHONE"), close: func() {}}, err
}

// quickstart runs the flow with c. phone is the WhatsApp contact; "" skips
// the session start.
func quickstart(ctx context.Context, w io.Writer, c *convo.Client, phone string) error {
	if err := startConversation(ctx, w, c); err != nil {
		return err
	}
	if err := startWhatsAppSession(ctx, w, c, phone); err != nil {
		return err
	}
	if err := relaySelartiReply(ctx, w, c); err != nil {
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

// relaySelartiReply serves a Selarti handler locally, lets the bot user
// into the conversation, and delivers three webhooks: the user's own
// message, the bot's reply, and the bot's reply again.
func relaySelartiReply(ctx context.Context, w io.Writer, c *convo.Client) error {
	if err := c.Users.Upsert(ctx, botID, convo.UserUpdate{Name: "Assistant", Role: "bot"}); err != nil {
		return fmt.Errorf("syncing the bot user: %w", err)
	}
	if err := c.Conversations.Join(ctx, convID, botID, convo.Participation{Notify: convo.NotifyOff}); err != nil {
		return fmt.Errorf("adding the bot to %s: %w", convID, err)
	}
	r := &relay{c: c}
	mux := http.NewServeMux()
	mux.Handle("/hooks/selarti", convo.NewSelartiHandler(r.send))
	hooks := httptest.NewServer(mux)
	defer hooks.Close()
	url := hooks.URL + "/hooks/selarti"
	fmt.Fprintf(w, "5. Selarti: webhook handler at %s relays replies as %s\n", url, botID)

	user, bot := selartiEvents()
	deliveries := []struct {
		label, why string
		ev         convo.SelartiEvent
	}{
		{"the user's message", "Selarti echoes it; only bot and operator messages go to the user", user},
		{"the bot's reply", "", bot},
		{"the bot's reply again", "a message_id already handled", bot},
	}
	for _, d := range deliveries {
		before, _ := r.result()
		status, err := postJSON(ctx, url, d.ev)
		if err != nil {
			return fmt.Errorf("delivering %s: %w", d.label, err)
		}
		after, relayErr := r.result()
		if status != http.StatusOK {
			return fmt.Errorf("the Selarti handler answered %d to %s: %v", status, d.label, relayErr)
		}
		relayed, wantRelayed := after > before, d.why == ""
		if relayed != wantRelayed {
			return fmt.Errorf("%s: relayed %v, want %v", d.label, relayed, wantRelayed)
		}
		outcome := "ignored (" + d.why + ")"
		if relayed {
			outcome = "relayed to " + d.ev.ExternalChatID
		}
		fmt.Fprintf(w, "   %-22s %d, %s\n", d.label+":", status, outcome)
	}
	return nil
}

// selartiEvents are the webhooks of the Selarti manual's example, for a
// dialog whose chat_id is the TalkJS conversation id: the user's question
// and the bot's answer.
func selartiEvents() (user, bot convo.SelartiEvent) {
	user = convo.SelartiEvent{
		Type:           convo.SelartiAllMessages,
		ChannelID:      "5q",
		CompanyID:      "1708251850060x460235863640434700",
		Contacts:       "123456789",
		ExternalChatID: convID, // the chat_id we gave Selarti with the user's message
		ManagerID:      "4q",
		MessageID:      "1731336491870x582725124419040399",
		MessageText:    "Where is my order #391?",
		MessageType:    convo.AuthorUser,
		TaskID:         "1721129985149x478019552540622850",
		ThreadID:       "1731336491572x316716105037601100",
		Title:          "Alice",
	}
	bot = user
	bot.MessageID = "1731336491876x582725124419040400"
	bot.MessageText = "Hi Alice! Order #391 left our warehouse today and should arrive on Friday."
	bot.MessageType = convo.AuthorBot
	return user, bot
}

// relay sends Selarti replies into the TalkJS conversation named by the
// event's external_chat_id, as the bot user.
type relay struct {
	c *convo.Client

	mu  sync.Mutex
	n   int   // messages relayed
	err error // the last failure
}

func (r *relay) send(ctx context.Context, ev *convo.SelartiEvent) error {
	m := convo.UserMessage(botID, ev.MessageText)
	// Keyed on Selarti's message id, a redelivery that the handler's
	// in-memory dedup missed (say after a restart) is dropped by TalkJS.
	m.IdempotencyKey = "selarti-" + ev.MessageID
	m.Custom = map[string]string{"selartiAuthor": string(ev.MessageType)}
	_, err := r.c.Conversations.SendMessages(ctx, ev.ExternalChatID, m)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.err = err
		return err
	}
	r.n++
	return nil
}

func (r *relay) result() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.err
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
