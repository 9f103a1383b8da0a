package convo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"
)

// This file is the core both webhook handlers share: their options, the
// dedup store they call, and one ServeHTTP that checks the method, reads
// the body, deduplicates and calls fn. Each provider's events and handler
// live in selarti_webhook.go and talkjs_webhook.go; the in-memory dedup
// store in dedup.go.

// ---------------------------------------------------------------------------
// Options

// Defaults of the webhook handlers.
const (
	defaultBodyLimit     = 1 << 20
	defaultDedupCapacity = 10_000
	defaultReadTimeout   = 10 * time.Second
	defaultDedupTimeout  = 2 * time.Second
)

// HandlerOption configures a webhook handler. WithBodyLimit, WithDedupStore,
// WithHandlerLogger and WithHandlerObserver serve both handlers; the others
// serve one, as their documentation says. The handler's constructor
// panics, as for any programmer error, on an option with bad input (a body
// limit below 1, a nil store) and on an option of the other provider.
type HandlerOption struct {
	name     string   // the option's function, for the panic message
	provider Provider // the one handler the option serves; "" for both
	apply    func(*hookConfig)
}

// hookConfig holds the settings of a handler: those both share, and those
// of each provider's options.
type hookConfig struct {
	bodyLimit   int64
	readTimeout time.Duration // 0: no deadline of the handler's own
	store       DedupStore
	inbox       Inbox         // WithInbox; then store and claims are nil
	failOpen    bool          // WithDedupFailOpen (the Selarti handler's default), WithDedupFailClosed
	dedupWait   time.Duration // WithDedupTimeout; also bounds the inbox's Add
	claims      *claims       // the handler's side of the store's contract
	logger      *slog.Logger
	observer    *Observer // nil when no hook of a handler is set
	selarti     selartiHookConfig
	talkjs      talkjsHookConfig
}

// newHookConfig applies opts for the handler of provider p (named ctor in
// panics), then makes the default store unless an option gave one.
func newHookConfig(p Provider, ctor string, opts []HandlerOption) hookConfig {
	c := hookConfig{
		bodyLimit:   defaultBodyLimit,
		readTimeout: defaultReadTimeout,
		dedupWait:   defaultDedupTimeout,
		// Selarti never retries: a 503 would lose its message.
		failOpen: p == ProviderSelarti,
		talkjs:   talkjsHookConfig{maxAge: defaultTalkJSMaxAge},
	}
	for _, o := range opts {
		if o.apply == nil {
			panic("convo: " + ctor + ": zero HandlerOption")
		}
		if o.provider != "" && o.provider != p {
			panic("convo: " + ctor + ": " + o.name + " is an option of the " + string(o.provider) + " handler")
		}
		o.apply(&c)
	}
	switch {
	case c.inbox != nil && c.store != nil:
		panic("convo: " + ctor + ": WithInbox and WithDedupStore together: an inbox dedups deliveries itself, give one of them")
	case c.inbox == nil && c.store == nil:
		c.store = NewMemoryDedupStore(defaultDedupCapacity)
	}
	if c.store != nil {
		c.claims = newClaims(c.store, c.dedupWait)
		c.claims.logger, c.claims.provider = c.logger, p
	}
	return c
}

// WithBodyLimit sets the largest body a handler reads, in bytes (default
// 1 MiB). A larger body is answered 413 and not read further. It panics
// when the handler is built if n is less than 1.
func WithBodyLimit(n int64) HandlerOption {
	return HandlerOption{name: "WithBodyLimit", apply: func(c *hookConfig) {
		if n < 1 {
			panic("convo: WithBodyLimit: the limit must be at least 1 byte")
		}
		c.bodyLimit = n
	}}
}

// WithReadTimeout bounds the time a handler waits for a request's body
// (default 10 s): it sets a read deadline on the connection through
// http.ResponseController before it reads the body, and lifts it once the
// body is read, so that fn has its own time. A body that does not arrive in
// time is answered 408. So a slow or stalled client cannot hold a handler
// goroutine even when the http.Server has no ReadTimeout. Zero sets no
// deadline (the server's own timeouts then apply); it panics when the
// handler is built if d is negative. Where the ResponseWriter cannot set a
// deadline (an httptest.ResponseRecorder, some middlewares), the body is
// read without one.
func WithReadTimeout(d time.Duration) HandlerOption {
	return HandlerOption{name: "WithReadTimeout", apply: func(c *hookConfig) {
		if d < 0 {
			panic("convo: WithReadTimeout: the timeout must not be negative")
		}
		c.readTimeout = d
	}}
}

// WithDedupStore sets the store that remembers handled deliveries, for
// example one shared by several replicas. The default is an in-memory store
// per handler (NewMemoryDedupStore(10000)). It panics when the handler is
// built if s is nil.
func WithDedupStore(s DedupStore) HandlerOption {
	return HandlerOption{name: "WithDedupStore", apply: func(c *hookConfig) {
		if s == nil {
			panic("convo: WithDedupStore: nil store")
		}
		c.store = s
	}}
}

// WithInbox makes a handler keep each delivery in the inbox in, and
// answer 200 as soon as in.Add has returned (kept, or kept before: a
// duplicate), whatever the callback later does; the inbox runs the
// callback, again after a failure, in order per conversation (see Inbox
// and MemoryInbox). The handler still verifies the delivery, checks its
// timestamp and drops what it filters (Selarti's user messages and other
// wh_types) before it keeps anything. Add has WithDedupTimeout's budget
// (default 2 s), as a dedup store's calls have: the handler stops waiting
// then, even for an Add that ignores its context (an inbox with a method
// HonorsDeadline() bool returning true is called directly, as such a store
// is; see DedupStore). When it fails, the handler does as when a dedup store
// fails: fail-open (the Selarti handler's default, since Selarti never
// retries) runs the callback in the request, without dedup, and logs a
// warning; fail-closed (the TalkJS handler's) answers 503, so that the
// sender may deliver again. An Add that timed out may still have kept the
// delivery: fail-open, it may then run twice. A delivery without an id
// cannot be deduplicated: it runs in the request, as without an inbox, and
// a warning is logged.
//
// The callback gets the Delivery from DeliveryFromContext (its Attempt
// says which run it is). The inbox dedups deliveries itself: the handler's
// constructor panics when WithDedupStore is given too, or when in is nil.
// The constructor calls in.Handle for its provider, so one inbox serves a
// Selarti and a TalkJS handler, but not two handlers of one provider. An
// option of both handlers.
func WithInbox(in Inbox) HandlerOption {
	return HandlerOption{name: "WithInbox", apply: func(c *hookConfig) {
		if in == nil {
			panic("convo: WithInbox: nil inbox")
		}
		c.inbox = in
	}}
}

// WithDedupFailOpen makes a handler whose dedup store fails (Claim returns
// an error, a state it does not know, or no answer within WithDedupTimeout)
// handle the delivery anyway, without deduplication, and log a warning. It
// is the Selarti handler's default; WithDedupFailClosed is the TalkJS
// handler's.
//
// A delivery handled fail-open is recorded in the handler (up to 10,000
// ids, the oldest dropped first) and written to the store as done once the
// store answers again, so its later redeliveries are duplicates; one that
// arrives on the same replica before then is not run again either. Only a
// redelivery that reaches another replica while the store is down runs
// twice.
//
// Choose by what the sender does with a 503 and by what a duplicate costs:
//   - Selarti does not retry at all (its manual says nothing of retries,
//     and its Bubble workflows do not redeliver): a 503 loses the message,
//     hence fail-open by default;
//   - TalkJS retries a delivery once, shortly after a non-2xx answer or 5 s
//     without one: a 503 in a short outage costs only that retry, hence a
//     503 by default; with this option, a delivery that reaches two
//     replicas during an outage may be handled twice.
//
// An option of both handlers.
func WithDedupFailOpen() HandlerOption {
	return HandlerOption{name: "WithDedupFailOpen", apply: func(c *hookConfig) { c.failOpen = true }}
}

// WithDedupFailClosed makes a handler whose dedup store fails answer 503
// without calling fn, so that the sender may deliver again: the TalkJS
// handler's default (TalkJS retries once). With Selarti, which never
// retries, it loses every message that arrives while the store is down; see
// WithDedupFailOpen. An option of both handlers.
func WithDedupFailClosed() HandlerOption {
	return HandlerOption{name: "WithDedupFailClosed", apply: func(c *hookConfig) { c.failOpen = false }}
}

// WithDedupTimeout bounds each call a handler makes to its dedup store
// (default 2 s): a Claim with no answer in time counts as a failed store (503,
// or fail-open), a Complete or Release is retried after the answer. So a
// delivery is answered within TalkJS's 5 s whatever the store does, as long
// as fn is quick: at most one Claim and one Complete are waited for. The
// handler stops waiting even for a store that ignores its context. It
// panics when the handler is built if d is not positive.
func WithDedupTimeout(d time.Duration) HandlerOption {
	return HandlerOption{name: "WithDedupTimeout", apply: func(c *hookConfig) {
		if d <= 0 {
			panic("convo: WithDedupTimeout: the timeout must be positive")
		}
		c.dedupWait = d
	}}
}

// WithHandlerLogger sets the logger of a handler. Without it (or with nil)
// a handler logs to slog.Default(), as found when it logs: a callback that
// fails or panics, a store that fails and a request refused are never
// silent. Failures are logged at level Error, refused requests at Warn,
// skipped and duplicate deliveries at Debug. To silence a handler, give a
// logger whose handler drops everything (slog.DiscardHandler on Go 1.24 or
// newer). No log line holds a secret, a signature or the request's query
// string.
func WithHandlerLogger(l *slog.Logger) HandlerOption {
	return HandlerOption{name: "WithHandlerLogger", apply: func(c *hookConfig) { c.logger = l }}
}

// WithHandlerObserver makes a handler report every delivery to o's
// DeliveryStart and DeliveryDone (see Observer): the provider, the event
// type, the status answered, whether it was a duplicate, and the duration.
// The context DeliveryStart returns is the one the callback gets. A
// handler without one pays nothing for it. An option of both handlers.
func WithHandlerObserver(o Observer) HandlerOption {
	return HandlerOption{name: "WithHandlerObserver", apply: func(c *hookConfig) {
		c.observer = nil
		if o.forDeliveries() {
			c.observer = &o
		}
	}}
}

// ---------------------------------------------------------------------------
// The handler core

// webhookHandler is what both handlers share: the method check, the body
// limit, dedup, running fn, and the answers. A provider supplies authorize
// and accept.
type webhookHandler struct {
	hookConfig
	provider Provider
	// authorize, if set, checks a request before its body is read.
	authorize func(r *http.Request) *reject
	// accept checks and decodes the body.
	accept func(r *http.Request, body []byte) (delivery, *reject)
}

// delivery is what accept found in a body.
type delivery struct {
	event string                          // the event's type, for observers
	id    string                          // the dedup id, "" to handle every time
	key   string                          // the inbox's ordering key, set only WithInbox
	body  []byte                          // the verified body, for the inbox
	call  func(ctx context.Context) error // fn bound to the event; nil to answer 200 without a call
	skip  string                          // why call is nil, for the log
}

// reject is an answer decided before fn runs.
type reject struct {
	status int
	msg    string
}

// ServeHTTP checks, reads, deduplicates and dispatches one delivery.
func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := h.observer
	if o == nil {
		h.serve(r.Context(), w, r)
		return
	}
	start := time.Now()
	ctx := r.Context()
	if o.DeliveryStart != nil {
		info := DeliveryInfo{Provider: h.provider, Method: r.Method, Header: DeliveryHeader{r.Header}}
		if octx := o.DeliveryStart(ctx, info); octx != nil {
			ctx = octx
		}
	}
	a := h.serve(ctx, w, r)
	if o.DeliveryDone != nil {
		o.DeliveryDone(ctx, DeliveryResult{Provider: h.provider, EventType: a.event, Status: a.status,
			Duplicate: a.duplicate, Duration: time.Since(start)})
	}
}

// answer is what serve answered, for observers.
type answer struct {
	status    int
	event     string
	duplicate bool
}

// serve answers one delivery; ctx is the request's, or the one an
// observer gave, and goes to fn.
func (h *webhookHandler) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) answer {
	// The read deadline bounds the body, and also the server's discarding
	// of an unread body after an early answer (405, 401, 413).
	rc := http.NewResponseController(w)
	deadline := h.readTimeout > 0 && rc.SetReadDeadline(time.Now().Add(h.readTimeout)) == nil
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return h.fail(w, r, &reject{http.StatusMethodNotAllowed, "method not allowed, use POST"})
	}
	if h.authorize != nil {
		if rj := h.authorize(r); rj != nil {
			return h.fail(w, r, rj)
		}
	}
	body, rj := h.readBody(w, r)
	if rj != nil {
		return h.fail(w, r, rj)
	}
	if deadline {
		// Lift it once the body is read, so that no read on the
		// connection times out while fn runs and cancels its context
		// (net/http lifts it too when the body ends, but not when its
		// background read began before the handler ran).
		_ = rc.SetReadDeadline(time.Time{})
	}
	d, rj := h.accept(r, body)
	if rj != nil {
		return h.fail(w, r, rj)
	}
	if d.call == nil {
		h.log(r.Context(), slog.LevelDebug, "convo: webhook skipped", slog.String("reason", d.skip))
		writeOK(w)
		return answer{status: http.StatusOK, event: d.event}
	}
	d.body = body
	rj, dup := h.dispatch(ctx, d)
	if rj != nil {
		a := h.fail(w, r, rj)
		a.event = d.event
		return a
	}
	writeOK(w)
	return answer{status: http.StatusOK, event: d.event, duplicate: dup}
}

// readBody reads the whole body, at most bodyLimit bytes.
func (h *webhookHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *reject) {
	if r.ContentLength > h.bodyLimit {
		return nil, &reject{http.StatusRequestEntityTooLarge, "body too large"}
	}
	rd := r.Body
	if rd == nil {
		// A request built by hand (middleware, a test) may have none; a
		// server's always has one.
		rd = http.NoBody
	}
	body, err := readAll(http.MaxBytesReader(w, rd, h.bodyLimit), r.ContentLength)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &reject{http.StatusRequestEntityTooLarge, "body too large"}
		}
		// What is left of the body cannot be read: close the connection
		// rather than let the server wait for the rest.
		w.Header().Set("Connection", "close")
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, &reject{http.StatusRequestTimeout, "body not received in time"}
		}
		return nil, &reject{http.StatusBadRequest, "could not read body"}
	}
	return body, nil
}

// readAll is io.ReadAll with a first buffer sized from the request's
// Content-Length (size, -1 when unknown; already checked against the
// limit), one byte over so that the final EOF needs no growth. It saves
// io.ReadAll's growths: 3 allocations and a third of the bytes a delivery
// in BenchmarkSelartiHandler and BenchmarkTalkJSHandler.
func readAll(rd io.Reader, size int64) ([]byte, error) {
	n := 512
	if size >= 0 {
		n = int(size) + 1
	}
	b := make([]byte, 0, n)
	for {
		m, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// keep adds d to the inbox, within the WithDedupTimeout budget, which
// holds even for an Add that ignores its context. It returns nil when the
// answer is 200.
func (h *webhookHandler) keep(ctx context.Context, d delivery) (rj *reject, duplicate bool) {
	kept := Delivery{Provider: h.provider, ID: d.id, Key: d.key, Body: d.body, Received: time.Now()}
	added, err := boundedCall(ctx, "inbox", h.dedupWait, callsDirectly(h.inbox), func(ctx context.Context) (bool, error) {
		return h.inbox.Add(ctx, kept)
	})
	switch {
	case err != nil && h.failOpen:
		h.log(ctx, slog.LevelWarn, "convo: webhook inbox failed, handling in the request", slog.String("id", d.id), slog.Any("error", err))
		return h.runUndeduplicated(ctx, d), false
	case err != nil:
		h.log(ctx, slog.LevelError, "convo: webhook inbox failed", slog.String("id", d.id), slog.Any("error", err))
		return &reject{http.StatusServiceUnavailable, "inbox unavailable"}, false
	case !added:
		h.log(ctx, slog.LevelDebug, "convo: webhook duplicate", slog.String("id", d.id))
		return nil, true
	}
	return nil, false
}

// handleInbox makes the inbox run the deliveries of the handler's
// provider: parse decodes a kept body, call runs the callback on the event.
func handleInbox[E any](h *webhookHandler, parse func([]byte) (E, error), call func(context.Context, E) error) {
	h.inbox.Handle(h.provider, func(ctx context.Context, d Delivery) (err error) {
		ev, err := parse(d.Body)
		if err != nil {
			// The handler verified and decoded this body once.
			return fmt.Errorf("%w: a kept delivery does not decode: %w", ErrPermanent, err)
		}
		ctx = contextWithDelivery(ctx, d)
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
				h.log(ctx, slog.LevelError, "convo: webhook handler panicked", slog.String("id", d.ID),
					slog.Int("attempt", d.Attempt), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			}
		}()
		return call(ctx, ev)
	})
}

// runUndeduplicated calls fn for d with no claim on its id.
func (h *webhookHandler) runUndeduplicated(ctx context.Context, d delivery) *reject {
	if err := h.run(ctx, d); err != nil && !errors.Is(err, ErrPermanent) {
		return &reject{http.StatusInternalServerError, "handler failed"}
	}
	return nil
}

// run calls fn for d, turning a panic into an error.
func (h *webhookHandler) run(ctx context.Context, d delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			h.log(ctx, slog.LevelError, "convo: webhook handler panicked", slog.String("id", d.id),
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	if err = d.call(ctx); err != nil {
		h.log(ctx, slog.LevelError, "convo: webhook handler failed", slog.String("id", d.id), slog.Any("error", err))
	}
	return err
}

// log logs to the handler's logger, or to slog.Default() when none was
// given.
func (h *webhookHandler) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	l := h.logger
	if l == nil {
		l = slog.Default()
	}
	l.LogAttrs(ctx, level, msg, append(attrs, slog.String("provider", string(h.provider)))...)
}

// fail writes rj as a JSON error body and logs it (path only: the query
// may hold the shared secret).
func (h *webhookHandler) fail(w http.ResponseWriter, r *http.Request, rj *reject) answer {
	level := slog.LevelWarn
	if rj.status >= 500 {
		level = slog.LevelError
	}
	h.log(r.Context(), level, "convo: webhook rejected", slog.Int("status", rj.status), slog.String("reason", rj.msg),
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{rj.msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rj.status)
	_, _ = w.Write(body)
	return answer{status: rj.status}
}

func writeOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{}"))
}

// ---------------------------------------------------------------------------
// Payload errors and the decoding helpers both providers' events use

// ErrInvalidPayload matches every *PayloadError: a webhook body that could
// not be decoded. Use errors.Is to test it.
var ErrInvalidPayload = errors.New("convo: invalid webhook payload")

// PayloadError is the error for a webhook body that could not be decoded.
// errors.Is(err, ErrInvalidPayload) matches it. It never holds a secret.
type PayloadError struct {
	Provider Provider // who sent the webhook
	Field    string   // the JSON key at fault ("data.user.name" when nested), or "" for the body as a whole
	Reason   string   // what is wrong
}

// Error names the provider, the field and the reason.
func (e *PayloadError) Error() string {
	var b strings.Builder
	b.WriteString("convo: ")
	b.WriteString(string(e.Provider))
	b.WriteString(" webhook: ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Is reports whether target is ErrInvalidPayload.
func (e *PayloadError) Is(target error) bool { return target == ErrInvalidPayload }

// checkObject rejects a body that is empty or not a JSON object.
func checkObject(p Provider, body []byte) error {
	b := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(b) == 0:
		return &PayloadError{Provider: p, Reason: "empty body"}
	case b[0] == '{':
		return nil
	case !json.Valid(b):
		return payloadError(p, "", json.Unmarshal(b, new(any)))
	}
	return &PayloadError{Provider: p, Reason: "want a JSON object, got " + describeJSON(b)}
}

// payloadError turns an encoding/json error into a *PayloadError; prefix
// goes before the key (for a nested value such as "data.").
func payloadError(p Provider, prefix string, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field != "" {
			field = prefix + field
		} else if prefix != "" {
			field = strings.TrimSuffix(prefix, ".")
		}
		if field == "" {
			return &PayloadError{Provider: p, Reason: "want a JSON object, got " + te.Value}
		}
		return &PayloadError{Provider: p, Field: field, Reason: "want " + wantOf(te.Type) + ", got " + te.Value}
	case errors.As(err, &se):
		return &PayloadError{Provider: p, Field: strings.TrimSuffix(prefix, "."), Reason: "not valid JSON: " + strings.TrimPrefix(se.Error(), "json: ")}
	}
	return &PayloadError{Provider: p, Field: strings.TrimSuffix(prefix, "."), Reason: err.Error()}
}

// wantOf says in words what a wire type accepts.
func wantOf(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[yesNo]():
		return `"yes", "no", true or false`
	case reflect.TypeFor[idText]():
		return "a string or a number"
	case reflect.TypeFor[TalkJSMention]():
		return "a user id or an object"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return t.String()
}

// typeError reports a JSON value that does not fit t. encoding/json adds
// the key it was found under.
func typeError(b []byte, t reflect.Type) error {
	return &json.UnmarshalTypeError{Value: describeJSON(b), Type: t}
}

// describeJSON names a JSON value for an error: its kind, and for a scalar
// its text, cut to 40 bytes.
func describeJSON(b []byte) string {
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string " + truncate(string(b), 40)
	case 't', 'f':
		return "bool " + string(b)
	case 'n':
		return "null"
	}
	return "number " + truncate(string(b), 40)
}

// idText is an id on the wire: a JSON string, or a number kept as its text.
type idText string

// UnmarshalJSON accepts a string, a number (kept as written) or null ("").
func (s *idText) UnmarshalJSON(b []byte) error {
	switch c := b[0]; {
	case c == '"':
		v, err := jsonString(b)
		*s = idText(v)
		return err
	case c == 'n': // null
		*s = ""
		return nil
	case c == '-' || c >= '0' && c <= '9':
		*s = idText(b)
		return nil
	}
	return typeError(b, reflect.TypeFor[idText]())
}

// jsonString decodes a JSON string literal that encoding/json has already
// checked. Without escapes and with valid UTF-8 it is the bytes between the
// quotes; otherwise encoding/json decodes it.
func jsonString(b []byte) (string, error) {
	inner := b[1 : len(b)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}
