// Package convo is a Go client for software that opens and runs
// conversations with people over messaging channels. One typed Client
// wraps three APIs:
//
//   - Talqui: start a session with one contact on a channel (WhatsApp API
//     Official with an approved model, WhatsApp Business, iFood, Telegram,
//     Instagram, Messenger, custom channels). Each channel's rules are
//     checked before anything is sent. See SessionsService.Start and the
//     builders WhatsAppOfficial, WhatsAppBusiness, IFood and GenericChannel.
//   - TalkJS: upsert users and conversations, manage participants, send,
//     list, edit and import messages. See UsersService and
//     ConversationsService.
//   - Selarti: send a person's message to Selarti's AI (SelartiService);
//     its answer comes back through the "All messages" webhook.
//
// NewSelartiHandler and NewTalkJSHandler receive the two providers'
// webhooks as http.Handlers.
//
// # A first example
//
//	c, err := convo.NewClient(
//		convo.WithTalqui("tenant-id", convo.PluginConnection{ID: "pc-wa", Token: talquiToken}),
//		convo.WithTalkJS("app-id", talkjsSecretKey),
//		convo.WithSelarti(selartiAPIKey),
//	)
//	if err != nil { ... }
//	started, err := c.Sessions.Start(ctx, convo.WhatsAppOfficial{
//		Phone: "+55 27 99999-9999", Name: "Maria", ModelID: "order_update", Variables: []string{"Maria", "#391"},
//	})
//	ids, err := c.Conversations.SendMessages(ctx, "order_391", convo.UserMessage("8029", "Hello Maria!"))
//
// WithEnv configures the same from the environment (TALQUI_TENANT,
// TALQUI_CONNECTION_ID, TALQUI_TOKEN, TALKJS_APP_ID, TALKJS_SECRET_KEY,
// SELARTI_API_KEY, and the base URLs TALQUI_URL, TALKJS_URL, SELARTI_URL),
// as the examples and the convo command do.
//
// Create one Client and share it: it is safe for concurrent use and holds
// the connection pool. Every method takes a context.Context first; bound a
// whole call, retries included, with it. A service of a provider that was
// not configured answers ErrNotConfigured and sends nothing. Lists
// (Users.List, Conversations.Messages, ...) are lazy iter.Seq2 values that
// fetch one page at a time; see ListOptions.
//
// # Errors
//
// Input that breaks a rule is refused before anything is sent, with a
// *ValidationError listing every problem (errors.Is(err, ErrValidation)).
// A server's error status gives an *APIError; errors.Is tells its class:
// ErrNotFound, ErrUnauthorized, ErrRateLimited, ErrInvalidRequest,
// ErrServer. A transport failure keeps its cause, so
// errors.Is(err, context.DeadlineExceeded) works. Once any attempt may
// have reached the server, the call's error also matches
// ErrOutcomeUnknown, whatever ends the call afterwards: a message may have
// been delivered, so check before you send it again. A 2xx whose body
// could not be read matches ErrBadResponse instead: the call took effect.
//
// No configured secret shows in any form a program prints: error text
// and fields (what a server echoes is redacted before anything is cut),
// log lines, fmt of the client or a PluginConnection with any verb, slog
// and encoding/json.
//
// # Retries
//
// Every call goes through one pipeline that repeats a failed attempt only
// when repeating cannot reach a person twice. A call is safe to repeat
// when it is a GET, PUT, PATCH or DELETE, a TalkJS message send whose
// messages all carry idempotency keys (the SDK fills them in), a TalkJS
// presence query (it changes nothing) or a conversation marked read (a
// second time reads nothing new); so is Selarti's token exchange. A raw
// call (Client.Raw) is safe to repeat when it is a GET or says it is
// (RawRequest.Repeatable). A
// Talqui session start never is: a second try could send the contact a
// second WhatsApp message; nor are a TalkJS import (TalkJS keeps every
// copy of an imported message), a notification trigger (a second one
// notifies twice), a Selarti send (the AI would answer twice) and
// SelartiService.AddTarget. The rules, in the order the client applies
// them:
//
//  1. A success body over the cap (16 MiB, WithMaxResponseBytes): never
//     repeated.
//  2. A dial failure (DNS, connection refused): always repeated; nothing
//     was sent.
//  3. A certificate, scheme or header error: never repeated.
//  4. A reset, EOF or attempt timeout (WithTimeout) after sending:
//     repeated only when the call is safe to repeat.
//  5. A 429: always repeated, honouring Retry-After up to MaxWait; the
//     server did not act.
//  6. A 408: repeated only when the call is safe to repeat.
//  7. A 501: never repeated.
//  8. Any other 5xx: repeated only when the call is safe to repeat.
//  9. A redirect (3xx): never followed, never repeated; the call returns
//     an *APIError with its status and without the Location. On a call
//     that is not safe to repeat it also matches ErrOutcomeUnknown.
//  10. Any other status (4xx): never repeated.
//  11. A Retry-After beyond MaxWait: not repeated; the call returns the
//     *APIError at once with its RetryAfter.
//  12. A raw call's io.Reader body (an upload): once sent, repeated only
//     when the call is Repeatable and the reader can be rewound (not
//     after a 429 either); never when it cannot be rewound, not even
//     after a dial failure.
//
// The defaults (WithRetry, WithTimeout): 4 retries, waits growing
// exponentially with jitter from 500 ms to 30 s, and 30 s for one attempt
// as a whole (connecting, the response headers and the body). A
// Retry-After header (seconds or an HTTP date) is honoured up to
// RetryPolicy.MaxWait. The wait ends the moment the context is done.
//
// # Webhooks
//
// NewSelartiHandler and NewTalkJSHandler take POST only, limit the body
// (1 MiB, WithBodyLimit) and the time it takes to arrive (10 s,
// WithReadTimeout), answer 400 for a body that does not parse, and call
// your function once per message or event id: a redelivery of a handled
// id is answered 200 without a call. Return an error wrapping ErrPermanent
// to answer 200 and never see that delivery again; any other error
// answers 500 and lets a redelivery through. The TalkJS handler checks
// the X-TalkJS-Signature of each delivery (VerifyTalkJSSignature) and
// refuses one whose timestamp is more than 5 minutes away (WithMaxAge).
// Selarti signs nothing: WithSharedSecret can require a secret in the URL
// or a header. The ids handled are remembered in memory (10,000 per
// handler); behind several replicas, share them with a DedupStore, such as
// the one of the module github.com/convokit/convo/redisdedup.
// ParseSelartiEvent and ParseTalkJSEvent decode a body without a handler.
//
// With WithInbox, a handler answers 200 once the delivery is kept in an
// Inbox, and the inbox runs your function from there until it succeeds,
// with backoff, in order per conversation: for a sender that never
// retries (Selarti) and a function that can fail for a while.
// NewMemoryInbox keeps deliveries in the process; redisdedup.Inbox in
// Redis, shared by replicas.
//
// # Testing
//
// The package convotest is a faithful in-memory fake of the three
// providers: convotest.NewServer().Client() gives a *Client wired to it,
// with fast retries. It keeps state as the real APIs do, records every
// request, plays faults on demand (a status, a delay, a dropped
// connection, before or after acting) and delivers webhooks to your
// handlers (TalkJS's signed, as TalkJS signs them).
//
// To stub single answers with github.com/jarcoal/httpmock instead, give
// the client an http.Client whose transport is the mock
// (WithHTTPClient(&http.Client{Transport: httpmock.NewMockTransport()})):
// the client never uses http.DefaultTransport, so httpmock.Activate alone
// does not intercept it. A request that no responder matches fails like a
// connection reset after sending: it is retried only when the call is safe
// to repeat, and its error matches ErrOutcomeUnknown. Each method's
// documentation names the success answer it expects.
//
// # Observability
//
// WithObserver reports every call and every attempt to an Observer, a
// struct of optional hooks in the manner of net/http/httptrace: the
// operation ("talkjs.conversations.send_messages"), the path template
// (never the ids), the status, the number of attempts, the duration and
// the Outcome, fit for metric labels. AttemptInfo.Header adds trace
// context headers to each attempt. WithHandlerObserver does the same for
// webhook deliveries. The module github.com/convokit/convo/otelconvo is an
// Observer for OpenTelemetry. WithLogger logs each attempt and retry, and
// one debug line per call, to a *slog.Logger. A client without an observer or a
// logger pays nothing for them.
package convo
