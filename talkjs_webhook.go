package convo

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is TalkJS's webhooks: the handler and its options first, then
// the signature, then the events and their typed data.

// TalkJS webhook errors. Use errors.Is to test them.
var (
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

// talkjsHookConfig holds the TalkJS handler's own options.
type talkjsHookConfig struct {
	secrets []string     // WithExtraSecrets
	keys    []*talkjsKey // the secret and the extra ones, for verifying
	maxAge  time.Duration
	now     func() time.Time
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
//     signature (X-TalkJS-Signature, X-TalkJS-Timestamp) or a timestamp
//     more than 5 minutes from now (WithMaxAge), 405 (with Allow: POST)
//     for a method other than POST, 408 for a body that does not arrive
//     within the read timeout (WithReadTimeout), 409 while another
//     delivery of the same id is being handled, 413 for a body over the
//     limit (WithBodyLimit);
//   - 500 when fn returns an error or panics (the id is then forgotten, so
//     TalkJS's one retry is handled), 503 when the dedup store fails (unless
//     WithDedupFailOpen).
//
// TalkJS waits 5 seconds for an answer: keep fn short, or queue the event.
// An event without id is handled every time it comes.
//
// It takes the options of both handlers and those of TalkJS
// (WithExtraSecrets, WithMaxAge). NewTalkJSHandler panics on a programmer
// error: an empty secret, a nil fn, an option with bad input, or an option
// of the Selarti handler.
func NewTalkJSHandler(secret string, fn func(ctx context.Context, ev *TalkJSEvent) error, opts ...HandlerOption) http.Handler {
	if secret == "" {
		panic("convo: NewTalkJSHandler: empty secret")
	}
	if fn == nil {
		panic("convo: NewTalkJSHandler: nil fn")
	}
	h := &webhookHandler{hookConfig: newHookConfig(ProviderTalkJS, "NewTalkJSHandler", opts), provider: ProviderTalkJS}
	c := &h.talkjs
	c.keys = make([]*talkjsKey, 0, 1+len(c.secrets))
	for _, s := range append([]string{secret}, c.secrets...) {
		c.keys = append(c.keys, newTalkJSKey(s))
	}
	c.now = time.Now
	h.authorize = func(r *http.Request) *reject {
		if headerValue(r.Header, talkjsSignatureHeader) == "" || headerValue(r.Header, talkjsTimestampHeader) == "" {
			return &reject{http.StatusUnauthorized, "missing signature"}
		}
		return nil
	}
	h.accept = func(r *http.Request, body []byte) (delivery, *reject) {
		ts := headerValue(r.Header, talkjsTimestampHeader)
		if verifyTalkJS(c.keys, ts, body, headerValue(r.Header, talkjsSignatureHeader)) != nil {
			return delivery{}, &reject{http.StatusUnauthorized, "invalid signature"}
		}
		if c.maxAge > 0 && !c.fresh(ts) {
			return delivery{}, &reject{http.StatusUnauthorized, "stale or unreadable timestamp"}
		}
		ev, err := ParseTalkJSEvent(body)
		if err != nil {
			return delivery{}, &reject{http.StatusBadRequest, err.Error()}
		}
		d := delivery{event: string(ev.Type), id: ev.ID, call: func(ctx context.Context) error { return fn(ctx, ev) }}
		if h.inbox != nil {
			d.key = ev.conversationID()
		}
		return d, nil
	}
	if h.inbox != nil {
		handleInbox(h, ParseTalkJSEvent, fn)
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

// The TalkJS headers in their canonical spelling (textproto's, as net/http
// stores them), so that a lookup is a plain map read: Header.Get with
// "X-TalkJS-Signature" canonicalises the key anew on each call, 4
// allocations a delivery for the two headers read twice each.
const (
	talkjsSignatureHeader = "X-Talkjs-Signature" // X-TalkJS-Signature
	talkjsTimestampHeader = "X-Talkjs-Timestamp" // X-TalkJS-Timestamp
)

// headerValue is h.Get(key) for a key already in canonical form.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// WithExtraSecrets makes the TalkJS handler accept signatures made with
// these secret keys as well as the one given to NewTalkJSHandler, for a key
// rotation. It panics when the handler is built if a secret is empty. An
// option of NewTalkJSHandler only.
func WithExtraSecrets(secrets ...string) HandlerOption {
	return HandlerOption{name: "WithExtraSecrets", provider: ProviderTalkJS, apply: func(c *hookConfig) {
		for _, s := range secrets {
			if s == "" {
				panic("convo: WithExtraSecrets: empty secret")
			}
		}
		c.talkjs.secrets = append(c.talkjs.secrets, secrets...)
	}}
}

// defaultTalkJSMaxAge is the TalkJS handler's replay window, either way of
// now.
const defaultTalkJSMaxAge = 5 * time.Minute

// WithMaxAge sets the TalkJS handler's replay window: a delivery whose
// X-TalkJS-Timestamp is more than d away from now, either way, is answered
// 401, so a signed delivery cannot be replayed later. The default is 5
// minutes; WithMaxAge(0) turns the check off, for those who must accept old
// deliveries (a replay of an event without id then runs fn again). TalkJS
// does not document the timestamp's unit: a value of at least 10^11 is read
// as Unix milliseconds, a smaller one as Unix seconds, and one that is not
// an integer is rejected. It panics when the handler is built if d is
// negative. An option of NewTalkJSHandler only.
func WithMaxAge(d time.Duration) HandlerOption {
	return HandlerOption{name: "WithMaxAge", provider: ProviderTalkJS, apply: func(c *hookConfig) {
		if d < 0 {
			panic("convo: WithMaxAge: the age must not be negative")
		}
		c.talkjs.maxAge = d
	}}
}

// ---------------------------------------------------------------------------
// Signatures

// talkjsKey is one webhook secret key with a pool of HMACs keyed with it.
// A pooled HMAC and a fixed-size signature array save 10 allocations a
// delivery (BenchmarkTalkJSHandler: 35 to 25 allocs/op).
type talkjsKey struct {
	secret []byte
	pool   sync.Pool // of *talkjsMAC
}

// talkjsMAC is an HMAC-SHA256 with room for the "timestamp." prefix and
// the sum, so that a signature costs no allocation once it is pooled.
type talkjsMAC struct {
	h      hash.Hash
	prefix []byte
	sum    [sha256.Size]byte
}

func newTalkJSKey(secret string) *talkjsKey { return &talkjsKey{secret: []byte(secret)} }

// mac is HMAC-SHA256(secret, timestamp + "." + body).
func (k *talkjsKey) mac(timestamp string, body []byte) [sha256.Size]byte {
	m, _ := k.pool.Get().(*talkjsMAC)
	if m == nil {
		m = &talkjsMAC{h: hmac.New(sha256.New, k.secret)}
	}
	m.h.Reset()
	m.prefix = append(append(m.prefix[:0], timestamp...), '.')
	m.h.Write(m.prefix)
	m.h.Write(body)
	m.h.Sum(m.sum[:0])
	sum := m.sum
	k.pool.Put(m)
	return sum
}

// SignTalkJSWebhook signs a webhook body as TalkJS does: the HMAC-SHA256 of
// timestamp + "." + body keyed with secret, in uppercase hex. It is meant for
// tests and fakes that deliver webhooks.
func SignTalkJSWebhook(secret, timestamp string, body []byte) string {
	sum := newTalkJSKey(secret).mac(timestamp, body)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
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
	if secret == "" {
		return ErrNoSecret
	}
	return verifyTalkJS([]*talkjsKey{newTalkJSKey(secret)}, timestamp, body, signature)
}

// verifyTalkJS accepts a signature made with any of keys.
func verifyTalkJS(keys []*talkjsKey, timestamp string, body []byte, signature string) error {
	if len(keys) == 0 {
		return ErrNoSecret
	}
	if signature == "" || timestamp == "" {
		return ErrMissingSignature
	}
	if len(signature) != 2*sha256.Size {
		return ErrInvalidSignature
	}
	var hexSig [2 * sha256.Size]byte
	var got [sha256.Size]byte
	copy(hexSig[:], signature)
	if _, err := hex.Decode(got[:], hexSig[:]); err != nil {
		return ErrInvalidSignature
	}
	for _, k := range keys {
		want := k.mac(timestamp, body)
		if hmac.Equal(got[:], want[:]) {
			return nil
		}
	}
	return ErrInvalidSignature
}

// ---------------------------------------------------------------------------
// Events

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
// raw. A typed accessor decodes the data of each documented type:
// MessageSent, MessageRead, MessageUpdated, MessageDeleted,
// ConversationDeleted, User (user.created, user.updated) and Notification
// (every notification.* type). Data and Raw keep what they do not model.
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

// conversationID is the id of the event's data.conversation, "" when it
// has none (user.* events) or the data does not decode: the inbox's
// ordering key.
func (e *TalkJSEvent) conversationID() string {
	if len(e.Data) == 0 || e.Data[0] != '{' {
		return ""
	}
	var d struct {
		Conversation *struct {
			ID idText `json:"id"`
		} `json:"conversation"`
	}
	if json.Unmarshal(e.Data, &d) != nil || d.Conversation == nil {
		return ""
	}
	return string(d.Conversation.ID)
}

// The typed accessors below decode the data of each event type of TalkJS's
// webhook reference. The reference confirms the data of message.sent,
// message.read and user.* (TalkJS's examples) and of notification.triggered
// (a client in production); the others are not published and are modelled
// on those, as each accessor says. A field the SDK does not model, or an
// event type it does not know, stays readable in Data and Raw.

// MessageSentData is the data of a message.sent event.
type MessageSentData struct {
	Conversation *Conversation `json:"conversation"`
	Message      *Message      `json:"message"`
	Sender       *User         `json:"sender"` // nil for a system message
	// Mentions are the users the message mentions, read from
	// data.mentions. Empty when the body has none. See MentionedUsers,
	// which reads both places mentions may be.
	Mentions []TalkJSMention `json:"mentions"`
	// MentionedUserIDs are the ids of the users the message mentions,
	// read from data.mentionedUserIds (a list of strings). Empty when the
	// body has none.
	MentionedUserIDs []string `json:"mentionedUserIds"`
}

// MentionedUsers gives the ids of the users the message mentions, from
// data.mentions and data.mentionedUserIds, each once, in that order; nil
// when there are none.
//
// Neither key is confirmed by TalkJS: its changelog says that message.sent
// now carries mention data, and its webhook reference does not show it.
// data.mentions is the SDK's first reading (see TalkJSMention);
// data.mentionedUserIds, a list of user ids, is what a public webhook
// handler reads. The SDK reads both, so that whichever TalkJS sends is
// seen; Raw and Data keep the body for a shape neither matches.
func (d *MessageSentData) MentionedUsers() []string {
	var ids []string
	// A few mentions are checked in the list itself; many (a body of 1 MiB
	// holds 100,000 ids) in a set, so that the time grows with the ids and
	// not with their square.
	var seen map[string]struct{}
	if len(d.Mentions)+len(d.MentionedUserIDs) > 16 {
		seen = make(map[string]struct{})
	}
	add := func(id string) {
		if id == "" {
			return
		}
		if seen == nil {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
			return
		}
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
	}
	for _, m := range d.Mentions {
		add(m.UserID)
	}
	for _, id := range d.MentionedUserIDs {
		add(id)
	}
	return ids
}

// TalkJSMention is one item of a message.sent event's data.mentions. Its
// shape is not confirmed: TalkJS announced mention data on message.sent
// but did not publish it, and no public source shows data.mentions. The
// SDK reads it as a list whose items are a user id or an object with the
// user id under "userId" (or "id"), and keeps each item as sent in Raw, so
// a shape it does not read is not lost. See MessageSentData.MentionedUsers.
type TalkJSMention struct {
	UserID string          // the mentioned user, "" when the item names none the SDK can read
	Raw    json.RawMessage // the item as sent
}

// UnmarshalJSON reads a mention: a string (the user id) or an object.
func (m *TalkJSMention) UnmarshalJSON(b []byte) error {
	*m = TalkJSMention{Raw: append(json.RawMessage(nil), b...)}
	switch b[0] {
	case '"':
		return json.Unmarshal(b, &m.UserID)
	case '{':
		var o struct {
			UserID idText `json:"userId"`
			ID     idText `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		m.UserID = cmp.Or(string(o.UserID), string(o.ID))
		return nil
	case 'n':
		return nil
	}
	return typeError(b, reflect.TypeFor[TalkJSMention]())
}

// MessageSent decodes the data of a message.sent event. It fails with
// ErrWrongEventType for an event of another type, and with a *PayloadError
// when the data does not decode or has no message.
func (e *TalkJSEvent) MessageSent() (*MessageSentData, error) {
	return eventData[MessageSentData](e, TalkJSMessageSent)
}

func (d *MessageSentData) missingKey() string { return keyIfNil(d.Message, "data.message") }

// MessageReadData is the data of a message.read event: Recipient read
// Message. TalkJS's webhook reference confirms message and recipient;
// conversation and sender are assumed, as on message.sent, and nil when
// absent.
type MessageReadData struct {
	Conversation *Conversation `json:"conversation"`
	Message      *Message      `json:"message"`
	Sender       *User         `json:"sender"`
	Recipient    *User         `json:"recipient"` // the reader
}

// MessageRead decodes the data of a message.read event. It fails with
// ErrWrongEventType for an event of another type, and with a *PayloadError
// when the data does not decode or has no message.
func (e *TalkJSEvent) MessageRead() (*MessageReadData, error) {
	return eventData[MessageReadData](e, TalkJSMessageRead)
}

func (d *MessageReadData) missingKey() string { return keyIfNil(d.Message, "data.message") }

// MessageChangeData is the data of a message.updated or message.deleted
// event. TalkJS does not publish these shapes: the SDK assumes the keys of
// message.sent, and a key that is absent leaves its field nil.
type MessageChangeData struct {
	Conversation *Conversation `json:"conversation"`
	Message      *Message      `json:"message"` // the message as it is now (updated) or was (deleted)
	Sender       *User         `json:"sender"`
}

// MessageUpdated decodes the data of a message.updated event (its shape is
// not confirmed: see MessageChangeData). It fails with ErrWrongEventType for
// an event of another type, and with a *PayloadError when the data does not
// decode.
func (e *TalkJSEvent) MessageUpdated() (*MessageChangeData, error) {
	return eventData[MessageChangeData](e, TalkJSMessageUpdated)
}

// MessageDeleted decodes the data of a message.deleted event (its shape is
// not confirmed: see MessageChangeData). It fails with ErrWrongEventType for
// an event of another type, and with a *PayloadError when the data does not
// decode.
func (e *TalkJSEvent) MessageDeleted() (*MessageChangeData, error) {
	return eventData[MessageChangeData](e, TalkJSMessageDeleted)
}

// ConversationDeletedData is the data of a conversation.deleted event.
// TalkJS does not publish its shape: the SDK assumes the conversation under
// "conversation", as in the other events; it is nil when absent.
type ConversationDeletedData struct {
	Conversation *Conversation `json:"conversation"`
}

// ConversationDeleted decodes the data of a conversation.deleted event (its
// shape is not confirmed: see ConversationDeletedData). It fails with
// ErrWrongEventType for an event of another type, and with a *PayloadError
// when the data does not decode.
func (e *TalkJSEvent) ConversationDeleted() (*ConversationDeletedData, error) {
	return eventData[ConversationDeletedData](e, TalkJSConversationDeleted)
}

// User decodes the user of a user.created or user.updated event. It fails
// with ErrWrongEventType for an event of another type, and with a
// *PayloadError when the data does not decode or has no user.
func (e *TalkJSEvent) User() (*User, error) {
	d, err := eventData[userData](e, TalkJSUserCreated, TalkJSUserUpdated)
	if err != nil {
		return nil, err
	}
	return d.User, nil
}

// userData is the data of a user.* event.
type userData struct {
	User *User `json:"user"`
}

func (d *userData) missingKey() string { return keyIfNil(d.User, "data.user") }

// NotificationData is the data of a notification.* event. The shape is
// confirmed for notification.triggered only (by a client in production);
// the SDK assumes the same keys for notification.sent, .delivered,
// .bounced, .opened and .link.clicked, whose data TalkJS does not publish.
// A key that is absent leaves its field zero.
type NotificationData struct {
	NotificationID string        `json:"notificationId"`
	Recipient      *User         `json:"recipient"` // who is notified
	Sender         *User         `json:"sender"`
	Conversation   *Conversation `json:"conversation"`
	Messages       []Message     `json:"messages"` // the unanswered messages the notification is about
}

// Notification decodes the data of a notification.* event: triggered,
// sent, delivered, bounced, opened or link.clicked (the shape is confirmed
// for triggered only: see NotificationData). It fails with
// ErrWrongEventType for an event of another type, and with a *PayloadError
// when the data does not decode.
func (e *TalkJSEvent) Notification() (*NotificationData, error) {
	return eventData[NotificationData](e, TalkJSNotificationTriggered, TalkJSNotificationSent,
		TalkJSNotificationDelivered, TalkJSNotificationBounced, TalkJSNotificationOpened, TalkJSNotificationLinkClicked)
}

// eventData decodes the data of e into a new T once e is of one of types.
// When *T has a missingKey method, a key it names is refused as missing.
func eventData[T any](e *TalkJSEvent, types ...TalkJSEventType) (*T, error) {
	if !slices.Contains(types, e.Type) {
		want := make([]string, len(types))
		for i, t := range types {
			want[i] = strconv.Quote(string(t))
		}
		return nil, fmt.Errorf("%w: %q, not %s", ErrWrongEventType, e.Type, strings.Join(want, " or "))
	}
	d := new(T)
	if err := e.decodeData(d); err != nil {
		return nil, err
	}
	if r, ok := any(d).(interface{ missingKey() string }); ok {
		if key := r.missingKey(); key != "" {
			return nil, missing(key)
		}
	}
	return d, nil
}

// keyIfNil is key when v is nil, else "".
func keyIfNil[T any](v *T, key string) string {
	if v == nil {
		return key
	}
	return ""
}

func missing(field string) error {
	return &PayloadError{Provider: ProviderTalkJS, Field: field, Reason: "missing"}
}

func (e *TalkJSEvent) decodeData(v any) error {
	if len(e.Data) == 0 {
		return missing("data")
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return payloadError(ProviderTalkJS, "data.", err)
	}
	return nil
}
