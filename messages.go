package convo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strings"
	"time"
)

// This file holds the TalkJS messages of a conversation: the types sent
// and received, SendMessages, the Messages list, one message's get, edit
// and delete, and the import of historical messages. They are methods of
// ConversationsService, as the API nests them under a conversation.

// MaxMessagesPerRequest is the most messages one POST
// /conversations/{id}/messages carries, the API's limit. SendMessages
// splits longer sends.
const MaxMessagesPerRequest = 10

// MessageType is the type of a message.
type MessageType string

// The message types.
const (
	// MessageTypeUser is a message sent by a user (it has a sender).
	MessageTypeUser MessageType = "UserMessage"
	// MessageTypeSystem is a message from the system (no sender).
	MessageTypeSystem MessageType = "SystemMessage"
)

// Attachment is the file of a file message.
type Attachment struct {
	URL  string `json:"url"`
	Size int64  `json:"size"` // in bytes
}

// Message is a TalkJS message as the API returns it. A field the API
// sends as null, or leaves out, is the zero value.
type Message struct {
	ID             string      `json:"id"`
	ConversationID string      `json:"conversationId"`
	Type           MessageType `json:"type"`
	// SenderID is empty for a system message.
	SenderID string `json:"senderId"`
	// ReadBy lists the users, other than the sender, who read it.
	ReadBy     []string    `json:"readBy"`
	Text       string      `json:"text"`
	Attachment *Attachment `json:"attachment"`
	// Location is a pair of coordinates, as sent by the API. TalkJS's
	// documentation says longitude then latitude, but its example reads as
	// latitude then longitude: check with your data.
	Location []float64 `json:"location"`
	// Content holds the message's content blocks, undecoded; each is an
	// object with a "type" ("text", "file", "location", …).
	Content []json.RawMessage `json:"content"`
	// Origin is "web", "rest", "email" or "import".
	Origin    string     `json:"origin"`
	CreatedAt UnixMillis `json:"createdAt"`
	// EditedAt is zero for a message never edited.
	EditedAt            UnixMillis        `json:"editedAt"`
	ReferencedMessageID string            `json:"referencedMessageId"`
	Custom              map[string]string `json:"custom"`
}

// OutgoingMessage is one message to send. Build it with UserMessage or
// SystemMessage, or set Type yourself.
type OutgoingMessage struct {
	// Text is the message; it must not be blank, unless the message
	// carries an attachment or a location.
	Text string `json:"text,omitempty"`
	// Sender is the sending user's id, required for a user message and
	// refused for a system message. The sender must be a participant.
	Sender string `json:"sender,omitempty"`
	// Type is MessageTypeUser or MessageTypeSystem.
	Type MessageType `json:"type"`
	// Custom holds metadata; TalkJS takes string values only.
	Custom map[string]string `json:"custom,omitempty"`
	// ReferencedMessageID makes the message a reply to that message.
	ReferencedMessageID string `json:"referencedMessageId,omitempty"`
	// IdempotencyKey lets the server drop a repeated message. When empty,
	// SendMessages fills in a random one and Open a derived one.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// AttachmentToken attaches a file uploaded to TalkJS before: the
	// attachmentToken of POST /files, which Client.Raw sends (see its
	// example).
	AttachmentToken string `json:"attachmentToken,omitempty"`
	// Location shares a place: latitude then longitude, in degrees. Only
	// a user message may carry one. TalkJS does not document the field's
	// name for a send; "location" follows the field of a received message.
	Location *[2]float64 `json:"location,omitempty"`
}

// UserMessage is a message from user sender.
func UserMessage(sender, text string) OutgoingMessage {
	return OutgoingMessage{Text: text, Sender: sender, Type: MessageTypeUser}
}

// SystemMessage is a message from the system, without a sender.
func SystemMessage(text string) OutgoingMessage {
	return OutgoingMessage{Text: text, Type: MessageTypeSystem}
}

func validateMessages(ps *problems, field string, msgs []OutgoingMessage) {
	if len(msgs) == 0 {
		ps.add(field, "at least one message is required")
	}
	for i, m := range msgs {
		f := fieldIndex(field, i)
		switch m.Type {
		case MessageTypeUser:
			if m.Sender == "" {
				ps.add(f+".Sender", "a user message needs a sender")
			}
		case MessageTypeSystem:
			if m.Sender != "" {
				ps.add(f+".Sender", "a system message must not have a sender")
			}
		default:
			ps.addf(f+".Type", "must be %q or %q, not %q", MessageTypeUser, MessageTypeSystem, string(m.Type))
		}
		switch {
		case strings.TrimSpace(m.Text) != "":
			ps.utf8(f+".Text", m.Text)
		case m.AttachmentToken == "" && m.Location == nil:
			ps.add(f+".Text", "must not be empty")
		}
		if m.Location != nil {
			if m.Type == MessageTypeSystem {
				ps.add(f+".Location", "a system message cannot carry a location")
			}
			ps.location(f+".Location", *m.Location)
		}
	}
}

func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+ panics instead)
	return hex.EncodeToString(b[:])
}

// SendMessages sends msgs to conversation convID (POST
// /conversations/{id}/messages) and returns the new message ids in the
// order of msgs. Each request expects a 200 answer listing one object per
// message sent, in order: [{"id": "msg_1"}, …].
//
// Before anything is sent, every message is checked (a user message needs
// a sender, a system message has none, the text is not blank, the type is
// known, and there is at least one message); all problems come back at
// once in a *ValidationError.
//
// A message without an IdempotencyKey gets a random 128-bit one (the
// caller's slice is not changed), so that a retry after a failure that may
// have reached the server carries the same keys and the server can drop
// the duplicates; the send is therefore retried like any idempotent call.
//
// More than MaxMessagesPerRequest messages go out in requests of at most
// that many, one after another, in order. If a request fails, SendMessages
// returns the ids of the messages already sent together with the error;
// the messages after them were not sent (or, when the error matches
// ErrOutcomeUnknown, those of the failed request may have been).
func (s *ConversationsService) SendMessages(ctx context.Context, convID string, msgs ...OutgoingMessage) ([]string, error) {
	var ps problems
	ps.segment("conversationID", convID)
	validateMessages(&ps, "msgs", msgs)
	if err := ps.err(); err != nil {
		return nil, s.client().do(ctx, s.sendRequest(convID, nil, nil, err))
	}
	out := slices.Clone(msgs)
	for i := range out {
		if out[i].IdempotencyKey == "" {
			out[i].IdempotencyKey = randomKey()
		}
	}
	return s.send(ctx, convID, out)
}

// send posts msgs, every one with a key, in chunks.
func (s *ConversationsService) send(ctx context.Context, convID string, msgs []OutgoingMessage) ([]string, error) {
	ids := make([]string, 0, len(msgs))
	for chunk := range slices.Chunk(msgs, MaxMessagesPerRequest) {
		out := sentIDs{want: len(chunk), ids: ids}
		if err := s.client().do(ctx, s.sendRequest(convID, chunk, &out, nil)); err != nil {
			return ids, err
		}
		ids = out.ids
	}
	return ids, nil
}

// sentIDs is the answer of one send request: one {"id": …} per message,
// in order, appended to ids. Another count is an answer the pipeline
// cannot use: a 2xx whose error matches ErrBadResponse (the messages were
// stored).
type sentIDs struct {
	want int
	ids  []string // the ids of the requests before, and then of this one
	resp []struct {
		ID string `json:"id"`
	}
}

func (s *sentIDs) decodeBody(b []byte) error {
	if err := decodeJSON(b, &s.resp); err != nil {
		return err
	}
	if len(s.resp) != s.want {
		return fmt.Errorf("%d ids for %d messages", len(s.resp), s.want)
	}
	for _, r := range s.resp {
		s.ids = append(s.ids, r.ID)
	}
	return nil
}

// sendRequest describes one request of a send: POST msgs, every one with
// a key, into out; or the refused call when invalid is set.
func (s *ConversationsService) sendRequest(convID string, msgs []OutgoingMessage, out any, invalid error) *request {
	return &request{
		op:         "talkjs.conversations.send_messages",
		api:        s.client().talkjs,
		method:     http.MethodPost,
		path:       "/conversations/{conversationID}/messages",
		params:     []string{convID},
		body:       msgs,
		out:        out,
		idempotent: true, // every message carries an idempotencyKey
		invalid:    invalid,
	}
}

// Messages iterates over the messages of conversation convID, newest
// first (GET /conversations/{id}/messages), one page ({"data": [message,
// …]}) at a time. opts may
// be nil (pages of DefaultListLimit). See ListOptions for how the
// iteration ends.
func (s *ConversationsService) Messages(ctx context.Context, convID string, opts *ListOptions) iter.Seq2[*Message, error] {
	spec := listQuery(opts, DefaultListLimit)
	if opts != nil && opts.IsOnline != nil && spec.err == nil {
		spec.err = &ValidationError{Problems: []Problem{{Field: "opts.IsOnline", Reason: "only Users.List takes it"}}}
	}
	return paginate(ctx, s.client(), "talkjs.conversations.messages", "/conversations/{conversationID}/messages", []string{convID}, spec, messageID)
}

func messageID(m *Message) string { return m.ID }

// Message returns message msgID of conversation convID (GET
// /conversations/{convID}/messages/{msgID}). It expects a 200 answer
// whose body is the message object. A message or conversation that does
// not exist gives an error matching ErrNotFound.
func (s *ConversationsService) Message(ctx context.Context, convID, msgID string) (*Message, error) {
	return talkjsGet[Message](ctx, s.client(), "talkjs.conversations.message", "/conversations/{conversationID}/messages/{messageID}", convID, msgID)
}

// MessageEdit is the body of EditMessage. A zero field is left out and
// stays as it is; at least one field must be set or cleared.
type MessageEdit struct {
	// Text replaces the message's text.
	Text string
	// Custom sets these keys of the message's custom fields; TalkJS takes
	// string values only.
	Custom map[string]string
	// Clear names fields, by their JSON names, to erase: each is sent as
	// null. Only custom may be cleared (all its keys at once); text
	// cannot, a message keeps a text. An unknown name, or a name whose
	// field is also set, is refused with a *ValidationError before
	// anything is sent.
	Clear []string
}

var messageEditClear = clearSpec{
	names:     []string{"text", "custom"},
	clearable: map[string]bool{"text": false, "custom": true},
	why:       map[string]string{"text": "a message keeps a text; set Text to replace it"},
}

func (e *MessageEdit) isSet(name string) bool {
	switch name {
	case "text":
		return e.Text != ""
	case "custom":
		return len(e.Custom) > 0
	}
	return false
}

func (e *MessageEdit) validate(ps *problems) {
	if e.Text == "" && len(e.Custom) == 0 && len(e.Clear) == 0 {
		ps.add("e", "nothing to edit: set Text or Custom, or name custom in Clear")
	}
	ps.utf8("e.Text", e.Text)
	messageEditClear.check(ps, "e.", e.Clear, e.isSet)
}

// MarshalJSON writes the set fields, then null for each name in Clear. It
// fails with a *ValidationError when the edit is not valid.
func (e MessageEdit) MarshalJSON() ([]byte, error) { return e.encodeBody() }

// encodeBody is MarshalJSON for the request pipeline.
func (e MessageEdit) encodeBody() ([]byte, error) {
	var ps problems
	e.validate(&ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	w := jsonObject{b: make([]byte, 0, 2+sizeHint(e.Text)+mapHint(e.Custom)+sliceHint(e.Clear)+32)}
	w.open()
	w.str("text", e.Text)
	w.strMap("custom", e.Custom)
	w.nulls(e.Clear)
	return w.close(), nil
}

// EditMessage changes message msgID of conversation convID (PUT
// /conversations/{convID}/messages/{msgID}): the fields e sets, and those
// it clears. The edit is checked first; a problem comes back as a
// *ValidationError and nothing is sent. It is repeatable, like every PUT.
// It expects a 2xx answer; the body is ignored.
func (s *ConversationsService) EditMessage(ctx context.Context, convID, msgID string, e MessageEdit) error {
	var ps problems
	e.validate(&ps)
	return s.client().do(ctx, &request{
		op:      "talkjs.conversations.edit_message",
		api:     s.client().talkjs,
		method:  http.MethodPut,
		path:    "/conversations/{conversationID}/messages/{messageID}",
		params:  []string{convID, msgID},
		encoded: encode(e),
		invalid: ps.err(),
	})
}

// DeleteMessage deletes message msgID of conversation convID for good
// (DELETE /conversations/{convID}/messages/{msgID}). Like every DELETE it
// is retried after a failure that may have reached TalkJS, and a 404 to
// such a retry is a success: an earlier attempt deleted the message. It
// expects a 2xx answer; the body is ignored.
func (s *ConversationsService) DeleteMessage(ctx context.Context, convID, msgID string) error {
	return s.client().do(ctx, &request{
		op:     "talkjs.conversations.delete_message",
		api:    s.client().talkjs,
		method: http.MethodDelete,
		path:   "/conversations/{conversationID}/messages/{messageID}",
		params: []string{convID, msgID},
	})
}

// ImportMessage is one historical user message for ImportMessages. TalkJS
// imports user messages only, sent by participants of the conversation.
type ImportMessage struct {
	// Sender is the id of the user who sent it; required.
	Sender string
	// Text is the message; it must not be blank unless AttachmentToken is
	// set.
	Text string
	// Timestamp is when the message was sent; required. It goes out in
	// Unix milliseconds and becomes the message's createdAt.
	Timestamp time.Time
	// ReadBy lists the users, other than the sender, who read it (sent
	// as [] when nil).
	ReadBy []string
	// AttachmentToken attaches a file uploaded to TalkJS before.
	AttachmentToken string
	// Custom holds metadata; TalkJS takes string values only.
	Custom map[string]string
}

// importWire is the wire form of an ImportMessage: every field the API
// marks required, always; the optional ones when set; no other key.
type importWire struct {
	Text            string            `json:"text"`
	Sender          string            `json:"sender"`
	Timestamp       int64             `json:"timestamp"`
	ReadBy          []string          `json:"readBy"`
	Type            MessageType       `json:"type"`
	AttachmentToken string            `json:"attachmentToken,omitempty"`
	Custom          map[string]string `json:"custom,omitempty"`
}

// MarshalJSON writes the import's wire form: {"text", "sender",
// "timestamp", "readBy", "type": "UserMessage"}, plus attachmentToken and
// custom when set.
func (m ImportMessage) MarshalJSON() ([]byte, error) {
	readBy := m.ReadBy
	if readBy == nil {
		readBy = []string{}
	}
	return json.Marshal(importWire{
		Text: m.Text, Sender: m.Sender, Timestamp: m.Timestamp.UnixMilli(), ReadBy: readBy,
		Type: MessageTypeUser, AttachmentToken: m.AttachmentToken, Custom: m.Custom,
	})
}

func validateImports(ps *problems, msgs []ImportMessage) {
	if len(msgs) == 0 {
		ps.add("msgs", "at least one message is required")
	}
	for i, m := range msgs {
		f := fieldIndex("msgs", i)
		ps.required(f+".Sender", m.Sender)
		switch {
		case m.Timestamp.IsZero():
			ps.add(f+".Timestamp", "required")
		case m.Timestamp.UnixMilli() <= 0:
			ps.add(f+".Timestamp", "must be after 1970-01-01")
		}
		if m.AttachmentToken == "" && blank(m.Text) {
			ps.add(f+".Text", "must not be empty")
		}
		ps.utf8(f+".Text", m.Text)
		for j, r := range m.ReadBy {
			if r == "" {
				ps.add(fieldIndex(f+".ReadBy", j), "user id must not be empty")
			}
		}
	}
}

// ImportError is the error of ImportMessages once the requests began: the
// messages before Imported went in, the Failed ones after them were in the
// request that failed (and may have gone in when Err matches
// ErrOutcomeUnknown or ErrBadResponse; TalkJS refused them when Err is
// another *APIError; they never reached TalkJS otherwise), and the rest
// were not sent.
type ImportError struct {
	ConversationID string
	Imported       int // msgs[:Imported] are in TalkJS
	Failed         int // msgs[Imported:Imported+Failed] were in the request that failed
	Total          int // len(msgs)
	Err            error
}

// Error says which messages went in, which may have, and why the import
// stopped.
func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "convo: import into conversation %q: ", e.ConversationID)
	if e.Imported > 0 {
		fmt.Fprintf(&b, "messages 0 to %d of %d imported; ", e.Imported-1, e.Total)
	} else {
		fmt.Fprintf(&b, "none of %d messages imported; ", e.Total)
	}
	last := e.Imported + e.Failed - 1
	var ae *APIError
	switch {
	case errors.Is(e.Err, ErrOutcomeUnknown) || errors.Is(e.Err, ErrBadResponse):
		fmt.Fprintf(&b, "messages %d to %d may have been imported (do not import them again before you check)", e.Imported, last)
	case errors.As(e.Err, &ae):
		fmt.Fprintf(&b, "messages %d to %d were refused", e.Imported, last)
	default: // nothing reached TalkJS: a dial failure, a context done first
		fmt.Fprintf(&b, "messages %d to %d were not imported", e.Imported, last)
	}
	if rest := e.Total - last - 1; rest > 0 {
		fmt.Fprintf(&b, "; messages %d to %d were not sent", last+1, e.Total-1)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns Err.
func (e *ImportError) Unwrap() error { return e.Err }

// ImportMessages imports historical user messages into conversation
// convID, each at its Timestamp (POST
// /import/conversations/{convID}/messages), MaxMessagesPerRequest a
// request, one request after another, in the order of msgs.
//
// Every message is checked before the first request (a sender, a
// timestamp, a text unless an attachment); all problems come back at once
// in a *ValidationError and nothing is sent.
//
// TalkJS does not deduplicate imports: a message imported twice shows
// twice. So a request is never repeated after it may have reached TalkJS
// (a 5xx, a reset, a timeout), only after a failure that surely left it
// untouched (a dial error, a 429). The import stops at the first request
// that fails, with an *ImportError saying which messages went in.
// Each request expects a 2xx answer; the body is ignored (TalkJS seems to
// answer {}; its documentation does not say).
func (s *ConversationsService) ImportMessages(ctx context.Context, convID string, msgs ...ImportMessage) error {
	var ps problems
	ps.segment("conversationID", convID)
	validateImports(&ps, msgs)
	chunkRequest := func(chunk []ImportMessage, invalid error) *request {
		return &request{
			op:      "talkjs.conversations.import_messages",
			api:     s.client().talkjs,
			method:  http.MethodPost,
			path:    "/import/conversations/{conversationID}/messages",
			params:  []string{convID},
			body:    chunk,
			invalid: invalid,
		}
	}
	if err := ps.err(); err != nil {
		return s.client().do(ctx, chunkRequest(nil, err))
	}
	done := 0
	for chunk := range slices.Chunk(msgs, MaxMessagesPerRequest) {
		err := s.client().do(ctx, chunkRequest(chunk, nil))
		if err != nil {
			return &ImportError{ConversationID: convID, Imported: done, Failed: len(chunk), Total: len(msgs), Err: err}
		}
		done += len(chunk)
	}
	return nil
}
