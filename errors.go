package convo

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Use errors.Is to test an error returned by any call:
//
//	if errors.Is(err, convo.ErrNotFound) { ... }
var (
	// ErrNotFound matches an *APIError with status 404.
	ErrNotFound = errors.New("convo: not found")
	// ErrUnauthorized matches an *APIError with status 401 or 403, or
	// whose body refused the credential (Selarti's Bubble body with
	// error_class Unauthorized, whatever its status).
	ErrUnauthorized = errors.New("convo: unauthorized")
	// ErrRateLimited matches an *APIError with status 429.
	ErrRateLimited = errors.New("convo: rate limited")
	// ErrInvalidRequest matches an *APIError with status 400, 409 or 422:
	// the server refused the request. Input the SDK refuses before sending
	// anything is a *ValidationError, which matches ErrValidation instead.
	ErrInvalidRequest = errors.New("convo: invalid request")
	// ErrServer matches an *APIError with a 5xx status.
	ErrServer = errors.New("convo: server error")
	// ErrValidation matches a *ValidationError: the SDK refused the input
	// before sending anything.
	ErrValidation = errors.New("convo: validation failed")
	// ErrNotConfigured is returned, with nothing sent, by a service whose
	// provider was not configured (WithTalqui, WithTalkJS, WithSelarti),
	// and by every service of a Client that NewClient did not make.
	ErrNotConfigured = errors.New("convo: provider not configured")
	// ErrOutcomeUnknown matches a failure after which the server may have
	// acted: a transport failure after the request may have reached it (a
	// reset, an EOF, a timeout), an *APIError with a 5xx status (but 501)
	// or a 408, and a redirect (3xx) answering a call that is not safe to
	// repeat. It is sticky: once any attempt of a call may have reached
	// the server, the call's error matches it whatever ends the call
	// afterwards (the context ending in a backoff, a later dial failure,
	// a 429 when retries run out), but a 2xx, which matches
	// ErrBadResponse. For a call that sends something to a person, such
	// as Sessions.Start, the message may have been delivered: check
	// before you send it again (see the examples of SessionsService.Start).
	ErrOutcomeUnknown = errors.New("convo: outcome unknown, the request may have reached the server")
	// ErrPermanent, wrapped in the error a webhook callback returns, says
	// that handling the delivery again cannot succeed (say, a message for
	// a chat that no longer exists): the handler logs the error, answers
	// 200 and remembers the id, so the sender does not redeliver it. Any
	// other error answers 500 and lets a redelivery be handled.
	ErrPermanent = errors.New("convo: permanent failure, do not redeliver")
	// ErrBadResponse matches an *APIError for a successful (2xx) status
	// whose body could not be read or decoded, also when the context
	// ended while it was read (the context's error is in the chain). The
	// call took effect on the server: do not repeat a send because of it.
	ErrBadResponse = errors.New("convo: unreadable response")
)

// Provider names the API a call went to.
type Provider string

// The providers convo talks to.
const (
	ProviderTalqui  Provider = "talqui"
	ProviderTalkJS  Provider = "talkjs"
	ProviderSelarti Provider = "selarti"
)

// maxErrorBody is the most of an error response body an *APIError keeps.
const maxErrorBody = 64 << 10

// APIError is the error for a call the server answered with a status that
// is not a success (or a success whose body could not be read). It never
// holds a credential: the request's Authorization header is not kept, and
// any configured secret found in the body is redacted.
type APIError struct {
	Provider   Provider // the API that answered
	Method     string   // HTTP method of the call
	Path       string   // escaped request path, without the query
	StatusCode int      // HTTP status of the last attempt
	// Message is the server's message, read from a JSON body's "message",
	// "error" or "errorCode" (a Selarti body's Bubble status, message,
	// error_class and translation), followed by every field and reason of
	// Problems ("participants: must be an array of user ids").
	Message string
	// Problems are the fields the server refused and why, read from a
	// TalkJS body {"reasons": {"<field>": ["<reason>", …] | "<reason>"}},
	// sorted by field; each Field is the server's JSON name.
	Problems   []Problem
	Body       []byte        // the response body, at most 64 KiB
	RequestID  string        // the first of the X-Request-Id, Request-Id and X-Correlation-Id response headers, at most 200 bytes
	RetryAfter time.Duration // the server's Retry-After, if any
	Attempts   int           // how many times the request was sent

	// unknown: an attempt of the call may have been applied by the
	// server (an earlier 5xx, a reset after sending, a redirect answering
	// a call that is not safe to repeat). It matches ErrOutcomeUnknown
	// whatever status ended the call, but a 2xx.
	unknown bool
	// credential: the error of a credential step before a call (Selarti's
	// token exchange). The call it served was not sent, so the error
	// matches neither ErrOutcomeUnknown nor ErrBadResponse, whatever the
	// exchange met.
	credential bool
	// cause is the context's error when the context ended the call.
	cause error
	// refused: the body refused the credential (Bubble's error_class
	// Unauthorized on a 400, say). It matches ErrUnauthorized whatever
	// the status.
	refused bool
}

// Error describes the failed call, without any secret.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("convo: ")
	b.WriteString(string(e.Provider))
	b.WriteByte(' ')
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.Path)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteByte(')')
	}
	if e.RequestID != "" {
		b.WriteString(" [request id ")
		b.WriteString(e.RequestID)
		b.WriteByte(']')
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.cause != nil {
		b.WriteString(" (")
		b.WriteString(e.cause.Error())
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap gives the context's error when the context ended the call, so
// that errors.Is(err, context.Canceled) works on an *APIError too.
func (e *APIError) Unwrap() error { return e.cause }

// Is reports whether the status of e falls in the class of target, one of
// ErrNotFound, ErrUnauthorized, ErrRateLimited, ErrInvalidRequest,
// ErrServer, ErrOutcomeUnknown or ErrBadResponse.
func (e *APIError) Is(target error) bool {
	s := e.StatusCode
	switch target {
	case ErrNotFound:
		return s == http.StatusNotFound
	case ErrUnauthorized:
		return s == http.StatusUnauthorized || s == http.StatusForbidden || e.refused
	case ErrRateLimited:
		return s == http.StatusTooManyRequests
	case ErrInvalidRequest:
		return s == http.StatusBadRequest || s == http.StatusConflict || s == http.StatusUnprocessableEntity
	case ErrServer:
		return s >= 500 && s <= 599
	case ErrBadResponse:
		return s >= 200 && s <= 299 && !e.credential
	case ErrOutcomeUnknown:
		if s >= 200 && s <= 299 || e.credential {
			return false // the server acted: see ErrBadResponse
		}
		return e.unknown || s == http.StatusRequestTimeout || (s >= 500 && s <= 599 && s != http.StatusNotImplemented)
	}
	return false
}

// callError is the error of a call that got no response to read: a
// transport failure, or the context ending. Its text names the call and
// holds no secret; its chain keeps the cause, the context's error, and
// ErrOutcomeUnknown when the call may have reached the server.
type callError struct {
	msg  string
	errs []error
}

func (e *callError) Error() string   { return e.msg }
func (e *callError) Unwrap() []error { return e.errs }

// Format prints the text for every verb: %#v would print the causes by
// reflection, and a cause's fields may hold what a server sent.
func (e *callError) Format(f fmt.State, verb rune) { formatSafe(f, verb, e.msg) }

// messageFromBody reads a human message from a JSON error body: the first
// non-empty of "message", "error" (a string, or an object with "message")
// and "errorCode". It gives "" for a body that is not a JSON object.
func messageFromBody(body []byte) string {
	if len(body) == 0 || body[0] != '{' {
		return ""
	}
	var v struct {
		Message   json.RawMessage `json:"message"`
		Error     json.RawMessage `json:"error"`
		ErrorCode json.RawMessage `json:"errorCode"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	for _, raw := range []json.RawMessage{v.Message, v.Error, v.ErrorCode} {
		if s := jsonText(raw); s != "" {
			return s
		}
	}
	return ""
}

// maxReasons is the most problems an *APIError reads from a body.
const maxReasons = 50

// reasonsFromBody reads TalkJS's {"reasons": {field: [reason, …] | reason}}
// as problems, sorted by field, reasons in the order sent. A reason that
// is not a string is kept as its JSON text.
func reasonsFromBody(body []byte) []Problem {
	if len(body) == 0 || body[0] != '{' {
		return nil
	}
	var v struct {
		Reasons map[string]json.RawMessage `json:"reasons"`
	}
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var ps []Problem
	for _, field := range slices.Sorted(maps.Keys(v.Reasons)) {
		raw := v.Reasons[field]
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			list = []json.RawMessage{raw}
		}
		for _, r := range list {
			if len(ps) == maxReasons {
				return ps
			}
			reason := jsonText(r)
			if reason == "" {
				reason = string(r)
			}
			// finish redacts, then cuts Field to 200 bytes and Reason to 500.
			ps = append(ps, Problem{Field: field, Reason: reason})
		}
	}
	return ps
}

// withReasons is the Message of an *APIError for an error body: the
// server's message, then every problem of reasons.
func withReasons(msg string, reasons []Problem) string {
	var b strings.Builder
	b.WriteString(msg)
	for i, p := range reasons {
		switch {
		case i > 0:
			b.WriteString("; ")
		case b.Len() > 0:
			b.WriteString(": ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// jsonText renders a JSON string or number as text, or an object's
// "message" field; anything else gives "". It does not cut the text:
// finish redacts it first.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '{':
		var o struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &o) == nil {
			return o.Message
		}
	case 'n', '[', 't', 'f':
		return ""
	default:
		return string(raw)
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Problem is one reason a request was refused: by the SDK before it was
// sent (in a *ValidationError), or by the server (in an *APIError).
type Problem struct {
	// Field is the field at fault: in a *ValidationError named as in Go
	// ("Phone", "msgs[3].Sender", `Extra["channel"]`), in an *APIError
	// as the server named it.
	Field  string
	Reason string // the rule it breaks
}

// String gives "Field: Reason".
func (p Problem) String() string { return p.Field + ": " + p.Reason }

// ValidationError lists every problem found in a request, which was not
// sent. errors.Is(err, ErrValidation) matches it.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, field first.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("convo: validation failed: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Is reports whether target is ErrValidation.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }
