// Command selarti-bridge receives Selarti's "All messages" webhook and
// delivers the bot's and the operators' replies to the contact. Selarti
// also posts the user's own messages; the handler answers them 200 and
// drops them, as Selarti's manual says.
//
// Where a reply goes depends on BRIDGE_MODE:
//
//   - talkjs (the default): into the TalkJS conversation
//     "selarti_<external_chat_id>", sent by the bot user "selarti-bot"
//     (upserted once at start). Your app adds the contact's own TalkJS user
//     to that conversation, since only it knows who the chat id is.
//   - talqui: as the first message of a Talqui WhatsApp Business session
//     with the phone in Selarti's "contacts" field (see toTalqui).
//
// Environment:
//
//	ADDR                   listen address (default 127.0.0.1:8080)
//	BRIDGE_MODE            talkjs or talqui (default talkjs)
//	SELARTI_SHARED_SECRET  when set, a webhook must carry it: register
//	                       https://your.host/hooks/selarti?secret=<it> in Selarti
//	TALQUI_TENANT, TALQUI_CONNECTION_ID, TALQUI_TOKEN,
//	TALKJS_APP_ID, TALKJS_SECRET_KEY
//	                       all set: the real APIs; none set: a convotest fake
//	                       in-process, so you can try it offline
//
// Try it offline:
//
//	go run ./examples/selarti-bridge &
//	curl -d '{"wh_type":"all_messages","message_type":"bot","message_id":"m1","external_chat_id":"42","message_text":"Hi!"}' \
//	    http://127.0.0.1:8080/hooks/selarti
//
// SIGINT or SIGTERM stops it gracefully: the requests in flight finish.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// The bridge's modes (BRIDGE_MODE).
const (
	modeTalkJS = "talkjs"
	modeTalqui = "talqui"
)

const (
	botID           = "selarti-bot" // the TalkJS user that sends the replies
	shutdownTimeout = 10 * time.Second
)

// credentialVars must all be set to use the real APIs, or none for offline.
var credentialVars = []string{"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN", "TALKJS_APP_ID", "TALKJS_SECRET_KEY"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, log)
	stop()
	if err != nil {
		log.Error("selarti-bridge stopped", "error", err)
		os.Exit(1)
	}
}

// run reads the environment, connects, and serves until ctx is done.
func run(ctx context.Context, log *slog.Logger) error {
	addr := envOr("ADDR", "127.0.0.1:8080")
	mode := envOr("BRIDGE_MODE", modeTalkJS)
	c, closeFake, err := connect(log)
	if err != nil {
		return err
	}
	defer closeFake()
	b, err := newBridge(ctx, c, mode, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info("listening", "url", "http://"+ln.Addr().String()+"/hooks/selarti", "mode", mode)
	return serve(ctx, ln, b.handler(os.Getenv("SELARTI_SHARED_SECRET")), log)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// connect builds a client on the real APIs when every credential is set,
// or on a convotest fake when none is; closeFake stops the fake.
func connect(log *slog.Logger) (c *convo.Client, closeFake func(), err error) {
	var missing []string
	for _, k := range credentialVars {
		if os.Getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	switch len(missing) {
	case len(credentialVars):
		srv := convotest.NewServer()
		log.Info("offline: relaying into a convotest fake", "url", srv.URL)
		c, err := srv.Client()
		return c, srv.Close, err
	case 0:
		c, err := convo.NewClient(
			convo.WithTalqui(os.Getenv("TALQUI_TENANT"), convo.PluginConnection{ID: os.Getenv("TALQUI_CONNECTION_ID"), Token: os.Getenv("TALQUI_TOKEN")}),
			convo.WithTalkJS(os.Getenv("TALKJS_APP_ID"), os.Getenv("TALKJS_SECRET_KEY")),
			convo.WithUserAgent("convo-selarti-bridge"),
		)
		return c, func() {}, err
	default:
		return nil, nil, fmt.Errorf("set all of %s, or none to run offline; missing %s",
			strings.Join(credentialVars, ", "), strings.Join(missing, ", "))
	}
}

// bridge relays Selarti replies with a convo client.
type bridge struct {
	c    *convo.Client
	mode string
	log  *slog.Logger
}

// newBridge checks the mode and, in TalkJS mode, upserts the bot user once.
func newBridge(ctx context.Context, c *convo.Client, mode string, log *slog.Logger) (*bridge, error) {
	switch mode {
	case modeTalkJS:
		if err := c.Users.Upsert(ctx, botID, convo.UserUpdate{Name: "Assistant", Role: "bot"}); err != nil {
			return nil, fmt.Errorf("upserting the bot user: %w", err)
		}
	case modeTalqui:
	default:
		return nil, fmt.Errorf("BRIDGE_MODE must be %q or %q, not %q", modeTalkJS, modeTalqui, mode)
	}
	return &bridge{c: c, mode: mode, log: log}, nil
}

// handler routes /hooks/selarti to the Selarti handler, which calls relay
// once per new bot or operator message.
func (b *bridge) handler(secret string) http.Handler {
	opts := []convo.HandlerOption{convo.WithHandlerLogger(b.log)}
	if secret != "" {
		opts = append(opts, convo.WithSharedSecret(secret))
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/selarti", convo.NewSelartiHandler(b.relay, opts...))
	return mux
}

// relay delivers one reply. An error makes the handler answer 500 and
// forget the message id, so that a redelivery is handled again.
func (b *bridge) relay(ctx context.Context, ev *convo.SelartiEvent) error {
	if b.mode == modeTalqui {
		return b.toTalqui(ctx, ev)
	}
	return b.toTalkJS(ctx, ev)
}

// toTalkJS sends the reply into conversation "selarti_<external_chat_id>"
// as the bot user, creating the conversation on first use.
func (b *bridge) toTalkJS(ctx context.Context, ev *convo.SelartiEvent) error {
	if ev.ExternalChatID == "" {
		// A redelivery would not have one either.
		return fmt.Errorf("a reply without external_chat_id: %w", convo.ErrPermanent)
	}
	conv := "selarti_" + ev.ExternalChatID
	upd := convo.ConversationUpdate{Participants: []string{botID}, Subject: ev.Title}
	if ev.ThreadID != "" {
		upd.Custom = map[string]string{"selartiThread": ev.ThreadID}
	}
	if err := b.c.Conversations.Upsert(ctx, conv, upd); err != nil {
		return fmt.Errorf("upserting %s: %w", conv, err)
	}
	m := convo.UserMessage(botID, ev.MessageText)
	m.Custom = map[string]string{"selartiAuthor": string(ev.MessageType)}
	if ev.MessageID != "" {
		// A redelivery the handler's in-memory dedup missed (after a
		// restart, or on another replica) is dropped by TalkJS.
		m.IdempotencyKey = "selarti-" + ev.MessageID
	}
	_, err := b.c.Conversations.SendMessages(ctx, conv, m)
	if errors.Is(err, convo.ErrValidation) {
		// Blank text: a redelivery cannot fix it.
		return fmt.Errorf("a reply TalkJS would refuse: %w (%w)", err, convo.ErrPermanent)
	}
	if err != nil {
		return fmt.Errorf("sending to %s: %w", conv, err)
	}
	b.log.Info("relayed", "message_id", ev.MessageID, "author", ev.MessageType, "conversation", conv)
	return nil
}

// toTalqui starts a WhatsApp Business session whose first message is the
// reply. The mapping: Selarti's "contacts" holds the contact's details, a
// phone number in the manual's example ("123456789"), which becomes the
// WhatsApp phone (sent as digits, 8 to 15 of them); "title", the user's
// full name, becomes the contact's name; "message_text" is the free text.
// WhatsApp Business takes free text, so no approved model is needed (on
// WhatsApp API Official it would be). Talqui documents only the session
// start, so each reply opens a new session.
//
// A session start sends a WhatsApp message, and a second start sends a
// second one. So a failure after which Talqui may have sent it
// (ErrOutcomeUnknown) is never redelivered: it is marked ErrPermanent, which
// the handler logs for a person to check and answers 200. So is a failure
// no redelivery can mend (bad input, a 4xx). A 429 or a failure to connect
// (Talqui surely did nothing) asks Selarti for a redelivery.
func (b *bridge) toTalqui(ctx context.Context, ev *convo.SelartiEvent) error {
	started, err := b.c.Sessions.Start(ctx, convo.WhatsAppBusiness{Phone: ev.Contacts, Name: ev.Title, Text: ev.MessageText})
	switch {
	case err == nil:
	case errors.Is(err, convo.ErrOutcomeUnknown):
		return fmt.Errorf("the reply may have been delivered; check before sending it again: %w (%w)", err, convo.ErrPermanent)
	case errors.Is(err, convo.ErrValidation), errors.Is(err, convo.ErrInvalidRequest),
		errors.Is(err, convo.ErrUnauthorized), errors.Is(err, convo.ErrNotFound):
		return fmt.Errorf("the reply cannot be delivered: %w (%w)", err, convo.ErrPermanent)
	default:
		return err
	}
	session := ""
	if started.Session != nil {
		session = started.Session.SessionID
	}
	b.log.Info("relayed", "message_id", ev.MessageID, "author", ev.MessageType, "talqui_session", session)
	return nil
}

// serve serves h on ln until ctx is done, then shuts down, giving the
// requests in flight up to shutdownTimeout to finish.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
