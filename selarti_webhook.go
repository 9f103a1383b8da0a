package convo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"reflect"
)

// This file is Selarti's "All messages" webhook: its handler and options
// first, then the event and its wire decoding.

// selartiHookConfig holds the Selarti handler's own options.
type selartiHookConfig struct {
	userMessages bool
	secrets      [][sha256.Size]byte // SHA-256 of each accepted shared secret
}

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
//     than POST, 408 for a body that does not arrive within the read
//     timeout (WithReadTimeout), 409 while another delivery of the same
//     message_id is being handled, 413 for a body over the limit
//     (WithBodyLimit);
//   - 500 when fn returns an error or panics (the message_id is then
//     forgotten, so a redelivery is handled), 503 when the dedup store fails
//     with WithDedupFailClosed. By default a delivery whose store fails is
//     handled without dedup and recorded (WithDedupFailOpen): Selarti never
//     retries, so a 503 would lose the message.
//
// Error bodies are JSON: {"error":"…"}. A message without message_id is
// handled every time it comes. Dedup is in memory by default; see
// WithDedupStore for several replicas.
//
// It takes the options of both handlers and those of Selarti
// (WithUserMessages, WithSharedSecret). NewSelartiHandler panics on a
// programmer error: a nil fn, an option with bad input, such as
// WithSharedSecret(""), or an option of the TalkJS handler.
func NewSelartiHandler(fn func(ctx context.Context, ev *SelartiEvent) error, opts ...HandlerOption) http.Handler {
	if fn == nil {
		panic("convo: NewSelartiHandler: nil fn")
	}
	h := &webhookHandler{hookConfig: newHookConfig(ProviderSelarti, "NewSelartiHandler", opts), provider: ProviderSelarti}
	c := &h.selarti
	if len(c.secrets) > 0 {
		h.authorize = c.authorize
	}
	h.accept = func(_ *http.Request, body []byte) (delivery, *reject) {
		ev, err := ParseSelartiEvent(body)
		if err != nil {
			return delivery{}, &reject{http.StatusBadRequest, err.Error()}
		}
		if ev.Type != SelartiAllMessages {
			// The type an unsigned sender chose: observers see "other".
			return delivery{event: "other", skip: "wh_type " + string(ev.Type)}, nil
		}
		event := string(ev.Type)
		switch ev.MessageType {
		case AuthorBot, AuthorOperator:
		case AuthorUser:
			if !c.userMessages {
				return delivery{event: event, skip: "user message"}, nil
			}
		default:
			return delivery{event: event, skip: "message_type " + string(ev.MessageType)}, nil
		}
		return delivery{event: event, id: ev.MessageID, key: ev.ExternalChatID, call: func(ctx context.Context) error { return fn(ctx, ev) }}, nil
	}
	if h.inbox != nil {
		handleInbox(h, ParseSelartiEvent, fn)
	}
	return h
}

// WithUserMessages passes the user's own messages (message_type "user") to
// fn as well. By default the Selarti handler answers them 200 without a
// call, as Selarti's manual advises. An option of NewSelartiHandler only.
func WithUserMessages() HandlerOption {
	return HandlerOption{name: "WithUserMessages", provider: ProviderSelarti, apply: func(c *hookConfig) {
		c.selarti.userMessages = true
	}}
}

// WithSharedSecret makes the Selarti handler require a secret, since
// Selarti signs nothing. A request must carry it in the header
// X-Convo-Secret or, as Selarti's integration form only takes a URL, in the
// query parameter "secret" (https://example.com/hooks/selarti?secret=…); the
// header wins when both are present. A missing or wrong secret is answered
// 401 without reading the body. The comparison takes constant time.
//
// Give it more than once to accept several secrets while rotating. It
// panics when the handler is built if secret is empty. An option of
// NewSelartiHandler only.
func WithSharedSecret(secret string) HandlerOption {
	return HandlerOption{name: "WithSharedSecret", provider: ProviderSelarti, apply: func(c *hookConfig) {
		if secret == "" {
			panic("convo: WithSharedSecret: empty secret")
		}
		c.selarti.secrets = append(c.selarti.secrets, sha256.Sum256([]byte(secret)))
	}}
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

// ---------------------------------------------------------------------------
// The event

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
// json.Marshal gives back the wire form: the keys Selarti's guide lists, yes/no as "yes" or
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
