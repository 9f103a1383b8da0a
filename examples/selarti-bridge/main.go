// Command selarti-bridge puts Selarti's AI behind a TalkJS chat. It is the
// loop of Selarti's external-messenger integration, with TalkJS as the
// messenger:
//
//  1. TalkJS posts a message.sent webhook to /hooks/talkjs. For a
//     customer's message, the bridge sends the text to Selarti's AI with the
//     TalkJS conversation id as chat_id (and lets the bot user into the
//     conversation, once).
//  2. Selarti posts the AI's answer, and any operator's reply from its
//     panel, to /hooks/selarti ("All messages"); the bridge keeps it in a
//     convo.MemoryInbox, answers 200, and posts it into the conversation
//     named by external_chat_id, as the bot user, again and again until
//     TalkJS takes it, in order per conversation. Selarti also echoes the
//     customer's own message: the handler drops it.
//
// Why an inbox on the Selarti side only: Selarti delivers each answer
// once and never retries, so a relay that fails while TalkJS is down, run
// in the request, would lose the answer for good. TalkJS retries its own
// webhooks once, and a send to Selarti's AI must not happen twice, so the
// TalkJS side stays in the request. The memory inbox survives TalkJS
// outages, not a restart of the bridge: redisdedup.Inbox keeps the
// answers in Redis, shared by replicas (see redisdedup's example).
//
// A customer is the sender of a UserMessage who is not the bot and, when
// CUSTOMER_ROLE is set, whose TalkJS role is that one; the bot's own
// messages never go back to Selarti.
//
// By default it runs offline, whatever the environment holds: TalkJS and
// Selarti are a convotest fake in-process, whose AI answers by webhook, and
// one demo message goes through. With -live it calls the hosts that
// convo.WithEnv configures from the environment (the real APIs, or the fake
// of "convo fake" when its variables are exported). Its first log line says
// which hosts it calls.
//
// Flags and environment:
//
//	-live                  use the environment: TALKJS_APP_ID, TALKJS_SECRET_KEY,
//	                       SELARTI_API_KEY (and TALKJS_URL, SELARTI_URL when
//	                       set) configure the client, SELARTI_TASK_ID names the
//	                       task; register https://your.host/hooks/talkjs in
//	                       TalkJS and https://your.host/hooks/selarti in Selarti
//	ADDR                   listen address (default 127.0.0.1:8080)
//	SELARTI_SHARED_SECRET  when set, a Selarti webhook must carry it: register
//	                       https://your.host/hooks/selarti?secret=<it>
//	CUSTOMER_ROLE          when set, only senders with this TalkJS role are
//	                       customers
//
// Try it offline:
//
//	go run ./examples/selarti-bridge
//
// SIGINT or SIGTERM stops it gracefully: the requests in flight finish.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

const (
	botID           = "selarti-bot" // the TalkJS user that posts Selarti's answers
	shutdownTimeout = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// realMain is main with its arguments and outputs: -h prints the usage to
// stdout and gives 0 before anything is started, bound or dialled.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("selarti-bridge", flag.ContinueOnError)
	live := fs.Bool("live", false, "call the hosts the environment configures (TALKJS_*, SELARTI_*: see convo.WithEnv)\ninstead of an in-process convotest fake")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: selarti-bridge [-live]\n\nServes /hooks/talkjs and /hooks/selarti on ADDR (default 127.0.0.1:8080), offline on\nan in-process convotest fake unless -live. SIGINT or SIGTERM stops it.\n\nFlags:\n")
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
		fmt.Fprintln(stderr, "selarti-bridge:", err)
		fs.SetOutput(stderr)
		fs.Usage()
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := run(ctx, log, *live); err != nil {
		log.Error("selarti-bridge stopped", "error", err)
		return 1
	}
	return 0
}

// run reads the environment, connects, and serves until ctx is done.
func run(ctx context.Context, log *slog.Logger, live bool) error {
	cfg, err := connect(log, live)
	if err != nil {
		return err
	}
	defer cfg.close()
	b, err := newBridge(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", envOr("ADDR", "127.0.0.1:8080"))
	if err != nil {
		return err
	}
	// The inbox runs the kept answers until ctx ends; then it gives back
	// those running, which are lost with the process (not with Redis).
	inboxDone := make(chan error, 1)
	go func() { inboxDone <- b.inbox.Run(ctx) }()
	defer func() { <-inboxDone }()
	base := "http://" + ln.Addr().String()
	log.Info("listening", "talkjs", base+"/hooks/talkjs", "selarti", base+"/hooks/selarti")
	if cfg.fake != nil {
		cfg.fake.SetSelartiWebhook(base + "/hooks/selarti")
		go demo(ctx, cfg.fake, b, base+"/hooks/talkjs", log)
		// On the way out, the fake first: it closes the connections it
		// dialled to deliver webhooks, one of which may never have carried
		// a request, and Shutdown waits 5 s for such a one.
		defer context.AfterFunc(ctx, cfg.fake.Close)()
	}
	return serve(ctx, ln, b.handler(), log)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// config is what the bridge runs on.
type config struct {
	c             *convo.Client
	taskID        string // the Selarti task whose AI answers
	talkjsSecret  string // verifies TalkJS webhooks
	selartiSecret string // "" when Selarti webhooks need no secret
	customerRole  string // "" when any sender but the bot is a customer
	inboxOpts     []convo.InboxOption
	fake          *convotest.Server
	close         func()
}

// connect builds the config on an in-process convotest fake, or with live
// on what the environment configures (convo.WithEnv). Its log line, the
// first, says which hosts are called.
func connect(log *slog.Logger, live bool) (config, error) {
	cfg := config{selartiSecret: os.Getenv("SELARTI_SHARED_SECRET"), customerRole: os.Getenv("CUSTOMER_ROLE"), close: func() {}}
	var err error
	if !live {
		srv := convotest.NewServer()
		log.Info("offline: calls only a convotest fake in this process (-live calls the hosts the environment configures)", "url", srv.URL)
		cfg.c, err = srv.Client()
		cfg.taskID, cfg.talkjsSecret, cfg.fake, cfg.close = srv.SelartiTaskID(), srv.SecretKey(), srv, srv.Close
		return cfg, err
	}
	cfg.c, err = convo.NewClient(convo.WithEnv(), convo.WithUserAgent("convo-selarti-bridge"))
	if err != nil {
		return cfg, fmt.Errorf("-live: %w", err)
	}
	cfg.close = cfg.c.CloseIdleConnections
	cfg.taskID, cfg.talkjsSecret = os.Getenv("SELARTI_TASK_ID"), os.Getenv("TALKJS_SECRET_KEY")
	talkjs, selarti := cfg.c.BaseURL(convo.ProviderTalkJS), cfg.c.BaseURL(convo.ProviderSelarti)
	if talkjs == "" || selarti == "" || cfg.taskID == "" {
		return cfg, errors.New("-live needs TALKJS_APP_ID, TALKJS_SECRET_KEY, SELARTI_API_KEY and SELARTI_TASK_ID")
	}
	log.Info("live: calls talkjs "+talkjs+", selarti "+selarti, "talkjs", talkjs, "selarti", selarti)
	return cfg, nil
}

// bridge relays customers' messages to Selarti and its answers back.
type bridge struct {
	config
	log   *slog.Logger
	inbox *convo.MemoryInbox // keeps Selarti's answers until TalkJS has them

	mu     sync.Mutex
	joined map[string]bool // conversations the bot has joined
}

// newBridge upserts the bot user once.
func newBridge(ctx context.Context, cfg config, log *slog.Logger) (*bridge, error) {
	if err := cfg.c.Users.Upsert(ctx, botID, convo.UserUpdate{Name: "Assistant", Role: "bot"}); err != nil {
		return nil, fmt.Errorf("upserting the bot user: %w", err)
	}
	in := convo.NewMemoryInbox(append([]convo.InboxOption{convo.WithInboxLogger(log)}, cfg.inboxOpts...)...)
	return &bridge{config: cfg, log: log, inbox: in, joined: map[string]bool{}}, nil
}

// handler routes each provider's webhooks to its handler: fromTalkJS once
// per TalkJS event, in the request; toTalkJS once per Selarti bot or
// operator message, from the inbox.
func (b *bridge) handler() http.Handler {
	opts := []convo.HandlerOption{convo.WithHandlerLogger(b.log), convo.WithInbox(b.inbox)}
	if b.selartiSecret != "" {
		opts = append(opts, convo.WithSharedSecret(b.selartiSecret))
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/talkjs", convo.NewTalkJSHandler(b.talkjsSecret, b.fromTalkJS, convo.WithHandlerLogger(b.log)))
	mux.Handle("/hooks/selarti", convo.NewSelartiHandler(b.toTalkJS, opts...))
	return mux
}

// fromTalkJS sends a customer's message to Selarti's AI, with the
// conversation id as chat_id. Any other event, and a message that is not
// a customer's, is answered 200 and dropped.
//
// The send reaches an AI that answers the customer, so it must not happen
// twice: a failure after which Selarti may have it (ErrOutcomeUnknown) is
// marked ErrPermanent, which the handler logs and answers 200, so TalkJS
// does not redeliver it. So is a failure no redelivery can mend. A 429 or
// a failure to connect asks TalkJS for its one redelivery.
func (b *bridge) fromTalkJS(ctx context.Context, ev *convo.TalkJSEvent) error {
	if ev.Type != convo.TalkJSMessageSent {
		return nil
	}
	sent, err := ev.MessageSent()
	if err != nil {
		return fmt.Errorf("a message.sent the bridge cannot read: %w (%w)", err, convo.ErrPermanent)
	}
	m := sent.Message
	if !b.isCustomer(sent) || strings.TrimSpace(m.Text) == "" {
		return nil
	}
	if err := b.joinBot(ctx, m.ConversationID); err != nil {
		return err
	}
	_, err = b.c.Selarti.Send(ctx, convo.SelartiMessage{TaskID: b.taskID, ChatID: m.ConversationID, Text: m.Text})
	switch {
	case err == nil:
	case errors.Is(err, convo.ErrOutcomeUnknown), errors.Is(err, convo.ErrBadResponse):
		return fmt.Errorf("selarti may have the message; not sending it again: %w (%w)", err, convo.ErrPermanent)
	case errors.Is(err, convo.ErrValidation), errors.Is(err, convo.ErrInvalidRequest),
		errors.Is(err, convo.ErrUnauthorized), errors.Is(err, convo.ErrNotFound):
		return fmt.Errorf("selarti cannot take the message: %w (%w)", err, convo.ErrPermanent)
	default:
		return err
	}
	b.log.Info("sent to selarti", "talkjs_message", m.ID, "conversation", m.ConversationID)
	return nil
}

// isCustomer reports whether a message.sent is a customer's: a user
// message, not by the bot, by a sender with the customer role when one is
// set.
func (b *bridge) isCustomer(sent *convo.MessageSentData) bool {
	m := sent.Message
	if m.Type != convo.MessageTypeUser || m.SenderID == "" || m.SenderID == botID || m.ConversationID == "" {
		return false
	}
	return b.customerRole == "" || (sent.Sender != nil && sent.Sender.Role == b.customerRole)
}

// joinBot lets the bot user into a conversation, once per conversation
// (a PUT, safe to repeat).
func (b *bridge) joinBot(ctx context.Context, convID string) error {
	b.mu.Lock()
	done := b.joined[convID]
	b.mu.Unlock()
	if done {
		return nil
	}
	if err := b.c.Conversations.Join(ctx, convID, botID, convo.Participation{Notify: convo.NotifyOff}); err != nil {
		return fmt.Errorf("adding the bot to %s: %w", convID, err)
	}
	b.mu.Lock()
	b.joined[convID] = true
	b.mu.Unlock()
	return nil
}

// toTalkJS posts an answer of Selarti's AI or operator into the TalkJS
// conversation named by its external_chat_id, as the bot user. It runs
// from the inbox: an error makes the inbox run it again after a backoff
// (ErrPermanent: never), holding the later answers of the conversation.
//
// The message's idempotency key is Selarti's message id, which makes the
// relay safe to run twice: a run whose request reached TalkJS but whose
// answer was lost (a 503 after TalkJS stored it, a reset) is run again,
// and so is a run whose replica died mid-run (with redisdedup.Inbox,
// another replica takes it over after the lease); TalkJS drops the second
// message. So is a Selarti redelivery the inbox no longer remembers.
func (b *bridge) toTalkJS(ctx context.Context, ev *convo.SelartiEvent) error {
	if ev.ExternalChatID == "" {
		return fmt.Errorf("an answer without external_chat_id: %w", convo.ErrPermanent)
	}
	m := convo.UserMessage(botID, ev.MessageText)
	m.Custom = map[string]string{"selartiAuthor": string(ev.MessageType)}
	if ev.MessageID != "" {
		m.IdempotencyKey = "selarti-" + ev.MessageID
	}
	if err := b.joinBot(ctx, ev.ExternalChatID); err != nil {
		return err
	}
	_, err := b.c.Conversations.SendMessages(ctx, ev.ExternalChatID, m)
	switch {
	case errors.Is(err, convo.ErrValidation), errors.Is(err, convo.ErrNotFound):
		return fmt.Errorf("an answer TalkJS cannot take: %w (%w)", err, convo.ErrPermanent)
	case err != nil:
		return fmt.Errorf("sending to %s: %w", ev.ExternalChatID, err)
	}
	d, _ := convo.DeliveryFromContext(ctx)
	b.log.Info("relayed to talkjs", "selarti_message", ev.MessageID, "author", ev.MessageType, "conversation", ev.ExternalChatID, "attempt", d.Attempt)
	return nil
}

// demo plays one customer's message on the offline fake, as a TalkJS app
// would: the customer and the conversation are upserted, the message sent,
// and TalkJS's signed message.sent webhook delivered to the bridge.
func demo(ctx context.Context, srv *convotest.Server, b *bridge, talkjsHook string, log *slog.Logger) {
	const customer, conv = "demo-customer", "demo_conversation"
	err := b.c.Users.Upsert(ctx, customer, convo.UserUpdate{Name: "Alice", Role: "customer"})
	if err == nil {
		err = b.c.Conversations.Upsert(ctx, conv, convo.ConversationUpdate{Participants: []string{customer}, Subject: "Order #391"})
	}
	var ids []string
	if err == nil {
		ids, err = b.c.Conversations.SendMessages(ctx, conv, convo.UserMessage(customer, "Where is my order #391?"))
	}
	if err == nil {
		_, err = deliverMessageSent(ctx, srv, talkjsHook, conv, ids[0])
	}
	if err != nil {
		log.Error("demo", "error", err)
		return
	}
	if err := srv.WaitSelartiReplies(ctx); err != nil {
		return
	}
	// The answer was kept by the inbox, which relays it right after.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !slices.ContainsFunc(srv.Messages(conv), func(m convotest.Message) bool { return m.SenderID != nil && *m.SenderID == botID }) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	for _, m := range srv.Messages(conv) {
		if m.SenderID != nil {
			log.Info("demo conversation", "from", *m.SenderID, "text", m.Text)
		}
	}
}

// deliverMessageSent posts TalkJS's message.sent webhook of a stored
// message of the fake to url, signed, and returns the status.
func deliverMessageSent(ctx context.Context, srv *convotest.Server, url, convID, msgID string) (int, error) {
	var msg *convotest.Message
	for _, m := range srv.Messages(convID) {
		if m.ID == msgID {
			msg = &m
		}
	}
	conv, ok := srv.Conversation(convID)
	if msg == nil || !ok || msg.SenderID == nil {
		return 0, fmt.Errorf("no user message %s in %s", msgID, convID)
	}
	sender, _ := srv.User(*msg.SenderID)
	resp, err := srv.DeliverTalkJS(ctx, url, string(convo.TalkJSMessageSent), map[string]any{
		"conversation": conv, "message": msg, "sender": sender,
	})
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
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
