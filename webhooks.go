package convo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Webhook errors. Use errors.Is to test them.
var (
	// ErrInvalidPayload matches every *PayloadError: a webhook body that
	// could not be decoded.
	ErrInvalidPayload = errors.New("convo: invalid webhook payload")
	// ErrMissingSignature is returned by VerifyTalkJSSignature when the
	// signature or the timestamp is empty.
	ErrMissingSignature = errors.New("convo: webhook signature or timestamp missing")
	// ErrInvalidSignature is returned by VerifyTalkJSSignature when the
	// signature is not hex or does not match the body.
	ErrInvalidSignature = errors.New("convo: webhook signature invalid")
	// ErrNoSecret is returned by VerifyTalkJSSignature when the secret is
	// empty: verification fails closed.
	ErrNoSecret = errors.New("convo: no webhook secret configured")
	// ErrWrongEventType is returned by a typed accessor of TalkJSEvent, such
	// as MessageSent, called on an event of another type.
	ErrWrongEventType = errors.New("convo: webhook event is of another type")
)

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

// ---------------------------------------------------------------------------
// Selarti "All messages" webhook

// SelartiEventType is the webhook type of a Selarti event (wire key
// "wh_type").
type SelartiEventType string

// SelartiAllMessages is the type of the "All messages" integration: a new
// message in a dialog. Selarti may send other types to the same URL.
const SelartiAllMessages SelartiEventType = "all_messages"

// Author says who wrote a Selarti message (wire key "message_type").
type Author string

// The authors of a Selarti message. Only bot and operator messages are
// meant to be relayed to the user.
const (
	AuthorBot      Author = "bot"      // the AI
	AuthorOperator Author = "operator" // a human operator in the Selarti panel
	AuthorUser     Author = "user"     // the user, echoed back
)

// SelartiEvent is a Selarti "All messages" webhook. Its fields are those of
// the Selarti manual, in its order, under Go names.
//
// The yes/no fields (Close, GetContact, Interest, IsBot, Operator, Success)
// accept "yes"/"no" and "true"/"false" in any letter case ("Yes", "YES"),
// JSON true/false, and "" (Bubble's rendering of an empty value); a missing
// key or null is false, and anything else is an error naming the key.
//
// Selarti sends ids as strings; the id fields (and Contacts, a phone number
// in the manual's example) also accept a JSON number and keep its text as
// sent, so 12.50 stays "12.50".
//
// json.Marshal gives back the wire form: the seed's keys, yes/no as "yes" or
// "no", ids as strings; Raw is not marshalled. json.Unmarshal decodes as
// ParseSelartiEvent does.
type SelartiEvent struct {
	ChannelID      string           // channel_id: the channel the dialog runs on
	Close          bool             // close: the dialog is closed
	CompanyID      string           // company_id: the company the message belongs to
	Contacts       string           // contacts: contact details (phone, username, …)
	ExternalChatID string           // external_chat_id: your chat id, as sent as chat_id with the user's message
	GetContact     bool             // get_contact: the user gave a phone, email, …
	Interest       bool             // interest: the user showed interest
	IsBot          bool             // is_bot: Selarti thinks the other party is a bot
	ManagerID      string           // manager_id: the manager of the task
	MessageID      string           // message_id: the message's unique id (the handler dedups on it)
	MessageText    string           // message_text: the text of the message
	MessageType    Author           // message_type: bot, operator or user
	Operator       bool             // operator: the dialog was handed to an operator
	PanelURL       string           // panel_url: the dialog in the panel, where one can reply (needs a login)
	ShareURL       string           // share_url: a read-only view of the dialog
	Success        bool             // success: the dialog succeeded
	TaskID         string           // task_id: the task
	ThreadID       string           // thread_id: the dialog with the user
	Title          string           // title: the user's full name
	Type           SelartiEventType // wh_type: the webhook type; handle only SelartiAllMessages

	// Raw is the body as received. ParseSelartiEvent does not copy it: it
	// is the slice it was given.
	Raw json.RawMessage
}

// selartiWire is the wire form of a SelartiEvent: one json.Unmarshal into it
// decodes a body, with the yes/no and id fields in small types that decode
// without allocating more than a plain string would.
type selartiWire struct {
	ChannelID      idText           `json:"channel_id"`
	Close          yesNo            `json:"close"`
	CompanyID      idText           `json:"company_id"`
	Contacts       idText           `json:"contacts"`
	ExternalChatID idText           `json:"external_chat_id"`
	GetContact     yesNo            `json:"get_contact"`
	Interest       yesNo            `json:"interest"`
	IsBot          yesNo            `json:"is_bot"`
	ManagerID      idText           `json:"manager_id"`
	MessageID      idText           `json:"message_id"`
	MessageText    string           `json:"message_text"`
	MessageType    Author           `json:"message_type"`
	Operator       yesNo            `json:"operator"`
	PanelURL       string           `json:"panel_url"`
	ShareURL       string           `json:"share_url"`
	Success        yesNo            `json:"success"`
	TaskID         idText           `json:"task_id"`
	ThreadID       idText           `json:"thread_id"`
	Title          string           `json:"title"`
	Type           SelartiEventType `json:"wh_type"`
}

// ParseSelartiEvent decodes a Selarti webhook body. An error is a
// *PayloadError naming the JSON key at fault. The event's Raw is body
// itself, not a copy.
func ParseSelartiEvent(body []byte) (*SelartiEvent, error) {
	ev := new(SelartiEvent)
	if err := ev.decode(body); err != nil {
		return nil, err
	}
	ev.Raw = body
	return ev, nil
}

func (e *SelartiEvent) decode(body []byte) error {
	if err := checkObject(ProviderSelarti, body); err != nil {
		return err
	}
	var w selartiWire
	if err := json.Unmarshal(body, &w); err != nil {
		return payloadError(ProviderSelarti, "", err)
	}
	*e = SelartiEvent{
		ChannelID:      string(w.ChannelID),
		Close:          bool(w.Close),
		CompanyID:      string(w.CompanyID),
		Contacts:       string(w.Contacts),
		ExternalChatID: string(w.ExternalChatID),
		GetContact:     bool(w.GetContact),
		Interest:       bool(w.Interest),
		IsBot:          bool(w.IsBot),
		ManagerID:      string(w.ManagerID),
		MessageID:      string(w.MessageID),
		MessageText:    w.MessageText,
		MessageType:    w.MessageType,
		Operator:       bool(w.Operator),
		PanelURL:       w.PanelURL,
		ShareURL:       w.ShareURL,
		Success:        bool(w.Success),
		TaskID:         string(w.TaskID),
		ThreadID:       string(w.ThreadID),
		Title:          w.Title,
		Type:           w.Type,
	}
	return nil
}

// UnmarshalJSON decodes a Selarti webhook body as ParseSelartiEvent does,
// keeping a copy of it in Raw.
func (e *SelartiEvent) UnmarshalJSON(b []byte) error {
	if err := e.decode(b); err != nil {
		return err
	}
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// MarshalJSON gives the wire form of e, as Selarti sends it.
func (e SelartiEvent) MarshalJSON() ([]byte, error) {
	return json.Marshal(selartiWire{
		ChannelID:      idText(e.ChannelID),
		Close:          yesNo(e.Close),
		CompanyID:      idText(e.CompanyID),
		Contacts:       idText(e.Contacts),
		ExternalChatID: idText(e.ExternalChatID),
		GetContact:     yesNo(e.GetContact),
		Interest:       yesNo(e.Interest),
		IsBot:          yesNo(e.IsBot),
		ManagerID:      idText(e.ManagerID),
		MessageID:      idText(e.MessageID),
		MessageText:    e.MessageText,
		MessageType:    e.MessageType,
		Operator:       yesNo(e.Operator),
		PanelURL:       e.PanelURL,
		ShareURL:       e.ShareURL,
		Success:        yesNo(e.Success),
		TaskID:         idText(e.TaskID),
		ThreadID:       idText(e.ThreadID),
		Title:          e.Title,
		Type:           e.Type,
	})
}

// yesNo is a Selarti yes/no flag on the wire.
type yesNo bool

// UnmarshalJSON accepts null, true, false, and the strings "yes", "no",
// "true", "false" (any case) and "". Any other value gives an
// *json.UnmarshalTypeError, which encoding/json fills with the key.
func (y *yesNo) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n': // null
		*y = false
		return nil
	case 't':
		*y = true
		return nil
	case 'f':
		*y = false
		return nil
	case '"':
		// Compare the bytes between the quotes: no string is made, so a
		// flag costs no allocation. Only an escaped word is decoded.
		s := b[1 : len(b)-1]
		if bytes.IndexByte(s, '\\') >= 0 {
			u, err := jsonString(b)
			if err != nil {
				return err
			}
			s = []byte(u)
		}
		switch {
		case bytes.EqualFold(s, []byte("yes")), bytes.EqualFold(s, []byte("true")):
			*y = true
			return nil
		case bytes.EqualFold(s, []byte("no")), bytes.EqualFold(s, []byte("false")), len(s) == 0:
			*y = false
			return nil
		}
	}
	return typeError(b, reflect.TypeFor[yesNo]())
}

// MarshalJSON writes "yes" or "no".
func (y yesNo) MarshalJSON() ([]byte, error) {
	if y {
		return []byte(`"yes"`), nil
	}
	return []byte(`"no"`), nil
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

// wantOf says in words what a wire type accepts.
func wantOf(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[yesNo]():
		return `"yes", "no", true or false`
	case reflect.TypeFor[idText]():
		return "a string or a number"
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

// ---------------------------------------------------------------------------
// TalkJS webhooks

// TalkJSEventType is the type of a TalkJS webhook event. Types not listed
// here are not an error: compare with the constants and ignore the rest.
type TalkJSEventType string

// The TalkJS webhook event types.
const (
	TalkJSUserCreated             TalkJSEventType = "user.created"
	TalkJSUserUpdated             TalkJSEventType = "user.updated"
	TalkJSMessageSent             TalkJSEventType = "message.sent"
	TalkJSMessageRead             TalkJSEventType = "message.read"
	TalkJSMessageUpdated          TalkJSEventType = "message.updated"
	TalkJSMessageDeleted          TalkJSEventType = "message.deleted"
	TalkJSConversationDeleted     TalkJSEventType = "conversation.deleted"
	TalkJSNotificationTriggered   TalkJSEventType = "notification.triggered"
	TalkJSNotificationSent        TalkJSEventType = "notification.sent"
	TalkJSNotificationDelivered   TalkJSEventType = "notification.delivered"
	TalkJSNotificationBounced     TalkJSEventType = "notification.bounced"
	TalkJSNotificationOpened      TalkJSEventType = "notification.opened"
	TalkJSNotificationLinkClicked TalkJSEventType = "notification.link.clicked"
)

// TalkJSEvent is a TalkJS webhook: the envelope, with the event's data left
// raw. Typed accessors (MessageSent, User) decode the data of some types.
type TalkJSEvent struct {
	ID   string          // the event id; the handler dedups on it
	Type TalkJSEventType // what happened
	// CreatedAt is when the event happened, in UTC. TalkJS sends Unix
	// milliseconds; a number, a numeric string and an RFC 3339 string are
	// accepted. It is the zero time when the body has no createdAt.
	CreatedAt time.Time
	Data      json.RawMessage // the event's data object, as sent
	Raw       json.RawMessage // the whole body as received (not a copy)
}

type talkjsWire struct {
	ID        idText          `json:"id"`
	Type      TalkJSEventType `json:"type"`
	CreatedAt json.RawMessage `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

// ParseTalkJSEvent decodes a TalkJS webhook body. It does not check the
// signature: verify first (VerifyTalkJSSignature, or use NewTalkJSHandler).
// An error is a *PayloadError naming the key at fault. The event's Raw is
// body itself, not a copy.
func ParseTalkJSEvent(body []byte) (*TalkJSEvent, error) {
	if err := checkObject(ProviderTalkJS, body); err != nil {
		return nil, err
	}
	var w talkjsWire
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, payloadError(ProviderTalkJS, "", err)
	}
	created, err := parseMillis(w.CreatedAt)
	if err != nil {
		return nil, &PayloadError{Provider: ProviderTalkJS, Field: "createdAt", Reason: err.Error()}
	}
	if len(w.Data) > 0 && w.Data[0] != '{' && w.Data[0] != 'n' {
		return nil, &PayloadError{Provider: ProviderTalkJS, Field: "data", Reason: "want an object, got " + describeJSON(w.Data)}
	}
	return &TalkJSEvent{ID: string(w.ID), Type: w.Type, CreatedAt: created, Data: w.Data, Raw: body}, nil
}

// parseMillis reads a TalkJS timestamp: Unix milliseconds as a number or a
// numeric string, or an RFC 3339 string. Missing or null is the zero time.
func parseMillis(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || raw[0] == 'n' {
		return time.Time{}, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return time.Time{}, err
		}
		if t, err := time.Parse(time.RFC3339Nano, text); err == nil {
			return t.UTC(), nil
		}
	} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return time.Time{}, errors.New("want Unix milliseconds, got " + describeJSON(raw))
	}
	if ms, err := strconv.ParseInt(text, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1<<62 {
		return time.Time{}, errors.New("want Unix milliseconds, got " + describeJSON(raw))
	}
	return time.UnixMilli(int64(f)).UTC(), nil
}

// MessageSentData is the data of a message.sent event.
type MessageSentData struct {
	Conversation *Conversation `json:"conversation"`
	Message      *Message      `json:"message"`
	Sender       *User         `json:"sender"` // nil for a system message
}

// MessageSent decodes the data of a message.sent event. It fails with
// ErrWrongEventType for an event of another type, and with a *PayloadError
// when the data does not decode or has no message.
func (e *TalkJSEvent) MessageSent() (*MessageSentData, error) {
	if e.Type != TalkJSMessageSent {
		return nil, fmt.Errorf("%w: %q, not %q", ErrWrongEventType, e.Type, TalkJSMessageSent)
	}
	var d MessageSentData
	if err := e.decodeData(&d); err != nil {
		return nil, err
	}
	if d.Message == nil {
		return nil, &PayloadError{Provider: ProviderTalkJS, Field: "data.message", Reason: "missing"}
	}
	return &d, nil
}

// User decodes the user of a user.created or user.updated event. It fails
// with ErrWrongEventType for an event of another type, and with a
// *PayloadError when the data does not decode or has no user.
func (e *TalkJSEvent) User() (*User, error) {
	if e.Type != TalkJSUserCreated && e.Type != TalkJSUserUpdated {
		return nil, fmt.Errorf("%w: %q, not a user event", ErrWrongEventType, e.Type)
	}
	var d struct {
		User *User `json:"user"`
	}
	if err := e.decodeData(&d); err != nil {
		return nil, err
	}
	if d.User == nil {
		return nil, &PayloadError{Provider: ProviderTalkJS, Field: "data.user", Reason: "missing"}
	}
	return d.User, nil
}

func (e *TalkJSEvent) decodeData(v any) error {
	if len(e.Data) == 0 {
		return &PayloadError{Provider: ProviderTalkJS, Field: "data", Reason: "missing"}
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return payloadError(ProviderTalkJS, "data.", err)
	}
	return nil
}

// talkjsMAC is HMAC-SHA256(secret, timestamp + "." + body).
func talkjsMAC(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignTalkJSWebhook signs a webhook body as TalkJS does: the HMAC-SHA256 of
// timestamp + "." + body keyed with secret, in uppercase hex. It is meant for
// tests and fakes that deliver webhooks.
func SignTalkJSWebhook(secret, timestamp string, body []byte) string {
	return strings.ToUpper(hex.EncodeToString(talkjsMAC(secret, timestamp, body)))
}

// VerifyTalkJSSignature checks a TalkJS webhook: signature (header
// X-TalkJS-Signature, hex in either case) must be the HMAC-SHA256 of
// timestamp (header X-TalkJS-Timestamp) + "." + body, keyed with the app's
// webhook secret key. Give body exactly as received. The comparison takes
// constant time.
//
// It returns nil, ErrNoSecret (secret is empty: it fails closed),
// ErrMissingSignature (signature or timestamp empty) or ErrInvalidSignature.
// The errors never hold the secret or the expected signature.
func VerifyTalkJSSignature(secret, timestamp string, body []byte, signature string) error {
	return verifyTalkJS([]string{secret}, timestamp, body, signature)
}

// verifyTalkJS accepts a signature made with any of secrets.
func verifyTalkJS(secrets []string, timestamp string, body []byte, signature string) error {
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	for _, s := range secrets {
		if s == "" {
			return ErrNoSecret
		}
	}
	if signature == "" || timestamp == "" {
		return ErrMissingSignature
	}
	if len(signature) != 2*sha256.Size {
		return ErrInvalidSignature
	}
	got, err := hex.DecodeString(signature)
	if err != nil {
		return ErrInvalidSignature
	}
	for _, s := range secrets {
		if hmac.Equal(got, talkjsMAC(s, timestamp, body)) {
			return nil
		}
	}
	return ErrInvalidSignature
}

// ---------------------------------------------------------------------------
// Handler options

// Defaults of the webhook handlers.
const (
	defaultBodyLimit     = 1 << 20
	defaultDedupCapacity = 10_000
)

// hookConfig holds the settings both handlers share.
type hookConfig struct {
	bodyLimit int64
	store     DedupStore
	logger    *slog.Logger
}

type selartiHookConfig struct {
	hookConfig
	userMessages bool
	secrets      [][sha256.Size]byte // SHA-256 of each accepted shared secret
}

type talkjsHookConfig struct {
	hookConfig
	secrets []string
	maxAge  time.Duration
	now     func() time.Time
}

// SelartiOption configures NewSelartiHandler: a HandlerOption or one of the
// Selarti options (WithUserMessages, WithSharedSecret).
type SelartiOption interface{ applySelarti(*selartiHookConfig) }

// TalkJSOption configures NewTalkJSHandler: a HandlerOption or one of the
// TalkJS options (WithExtraSecrets, WithMaxAge).
type TalkJSOption interface{ applyTalkJS(*talkjsHookConfig) }

// HandlerOption configures either webhook handler. Options with bad input
// (a body limit below 1, a nil store) panic when the handler is built.
type HandlerOption func(*hookConfig)

func (o HandlerOption) applySelarti(c *selartiHookConfig) { o(&c.hookConfig) }
func (o HandlerOption) applyTalkJS(c *talkjsHookConfig)   { o(&c.hookConfig) }

type selartiOption func(*selartiHookConfig)

func (o selartiOption) applySelarti(c *selartiHookConfig) { o(c) }

type talkjsOption func(*talkjsHookConfig)

func (o talkjsOption) applyTalkJS(c *talkjsHookConfig) { o(c) }

// WithBodyLimit sets the largest body a handler reads, in bytes (default
// 1 MiB). A larger body is answered 413 and not read further. It panics
// when the handler is built if n is less than 1.
func WithBodyLimit(n int64) HandlerOption {
	return func(c *hookConfig) {
		if n < 1 {
			panic("convo: WithBodyLimit: the limit must be at least 1 byte")
		}
		c.bodyLimit = n
	}
}

// WithDedupStore sets the store that remembers handled deliveries, for
// example one shared by several replicas. The default is an in-memory store
// per handler (NewMemoryDedupStore(10000)). It panics when the handler is
// built if s is nil.
func WithDedupStore(s DedupStore) HandlerOption {
	return func(c *hookConfig) {
		if s == nil {
			panic("convo: WithDedupStore: nil store")
		}
		c.store = s
	}
}

// WithHandlerLogger logs what a handler rejects or fails on (nil, the
// default, logs nothing). No log line holds a secret, a signature or the
// request's query string.
func WithHandlerLogger(l *slog.Logger) HandlerOption {
	return func(c *hookConfig) { c.logger = l }
}

// WithUserMessages passes the user's own messages (message_type "user") to
// fn as well. By default the Selarti handler answers them 200 without a
// call, as Selarti's manual advises.
func WithUserMessages() SelartiOption {
	return selartiOption(func(c *selartiHookConfig) { c.userMessages = true })
}

// WithSharedSecret makes the Selarti handler require a secret, since
// Selarti signs nothing. A request must carry it in the header
// X-Convo-Secret or, as Selarti's integration form only takes a URL, in the
// query parameter "secret" (https://example.com/hooks/selarti?secret=…); the
// header wins when both are present. A missing or wrong secret is answered
// 401 without reading the body. The comparison takes constant time.
//
// Give it more than once to accept several secrets while rotating. It
// panics when the handler is built if secret is empty.
func WithSharedSecret(secret string) SelartiOption {
	return selartiOption(func(c *selartiHookConfig) {
		if secret == "" {
			panic("convo: WithSharedSecret: empty secret")
		}
		c.secrets = append(c.secrets, sha256.Sum256([]byte(secret)))
	})
}

// WithExtraSecrets makes the TalkJS handler accept signatures made with
// these secret keys as well as the one given to NewTalkJSHandler, for a key
// rotation. It panics when the handler is built if a secret is empty.
func WithExtraSecrets(secrets ...string) TalkJSOption {
	return talkjsOption(func(c *talkjsHookConfig) {
		for _, s := range secrets {
			if s == "" {
				panic("convo: WithExtraSecrets: empty secret")
			}
		}
		c.secrets = append(c.secrets, secrets...)
	})
}

// WithMaxAge makes the TalkJS handler answer 401 to a delivery whose
// X-TalkJS-Timestamp is more than d away from now, either way, against
// replays. TalkJS does not document the timestamp's unit: a value of at
// least 10^11 is read as Unix milliseconds, a smaller one as Unix seconds,
// and one that is not an integer is rejected. Off by default. It panics
// when the handler is built if d is not positive.
func WithMaxAge(d time.Duration) TalkJSOption {
	return talkjsOption(func(c *talkjsHookConfig) {
		if d <= 0 {
			panic("convo: WithMaxAge: the age must be positive")
		}
		c.maxAge = d
	})
}

// ---------------------------------------------------------------------------
// Handlers

// NewSelartiHandler returns an http.Handler for Selarti's "All messages"
// webhook that calls fn once per new bot or operator message, with the
// request's context. It answers:
//
//   - 200 with body {} when fn succeeded, and without calling fn for a
//     wh_type other than "all_messages", for a user message (unless
//     WithUserMessages), for a message_type it does not know, and for a
//     message_id already handled;
//   - 400 for a body that does not decode, 401 for a missing or wrong shared
//     secret (WithSharedSecret), 405 (with Allow: POST) for a method other
//     than POST, 409 while another delivery of the same message_id is being
//     handled, 413 for a body over the limit (WithBodyLimit);
//   - 500 when fn returns an error or panics (the message_id is then
//     forgotten, so a redelivery is handled), 503 when the dedup store fails.
//
// Error bodies are JSON: {"error":"…"}. A message without message_id is
// handled every time it comes. Dedup is in memory by default; see
// WithDedupStore for several replicas.
//
// NewSelartiHandler panics on a programmer error: a nil fn or an option
// with bad input, such as WithSharedSecret("").
func NewSelartiHandler(fn func(ctx context.Context, ev *SelartiEvent) error, opts ...SelartiOption) http.Handler {
	if fn == nil {
		panic("convo: NewSelartiHandler: nil fn")
	}
	c := selartiHookConfig{hookConfig: defaultHookConfig()}
	for _, o := range opts {
		o.applySelarti(&c)
	}
	c.hookConfig.fillDefaults()
	h := &webhookHandler{hookConfig: c.hookConfig, provider: ProviderSelarti}
	if len(c.secrets) > 0 {
		h.authorize = c.authorize
	}
	h.accept = func(_ *http.Request, body []byte) (delivery, *reject) {
		ev, err := ParseSelartiEvent(body)
		if err != nil {
			return delivery{}, &reject{http.StatusBadRequest, err.Error()}
		}
		if ev.Type != SelartiAllMessages {
			return delivery{skip: "wh_type " + string(ev.Type)}, nil
		}
		switch ev.MessageType {
		case AuthorBot, AuthorOperator:
		case AuthorUser:
			if !c.userMessages {
				return delivery{skip: "user message"}, nil
			}
		default:
			return delivery{skip: "message_type " + string(ev.MessageType)}, nil
		}
		return delivery{id: ev.MessageID, call: func(ctx context.Context) error { return fn(ctx, ev) }}, nil
	}
	return h
}

// authorize checks the shared secret from the header or the query.
func (c *selartiHookConfig) authorize(r *http.Request) *reject {
	given := r.Header.Get("X-Convo-Secret")
	if given == "" {
		given = r.URL.Query().Get("secret")
	}
	if given != "" {
		sum := sha256.Sum256([]byte(given))
		ok := 0
		for _, s := range c.secrets {
			ok |= subtle.ConstantTimeCompare(sum[:], s[:])
		}
		if ok == 1 {
			return nil
		}
	}
	return &reject{http.StatusUnauthorized, "missing or wrong secret"}
}

// NewTalkJSHandler returns an http.Handler for TalkJS webhooks that checks
// each delivery's signature with secret (the app's secret key used for
// webhooks; more with WithExtraSecrets) before it parses the body, then
// calls fn once per event id, with the request's context. A request without
// the signature headers is refused before its body is read. It answers:
//
//   - 200 with body {} when fn succeeded, or without a call for an event id
//     already handled;
//   - 400 for a body that does not decode, 401 for a missing or bad
//     signature (X-TalkJS-Signature, X-TalkJS-Timestamp) or a stale
//     timestamp (WithMaxAge), 405 (with Allow: POST) for a method other
//     than POST, 409 while another delivery of the same id is being handled,
//     413 for a body over the limit (WithBodyLimit);
//   - 500 when fn returns an error or panics (the id is then forgotten, so
//     TalkJS's one retry is handled), 503 when the dedup store fails.
//
// TalkJS waits 5 seconds for an answer: keep fn short, or queue the event.
// An event without id is handled every time it comes.
//
// NewTalkJSHandler panics on a programmer error: an empty secret, a nil fn
// or an option with bad input.
func NewTalkJSHandler(secret string, fn func(ctx context.Context, ev *TalkJSEvent) error, opts ...TalkJSOption) http.Handler {
	if secret == "" {
		panic("convo: NewTalkJSHandler: empty secret")
	}
	if fn == nil {
		panic("convo: NewTalkJSHandler: nil fn")
	}
	c := talkjsHookConfig{hookConfig: defaultHookConfig(), secrets: []string{secret}, now: time.Now}
	for _, o := range opts {
		o.applyTalkJS(&c)
	}
	c.hookConfig.fillDefaults()
	h := &webhookHandler{hookConfig: c.hookConfig, provider: ProviderTalkJS}
	h.authorize = func(r *http.Request) *reject {
		if r.Header.Get("X-TalkJS-Signature") == "" || r.Header.Get("X-TalkJS-Timestamp") == "" {
			return &reject{http.StatusUnauthorized, "missing signature"}
		}
		return nil
	}
	h.accept = func(r *http.Request, body []byte) (delivery, *reject) {
		ts := r.Header.Get("X-TalkJS-Timestamp")
		if verifyTalkJS(c.secrets, ts, body, r.Header.Get("X-TalkJS-Signature")) != nil {
			return delivery{}, &reject{http.StatusUnauthorized, "invalid signature"}
		}
		if c.maxAge > 0 && !c.fresh(ts) {
			return delivery{}, &reject{http.StatusUnauthorized, "stale or unreadable timestamp"}
		}
		ev, err := ParseTalkJSEvent(body)
		if err != nil {
			return delivery{}, &reject{http.StatusBadRequest, err.Error()}
		}
		return delivery{id: ev.ID, call: func(ctx context.Context) error { return fn(ctx, ev) }}, nil
	}
	return h
}

// fresh reports whether the timestamp ts is within maxAge of now.
func (c *talkjsHookConfig) fresh(ts string) bool {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	var t time.Time
	if n >= 1e11 || n <= -1e11 {
		t = time.UnixMilli(n)
	} else {
		t = time.Unix(n, 0)
	}
	age := c.now().Sub(t)
	return age <= c.maxAge && age >= -c.maxAge
}

func defaultHookConfig() hookConfig {
	return hookConfig{bodyLimit: defaultBodyLimit}
}

// fillDefaults makes the default store unless an option gave one, so a
// handler with its own store does not make an unused one.
func (c *hookConfig) fillDefaults() {
	if c.store == nil {
		c.store = NewMemoryDedupStore(defaultDedupCapacity)
	}
}

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
	id   string                          // the dedup id, "" to handle every time
	call func(ctx context.Context) error // fn bound to the event; nil to answer 200 without a call
	skip string                          // why call is nil, for the log
}

// reject is an answer decided before fn runs.
type reject struct {
	status int
	msg    string
}

// ServeHTTP checks, reads, deduplicates and dispatches one delivery.
func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, &reject{http.StatusMethodNotAllowed, "method not allowed, use POST"})
		return
	}
	if h.authorize != nil {
		if rj := h.authorize(r); rj != nil {
			h.fail(w, r, rj)
			return
		}
	}
	body, rj := h.readBody(w, r)
	if rj != nil {
		h.fail(w, r, rj)
		return
	}
	d, rj := h.accept(r, body)
	if rj != nil {
		h.fail(w, r, rj)
		return
	}
	if d.call == nil {
		h.log(r.Context(), slog.LevelDebug, "convo: webhook skipped", slog.String("reason", d.skip))
		writeOK(w)
		return
	}
	if rj := h.dispatch(r.Context(), d); rj != nil {
		h.fail(w, r, rj)
		return
	}
	writeOK(w)
}

// readBody reads the whole body, at most bodyLimit bytes.
func (h *webhookHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *reject) {
	if r.ContentLength > h.bodyLimit {
		return nil, &reject{http.StatusRequestEntityTooLarge, "body too large"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.bodyLimit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &reject{http.StatusRequestEntityTooLarge, "body too large"}
		}
		return nil, &reject{http.StatusBadRequest, "could not read body"}
	}
	return body, nil
}

// dispatch claims the delivery's id, calls fn, and completes or releases
// the id. It returns nil when the answer is 200.
func (h *webhookHandler) dispatch(ctx context.Context, d delivery) *reject {
	if d.id == "" {
		if err := h.run(ctx, d); err != nil && !errors.Is(err, ErrPermanent) {
			return &reject{http.StatusInternalServerError, "handler failed"}
		}
		return nil
	}
	key := string(h.provider) + ":" + d.id
	state, err := h.store.Claim(ctx, key)
	if err != nil {
		h.log(ctx, slog.LevelError, "convo: webhook dedup store failed", slog.String("op", "claim"), slog.String("id", d.id), slog.Any("error", err))
		return &reject{http.StatusServiceUnavailable, "dedup store unavailable"}
	}
	switch state {
	case ClaimNew:
	case ClaimDone:
		h.log(ctx, slog.LevelDebug, "convo: webhook duplicate", slog.String("id", d.id))
		return nil
	case ClaimInProgress:
		return &reject{http.StatusConflict, "delivery in progress"}
	default:
		h.log(ctx, slog.LevelError, "convo: webhook dedup store failed", slog.String("op", "claim"), slog.String("id", d.id), slog.String("state", state.String()))
		return &reject{http.StatusServiceUnavailable, "dedup store unavailable"}
	}
	// Complete or release even when the request was cancelled meanwhile.
	after := context.WithoutCancel(ctx)
	if err := h.run(ctx, d); err != nil && !errors.Is(err, ErrPermanent) {
		if err := h.store.Release(after, key); err != nil {
			h.log(ctx, slog.LevelError, "convo: webhook dedup store failed", slog.String("op", "release"), slog.String("id", d.id), slog.Any("error", err))
		}
		return &reject{http.StatusInternalServerError, "handler failed"}
	}
	if err := h.store.Complete(after, key); err != nil {
		// fn did its work: answering an error would bring a redelivery.
		h.log(ctx, slog.LevelError, "convo: webhook dedup store failed", slog.String("op", "complete"), slog.String("id", d.id), slog.Any("error", err))
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

func (h *webhookHandler) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if h.logger == nil {
		return
	}
	h.logger.LogAttrs(ctx, level, msg, append(attrs, slog.String("provider", string(h.provider)))...)
}

// fail writes rj as a JSON error body and logs it (path only: the query
// may hold the shared secret).
func (h *webhookHandler) fail(w http.ResponseWriter, r *http.Request, rj *reject) {
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
}

func writeOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{}"))
}
