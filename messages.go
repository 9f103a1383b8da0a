package convo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strings"
)

// This file holds the TalkJS messages of a conversation: the types sent
// and received, SendMessages and the Messages list. They are methods of
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
	// Text is the message; it must not be blank.
	Text string `json:"text"`
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
		if strings.TrimSpace(m.Text) == "" {
			ps.add(f+".Text", "must not be empty")
		} else {
			ps.utf8(f+".Text", m.Text)
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
		return nil, err
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
		var resp []struct {
			ID string `json:"id"`
		}
		err := s.c.do(ctx, &request{
			api:        s.c.talkjs,
			method:     http.MethodPost,
			path:       "/conversations/{conversationID}/messages",
			params:     []string{convID},
			body:       chunk,
			out:        &resp,
			idempotent: true, // every message carries an idempotencyKey
		})
		if err == nil && len(resp) != len(chunk) {
			err = fmt.Errorf("convo: talkjs POST /conversations/%s/messages: %w: %d ids for %d messages",
				convID, ErrBadResponse, len(resp), len(chunk))
		}
		if err != nil {
			return ids, err
		}
		for _, r := range resp {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}

// Messages iterates over the messages of conversation convID, newest
// first (GET /conversations/{id}/messages), one page ({"data": [message,
// …]}) at a time. opts may
// be nil (pages of DefaultListLimit). See ListOptions for how the
// iteration ends.
func (s *ConversationsService) Messages(ctx context.Context, convID string, opts *ListOptions) iter.Seq2[*Message, error] {
	return paginate(ctx, s.c, "/conversations/{conversationID}/messages", []string{convID},
		listQuery(opts, DefaultListLimit), messageID)
}

func messageID(m *Message) string { return m.ID }
