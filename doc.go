// Package convo is a Go client for software that opens and runs
// conversations with people over messaging channels. One typed Client
// wraps three APIs:
//
//   - Talqui: start a session with one contact on a channel (WhatsApp API
//     Official with an approved model, WhatsApp Business, iFood, Telegram,
//     Instagram, Messenger, custom channels). Each channel's rules are
//     checked before anything is sent. See SessionsService.Start.
//   - TalkJS: upsert users and conversations, manage participants, send
//     and list messages. See UsersService and ConversationsService.
//   - Selarti: send a person's message to Selarti's AI (SelartiService),
//     and receive its "All messages" webhook, and TalkJS's signed
//     webhooks, as http.Handlers. See NewSelartiHandler and
//     NewTalkJSHandler.
//
// # A first example
//
//	c, err := convo.NewClient(
//		convo.WithTalqui("tenant-id", convo.PluginConnection{ID: "pc-wa", Token: talquiToken}),
//		convo.WithTalkJS("app-id", talkjsSecretKey),
//	)
//	if err != nil { ... }
//	started, err := c.Sessions.Start(ctx, convo.WhatsAppOfficial{
//		Phone: "+55 27 99999-9999", Name: "Maria", ModelID: "order_update", Variables: []string{"Maria", "#391"},
//	})
//
// The package convotest is a faithful in-memory fake of the three
// providers: point a Client at it to test your own code offline.
//
// # Errors
//
// Input that breaks a rule is refused before anything is sent, with a
// *ValidationError listing every problem (errors.Is(err, ErrValidation)).
// A server's error status gives an *APIError; errors.Is tells its class:
// ErrNotFound, ErrUnauthorized, ErrRateLimited, ErrInvalidRequest,
// ErrServer. A transport failure keeps its cause, so
// errors.Is(err, context.DeadlineExceeded) works; once any attempt may
// have reached the server, the call's error also matches
// ErrOutcomeUnknown, whatever ends the call afterwards (ErrBadResponse
// instead when a 2xx arrived).
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
// messages all carry idempotency keys (the SDK fills them in), or a TalkJS
// presence query (it changes nothing). A Talqui session start never is: a
// second try could send the contact a second WhatsApp message; nor are a
// TalkJS import (TalkJS does not deduplicate imported messages), a
// notification trigger, and a Selarti send, which reaches an AI that
// answers a person. The rules, in the order retry.go applies them:
//
//  1. A success body over the cap (16 MiB, WithMaxResponseBytes): never
//     repeated.
//  2. A dial failure (nothing was sent): always repeated.
//  3. A certificate, scheme or header error: never repeated.
//  4. A reset, EOF or attempt timeout (WithTimeout) after the request was written:
//     repeated only when the call is safe to repeat.
//  5. A 429 (the server did not act): always repeated.
//  6. A 408: repeated only when the call is safe to repeat.
//  7. A 501: never repeated.
//  8. Any other 5xx: repeated only when the call is safe to repeat.
//  9. A redirect (3xx): never followed, never repeated; the call returns
//     an *APIError with its status and without the Location. On a call
//     that is not safe to repeat it also matches ErrOutcomeUnknown.
//  10. Any other status (4xx): never repeated.
//  11. A Retry-After beyond MaxWait: not repeated; the call returns the
//     *APIError at once with its RetryAfter.
//
// Waits grow exponentially with jitter between RetryPolicy.MinWait and
// MaxWait. A Retry-After header (seconds or an HTTP date) is honoured up
// to MaxWait; when the server asks for longer, the call returns the
// *APIError at once with its RetryAfter. The wait ends the moment the
// context is done.
package convo
