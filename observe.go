package convo

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Observer watches every call of a Client and every attempt of a call
// (WithObserver), every delivery a webhook handler answers
// (WithHandlerObserver), and the deliveries an inbox keeps and runs
// (WithInboxObserver, and redisdedup's), for metrics and tracing; the
// otelconvo module is one for OpenTelemetry. Every field is optional; a
// nil one is not called, and a client, handler or inbox uses only its own
// hooks. The functions
// are called from the goroutine of the call or delivery and must be safe
// for concurrent use.
//
// Nothing an Observer is given holds a credential, a filled-in path (ids
// are personal data and would blow up a metric's label set) or a query
// value: paths are templates such as "/v1/{appID}/users/{userID}".
//
// New events may be added as new fields in later versions; an Observer
// written today keeps compiling.
type Observer struct {
	// CallStart is called once a call begins, before anything is checked
	// or sent. The context it returns (say, with a span) is the parent of
	// every attempt's request and is passed to AttemptStart and CallDone.
	CallStart func(ctx context.Context, call CallInfo) context.Context
	// AttemptStart is called before each attempt is sent, with the
	// context from CallStart. a.Header adds headers (say, trace context)
	// to that attempt's request. The context it returns is passed to the
	// attempt's AttemptDone.
	AttemptStart func(ctx context.Context, a AttemptInfo) context.Context
	// AttemptDone is called when an attempt has its answer, or failed.
	AttemptDone func(ctx context.Context, a AttemptResult)
	// CallDone is called once a call ends, with the context from
	// CallStart. A call refused before anything was sent (a
	// *ValidationError, ErrNotConfigured, a context already done) has no
	// attempt and Attempts 0.
	CallDone func(ctx context.Context, c CallResult)

	// DeliveryStart is called when a webhook handler gets a request,
	// before anything is checked. The context it returns is the one the
	// handler's callback gets (so that the calls it makes are its
	// children) and is passed to DeliveryDone.
	DeliveryStart func(ctx context.Context, d DeliveryInfo) context.Context
	// DeliveryDone is called once the handler has answered.
	DeliveryDone func(ctx context.Context, d DeliveryResult)

	// InboxKept is called when an inbox keeps a new delivery (Add added
	// it; not for a duplicate), with Add's context: the handler's, a
	// child of DeliveryStart's.
	InboxKept func(ctx context.Context, k InboxInfo)
	// InboxRunStart is called before an inbox runs a kept delivery, with
	// the context of the inbox's Run. The context it returns (say, with a
	// span) is the one the callback gets and is passed to InboxRunDone.
	InboxRunStart func(ctx context.Context, r InboxInfo) context.Context
	// InboxRunDone is called once a run has ended: completed, to be
	// retried, dead-lettered or interrupted (see InboxOutcome).
	InboxRunDone func(ctx context.Context, r InboxRunResult)
}

// forCalls says whether o has a hook of a client.
func (o *Observer) forCalls() bool {
	return o.CallStart != nil || o.AttemptStart != nil || o.AttemptDone != nil || o.CallDone != nil
}

// forDeliveries says whether o has a hook of a webhook handler.
func (o *Observer) forDeliveries() bool {
	return o.DeliveryStart != nil || o.DeliveryDone != nil
}

// forInbox says whether o has a hook of an inbox.
func (o *Observer) forInbox() bool {
	return o.InboxKept != nil || o.InboxRunStart != nil || o.InboxRunDone != nil
}

// CallInfo names a call. Every field has few values: it fits a metric
// label.
type CallInfo struct {
	Provider Provider
	// Operation is the stable name of the SDK method: provider, service
	// and method in snake case, such as "talkjs.conversations.send_messages"
	// or "talqui.sessions.start". A method that sends several requests
	// (UpsertMany's batches, a list's pages) makes one call per request.
	Operation string
	Method    string // the HTTP method
	// PathTemplate is the path with its placeholders, never their values:
	// "/v1/{appID}/conversations/{conversationID}/messages". It starts
	// with the base URL's own path, if it has one.
	PathTemplate  string
	ServerAddress string // the host of the provider's base URL
	ServerPort    int    // its port, 443 or 80 when the URL has none
}

// AttemptInfo describes an attempt about to be sent.
type AttemptInfo struct {
	Call    CallInfo
	Attempt int // 1 for the first try
	// Header adds headers to this attempt's request.
	Header AttemptHeader
}

// AttemptResult describes an attempt that got its answer, or failed.
type AttemptResult struct {
	Call     CallInfo
	Attempt  int
	Status   int     // the HTTP status; 0 when no response came
	Outcome  Outcome // how this attempt ended (see Outcome)
	Duration time.Duration
	// RequestID is the server's request id header (X-Request-Id,
	// Request-Id or X-Correlation-Id), if any.
	RequestID string
}

// CallResult describes a call that ended.
type CallResult struct {
	Call      CallInfo
	Attempts  int     // how many requests were sent; 0 when refused before sending
	Status    int     // the status of the last response; 0 when none came
	Outcome   Outcome // the class of the call's error (see Outcome)
	Duration  time.Duration
	RequestID string // of the last response, as in AttemptResult
}

// Outcome classifies how a call or an attempt ended, in few values: fit
// for a metric label. Calls and attempts share one vocabulary: an
// attempt's outcome is the outcome its call would have, had the call ended
// with that attempt. So a 503 is OutcomeUnknown on an attempt as on a call
// (the server may have acted), and OutcomeServerError means a 5xx after
// which it did not (a 501, or the answer to a credential step such as
// Selarti's token exchange).
//
// A call's outcome is the first of these that its error matches:
// OutcomeOK (no error), OutcomeValidation (ErrValidation or
// ErrNotConfigured), OutcomeBadResponse (ErrBadResponse),
// OutcomeUnknown (ErrOutcomeUnknown, which includes 408 and most 5xx
// answers: Status tells them apart), the class of an *APIError's status,
// and OutcomeTransport for anything else. ErrOutcomeUnknown is sticky, so
// a call whose first attempt got a 503 and whose last a 429 is
// OutcomeUnknown, while its attempts are OutcomeUnknown and
// OutcomeRateLimited.
type Outcome string

// The outcomes. Each says what the call or attempt it labels met.
const (
	OutcomeOK             Outcome = "ok"              // a success
	OutcomeValidation     Outcome = "validation"      // refused before sending: nothing was sent
	OutcomeNotFound       Outcome = "not_found"       // 404
	OutcomeUnauthorized   Outcome = "unauthorized"    // 401, 403
	OutcomeRateLimited    Outcome = "rate_limited"    // 429
	OutcomeInvalidRequest Outcome = "invalid_request" // 400, 409, 422
	OutcomeServerError    Outcome = "server_error"    // a 5xx after which the server did not act: a 501, or any 5xx of a credential step
	OutcomeAPIError       Outcome = "api_error"       // any other status that is not a success (a 408 of a credential step, a redirect of a call safe to repeat)
	OutcomeUnknown        Outcome = "outcome_unknown" // the server may have acted: a 408, a 5xx but 501, a redirect of a call not safe to repeat, no answer after sending (matches ErrOutcomeUnknown)
	OutcomeBadResponse    Outcome = "bad_response"    // a 2xx whose body could not be read (matches ErrBadResponse)
	OutcomeTransport      Outcome = "transport"       // no answer, and nothing reached the server (dial, TLS, context), or a credential step got none
)

// outcomeOf classifies a call's error.
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrValidation), errors.Is(err, ErrNotConfigured):
		return OutcomeValidation
	case errors.Is(err, ErrBadResponse):
		return OutcomeBadResponse
	case errors.Is(err, ErrOutcomeUnknown):
		return OutcomeUnknown
	}
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.StatusCode >= 200 && ae.StatusCode <= 299 {
			// A credential step's answer that could not be read.
			return OutcomeBadResponse
		}
		return statusOutcome(ae.StatusCode)
	}
	return OutcomeTransport
}

// statusOutcome classifies a status.
func statusOutcome(s int) Outcome {
	switch {
	case s >= 200 && s <= 299:
		return OutcomeOK
	case s == http.StatusNotFound:
		return OutcomeNotFound
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return OutcomeUnauthorized
	case s == http.StatusTooManyRequests:
		return OutcomeRateLimited
	case s == http.StatusBadRequest || s == http.StatusConflict || s == http.StatusUnprocessableEntity:
		return OutcomeInvalidRequest
	case s >= 500 && s <= 599:
		return OutcomeServerError
	}
	return OutcomeAPIError
}

// AttemptHeader adds headers to one attempt's request. It cannot read the
// request's headers (they hold the credentials) nor replace those the
// client sets itself.
type AttemptHeader struct {
	h    http.Header
	once bool // the call is not safe to repeat
}

// Set sets header key to value on the attempt's request, replacing a value
// set on an earlier attempt. It does nothing for a header the client sets
// (Authorization, Accept, Content-Type, User-Agent, a provider's own), a
// value with a line break, or, on a call that is not safe to repeat (a
// session start, a Selarti send), Idempotency-Key and X-Idempotency-Key:
// net/http takes those for a promise that the request may be sent again.
func (a AttemptHeader) Set(key, value string) {
	if a.h == nil || strings.ContainsAny(value, "\r\n") {
		return
	}
	key = http.CanonicalHeaderKey(key)
	switch key {
	case "Authorization", "Accept", "Content-Type", "Content-Length", "User-Agent", "Host",
		"Proxy-Authorization", "Cookie", "Talkjs-Rest-Version":
		return
	case "Idempotency-Key", "X-Idempotency-Key":
		if a.once {
			return
		}
	}
	a.h[key] = []string{value}
}

// DeliveryInfo describes a webhook delivery as it arrives.
type DeliveryInfo struct {
	Provider Provider // whose handler got it
	Method   string   // the request's method
	// Header reads the request's trace context headers, and no other.
	Header DeliveryHeader
}

// DeliveryResult describes the answer to a webhook delivery.
type DeliveryResult struct {
	Provider Provider
	// EventType is the event's type: a TalkJS event's "type"
	// ("message.sent"), Selarti's wh_type ("all_messages", or "other" for
	// a type Selarti does not document, since an unsigned sender could
	// send anything). It is "" when the request was refused before its
	// body was decoded.
	EventType string
	Status    int  // the status answered
	Duplicate bool // the event was handled before: answered 200 without a call
	Duration  time.Duration
}

// InboxInfo describes a delivery an inbox keeps or is about to run, and
// the inbox's queue after the event. It holds no id, key or body: only
// what fits a metric label or a gauge.
type InboxInfo struct {
	Provider Provider
	// Attempt is the run's attempt, 1 on the first run, counting on over
	// retries and a Replay; 0 in InboxKept.
	Attempt int
	// Received is when the handler received the delivery: the age of a
	// run is measured from it.
	Received time.Time
	// Depth is the number of deliveries the inbox keeps and has not
	// completed, dead letters left out (those waiting, in backoff and
	// running), just after the event; -1 when the inbox does not know it
	// cheaply.
	Depth int
	// Oldest is when the oldest of those was received; zero when there
	// is none or the inbox does not know it.
	Oldest time.Time
}

// InboxRunResult describes a run of a kept delivery that ended.
type InboxRunResult struct {
	Provider Provider
	Attempt  int       // as in InboxInfo
	Received time.Time // as in InboxInfo
	Outcome  InboxOutcome
	Duration time.Duration // of the run
	// Retry is, for InboxRetried, the wait before the next run may start.
	Retry time.Duration
	// Depth and Oldest are the inbox's queue just after the run, as in
	// InboxInfo (a completed or dead-lettered delivery has left it).
	Depth  int
	Oldest time.Time
}

// InboxOutcome says how a run of a kept delivery ended, in few values:
// fit for a metric label.
type InboxOutcome string

// The outcomes of a run.
const (
	InboxCompleted    InboxOutcome = "completed"     // the callback returned nil: the delivery is done
	InboxRetried      InboxOutcome = "retried"       // it failed: the delivery runs again after a backoff
	InboxDeadLettered InboxOutcome = "dead_lettered" // it failed for the last time, or with ErrPermanent
	// InboxInterrupted: the inbox's Run ended while the callback ran;
	// the delivery was given back and runs again (the run counts as an
	// attempt; after the last one the delivery is dead-lettered instead).
	InboxInterrupted InboxOutcome = "interrupted"
)

// DeliveryHeader reads the trace context headers of a webhook request
// (W3C traceparent, tracestate and baggage, B3, Jaeger, AWS X-Ray, Google
// Cloud): it sees none of the others, which may carry a signature or a
// shared secret. Its methods make it an OpenTelemetry TextMapCarrier.
type DeliveryHeader struct{ h http.Header }

// traceHeaders are the headers a DeliveryHeader reads, canonical.
var traceHeaders = []string{"Traceparent", "Tracestate", "Baggage", "B3", "X-B3-Traceid", "X-B3-Spanid",
	"X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags", "Uber-Trace-Id", "X-Amzn-Trace-Id", "X-Cloud-Trace-Context"}

// Get gives the first value of a trace context header, "" for any other.
func (d DeliveryHeader) Get(key string) string {
	key = http.CanonicalHeaderKey(key)
	for _, k := range traceHeaders {
		if k == key {
			return d.h.Get(k)
		}
	}
	return ""
}

// Set does nothing: a delivery's header is read-only.
func (DeliveryHeader) Set(string, string) {}

// Keys lists the trace context headers the request has.
func (d DeliveryHeader) Keys() []string {
	var ks []string
	for _, k := range traceHeaders {
		if _, ok := d.h[k]; ok {
			ks = append(ks, k)
		}
	}
	return ks
}

// observation is the state of one observed call; the pipeline allocates
// it only when an Observer or a debug logger is set.
type observation struct {
	c          *Client
	api        *endpoint
	o          *Observer // nil when only the debug line is wanted
	ctx        context.Context
	info       CallInfo
	start      time.Time
	attempts   int // sent so far, over both runs when a refused credential is renewed
	attemptCtx context.Context
	attemptAt  time.Time
	open       bool  // an attempt started and its AttemptDone is due
	status     int   // of the attempt's response, 0 if none
	err        error // the attempt's error (transport, body), if any
	header     http.Header
	repeatable bool // the call is safe to repeat (request.repeatable)
	credential bool // the call is a credential step (request.credential)
}

// observing says whether calls are watched: by an Observer, or by a
// logger that writes the debug line at the end of every call.
func (c *Client) observing(ctx context.Context) bool {
	return c.observer != nil || (c.logger != nil && c.logger.Enabled(ctx, slog.LevelDebug))
}

// observeStart begins watching the call r; ob.ctx is the context the call
// continues with.
func (c *Client) observeStart(ctx context.Context, r *request) *observation {
	ob := &observation{c: c, api: r.api, o: c.observer, start: time.Now(), repeatable: r.repeatable(), credential: r.credential}
	ob.info = CallInfo{Provider: r.provider(), Operation: r.op, Method: r.method}
	if ep := r.api; ep != nil {
		ob.info.PathTemplate = ep.template + r.path
		ob.info.ServerAddress, ob.info.ServerPort = ep.host, ep.port
	}
	if ob.o != nil && ob.o.CallStart != nil {
		if octx := ob.o.CallStart(ctx, ob.info); octx != nil {
			ctx = octx
		}
	}
	ob.ctx = ctx
	return ob
}

// attemptStart is called before each attempt is sent, with its request.
func (ob *observation) attemptStart(r *http.Request) {
	ob.attemptDone("") // the last attempt of a run whose credential was refused
	ob.attempts++
	ob.attemptAt = time.Now()
	ob.open, ob.status, ob.err, ob.header = true, 0, nil, nil
	ob.attemptCtx = ob.ctx
	if ob.o != nil && ob.o.AttemptStart != nil {
		if ob.attempts > 1 {
			// A retry is a shallow copy of the previous request, whose
			// header map the transport may still be reading (a write cut
			// short by a timeout): copy it before the observer adds to it.
			r.Header = r.Header.Clone()
		}
		a := AttemptInfo{Call: ob.info, Attempt: ob.attempts, Header: AttemptHeader{r.Header, !stateOf(r.Context()).repeatable}}
		if actx := ob.o.AttemptStart(ob.ctx, a); actx != nil {
			ob.attemptCtx = actx
		}
	}
}

// note records what CheckRetry saw of the current attempt.
func (ob *observation) note(resp *http.Response, err error) {
	if resp != nil {
		ob.status, ob.header = resp.StatusCode, resp.Header
	}
	ob.err = err
}

// requestID is the request id of the current attempt's answer, with no
// secret in it.
func (ob *observation) requestID() string {
	id := requestID(ob.header)
	if id == "" {
		return ""
	}
	return truncate(ob.c.redactString(ob.api, id), 200)
}

// attemptDone reports the current attempt, if one is open; final is the
// call's outcome when the call ends with it.
func (ob *observation) attemptDone(final Outcome) {
	if !ob.open {
		return
	}
	ob.open = false
	if ob.o == nil || ob.o.AttemptDone == nil {
		return
	}
	res := AttemptResult{Call: ob.info, Attempt: ob.attempts, Status: ob.status,
		Duration: time.Since(ob.attemptAt), RequestID: ob.requestID()}
	res.Outcome = ob.attemptOutcome(final)
	ob.o.AttemptDone(ob.attemptCtx, res)
}

// attemptOutcome is the outcome of the current attempt: the one its call
// would have, had it ended with this attempt (see Outcome).
func (ob *observation) attemptOutcome(final Outcome) Outcome {
	ok := ob.status >= 200 && ob.status <= 299
	switch {
	case ob.status == 0 && ob.err != nil && !isDialError(ob.err) && !isPermanent(ob.err) && !ob.credential:
		return OutcomeUnknown // sent, and no answer came
	case ob.status == 0:
		return OutcomeTransport
	case ok && (ob.err != nil || final == OutcomeBadResponse):
		return OutcomeBadResponse
	case ok:
		return OutcomeOK
	}
	return outcomeOf(&APIError{StatusCode: ob.status, unknown: isRedirect(ob.status) && !ob.repeatable, credential: ob.credential})
}

// observeEnd reports the end of the call: its last attempt, CallDone and
// the debug line.
func (c *Client) observeEnd(ob *observation, err error) {
	out := outcomeOf(err)
	ob.attemptDone(out)
	res := CallResult{Call: ob.info, Attempts: ob.attempts, Outcome: out, Duration: time.Since(ob.start)}
	if ob.attempts > 0 {
		res.Status, res.RequestID = ob.status, ob.requestID()
	}
	if ob.o != nil && ob.o.CallDone != nil {
		ob.o.CallDone(ob.ctx, res)
	}
	if c.logger != nil {
		c.logger.LogAttrs(ob.ctx, slog.LevelDebug, "convo: call done",
			slog.String("provider", string(res.Call.Provider)), slog.String("operation", res.Call.Operation),
			slog.String("method", res.Call.Method), slog.String("path", res.Call.PathTemplate),
			slog.Int("status", res.Status), slog.Int("attempts", res.Attempts),
			slog.Duration("duration", res.Duration), slog.String("request_id", res.RequestID),
			slog.String("outcome", string(res.Outcome)))
	}
}
