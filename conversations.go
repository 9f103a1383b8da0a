package convo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strconv"
)

// ConversationsService manages TalkJS conversations, participants and messages.
type ConversationsService service

// ConversationUpdate is the body of a conversation upsert (PUT
// /conversations/{id}). A zero field (an empty string, a nil or empty slice
// or map) is left out and stays as it is on the server. To erase a field,
// name it in Clear.
type ConversationUpdate struct {
	// Participants are user ids to add, with access ReadWrite and notify
	// on. An upsert never removes a participant: use Leave.
	Participants []string
	// Subject describes the conversation's topic.
	Subject string
	// WelcomeMessages are shown to the participants of an empty
	// conversation (json "welcomeMessages").
	WelcomeMessages []string
	// Custom holds metadata; TalkJS takes string values only.
	Custom map[string]string
	// PhotoURL is the URL of the conversation's picture (json "photoUrl").
	PhotoURL string
	// Clear names fields, by their JSON names, to erase: each is sent as
	// null. The names that may be cleared are subject, welcomeMessages,
	// custom and photoUrl. An unknown name, "participants", or a name whose
	// field is also set is refused with a *ValidationError before anything
	// is sent.
	Clear []string
}

var conversationClear = clearSpec{
	names: []string{"participants", "subject", "welcomeMessages", "custom", "photoUrl"},
	clearable: map[string]bool{
		"participants": false, "subject": true, "welcomeMessages": true, "custom": true, "photoUrl": true,
	},
	why: map[string]string{"participants": "an upsert cannot remove participants; use Leave"},
}

func (u *ConversationUpdate) isSet(name string) bool {
	switch name {
	case "participants":
		return len(u.Participants) > 0
	case "subject":
		return u.Subject != ""
	case "welcomeMessages":
		return len(u.WelcomeMessages) > 0
	case "custom":
		return len(u.Custom) > 0
	case "photoUrl":
		return u.PhotoURL != ""
	}
	return false
}

func (u *ConversationUpdate) validate(ps *problems, prefix string) {
	for i, p := range u.Participants {
		if p == "" {
			ps.add(fieldIndex(prefix+"Participants", i), "user id must not be empty")
		}
	}
	if len(u.Clear) > 0 {
		conversationClear.check(ps, prefix, u.Clear, u.isSet)
	}
}

// MarshalJSON writes the set fields, then null for each name in Clear. It
// fails with a *ValidationError when the update is not valid.
func (u ConversationUpdate) MarshalJSON() ([]byte, error) { return u.encodeBody() }

// encodeBody is MarshalJSON for the request pipeline.
func (u ConversationUpdate) encodeBody() ([]byte, error) {
	var ps problems
	u.validate(&ps, "")
	if err := ps.err(); err != nil {
		return nil, err
	}
	n := 2 + sizeHint(u.Subject, u.PhotoURL) + sliceHint(u.Participants) + sliceHint(u.WelcomeMessages) + sliceHint(u.Clear) + 48
	for k, v := range u.Custom {
		n += len(k) + len(v) + 6
	}
	w := jsonObject{b: make([]byte, 0, n)}
	w.open()
	w.strs("participants", u.Participants)
	w.str("subject", u.Subject)
	w.strs("welcomeMessages", u.WelcomeMessages)
	w.strMap("custom", u.Custom)
	w.str("photoUrl", u.PhotoURL)
	w.nulls(u.Clear)
	return w.close(), nil
}

// Access is a participant's right in a conversation.
type Access string

// The access rights of a participant.
const (
	// AccessReadWrite may read and send messages (the default on Join).
	AccessReadWrite Access = "ReadWrite"
	// AccessRead may read but not send, and is listed in the header.
	AccessRead Access = "Read"
	// AccessNone may neither read nor send and is not listed; it keeps the
	// conversation in the user's list. Only UpdateParticipation takes it.
	AccessNone Access = "None"
)

// Notify says when a participant is notified of new messages. The zero
// value means "not set": it is left out of a request (on Join the server
// then takes true; on UpdateParticipation it stays as it is). On the wire
// it is true, false or "MentionsOnly".
type Notify string

// The notification settings of a participant.
const (
	// NotifyOn notifies of every message (wire value true).
	NotifyOn Notify = "true"
	// NotifyOff never notifies (wire value false).
	NotifyOff Notify = "false"
	// NotifyMentionsOnly notifies only when the participant is mentioned
	// (wire value "MentionsOnly").
	NotifyMentionsOnly Notify = "MentionsOnly"
)

// MarshalJSON writes true, false, "MentionsOnly", or null for the zero
// value. Any other value is an error.
func (n Notify) MarshalJSON() ([]byte, error) {
	switch n {
	case NotifyOn:
		return []byte("true"), nil
	case NotifyOff:
		return []byte("false"), nil
	case NotifyMentionsOnly:
		return []byte(`"MentionsOnly"`), nil
	case "":
		return []byte("null"), nil
	}
	return nil, fmt.Errorf("convo: unknown Notify value %q", string(n))
}

// UnmarshalJSON reads a bool or a string ("MentionsOnly", or any future
// string, kept as it is); null leaves n unchanged.
func (n *Notify) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*n = NotifyOn
		return nil
	case "false":
		*n = NotifyOff
		return nil
	case "null":
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("convo: notify must be a bool or a string, got %s", b)
	}
	*n = Notify(s)
	return nil
}

// Participation is the body of Join and UpdateParticipation. A zero field
// is left out: Join then applies the server's default (ReadWrite, notify
// on) since a join overwrites the whole participation, while
// UpdateParticipation leaves it unchanged.
type Participation struct {
	Access Access `json:"access,omitempty"` // "" leaves it out
	Notify Notify `json:"notify,omitempty"` // "" leaves it out
}

func (p *Participation) validate(ps *problems, allowNone bool) {
	switch p.Access {
	case "", AccessReadWrite, AccessRead:
	case AccessNone:
		if !allowNone {
			ps.add("p.Access", `"None" is only allowed by UpdateParticipation`)
		}
	default:
		ps.addf("p.Access", "unknown access %q", string(p.Access))
	}
	switch p.Notify {
	case "", NotifyOn, NotifyOff, NotifyMentionsOnly:
	default:
		ps.addf("p.Notify", "unknown notify value %q", string(p.Notify))
	}
}

// Participant is one participant of a Conversation as the API returns it.
type Participant struct {
	Access   Access `json:"access"`
	Notify   Notify `json:"notify"`
	IsUnread bool   `json:"isUnread"`
}

// Conversation is a TalkJS conversation as the API returns it. A field the
// API sends as null, or leaves out, is the zero value.
type Conversation struct {
	ID              string            `json:"id"`
	Subject         string            `json:"subject"`
	PhotoURL        string            `json:"photoUrl"`
	WelcomeMessages []string          `json:"welcomeMessages"`
	Custom          map[string]string `json:"custom"`
	// LastMessage is nil for a conversation without messages.
	LastMessage *Message `json:"lastMessage"`
	// Participants maps user id to participation.
	Participants map[string]Participant `json:"participants"`
	// CreatedAt is when the conversation was created, in Unix
	// milliseconds; use CreatedAt.Time() for a time.Time.
	CreatedAt UnixMillis `json:"createdAt"`
	// TopicID is a legacy field, null (empty) in practice.
	TopicID string `json:"topicId"`
}

// Upsert creates conversation id or updates the fields u sets (PUT
// /conversations/{id}). It is idempotent; it adds participants and never
// removes any. It expects a 2xx answer; the body is ignored.
func (s *ConversationsService) Upsert(ctx context.Context, id string, u ConversationUpdate) error {
	var ps problems
	u.validate(&ps, "u.")
	return s.client().do(ctx, &request{
		op:      "talkjs.conversations.upsert",
		api:     s.client().talkjs,
		method:  http.MethodPut,
		path:    "/conversations/{conversationID}",
		params:  []string{id},
		encoded: encode(u),
		invalid: ps.err(),
	})
}

// Get returns conversation id (GET /conversations/{id}). It expects a 200
// answer whose body is the conversation object. A conversation that does
// not exist gives an error matching ErrNotFound.
func (s *ConversationsService) Get(ctx context.Context, id string) (*Conversation, error) {
	return talkjsGet[Conversation](ctx, s.client(), "talkjs.conversations.get", "/conversations/{conversationID}", id)
}

// List iterates over the app's conversations (GET /conversations), one
// page ({"data": [conversation, …]}) at a time. opts may be nil (pages of DefaultConversationListLimit).
// See ListOptions for how the iteration ends.
func (s *ConversationsService) List(ctx context.Context, opts *ConversationListOptions) iter.Seq2[*Conversation, error] {
	return paginate(ctx, s.client(), "talkjs.conversations.list", "/conversations", nil, conversationListQuery(opts), conversationID)
}

// Delete deletes conversation id with its messages and participations,
// for good (DELETE /conversations/{id}). It expects a 2xx answer; the body
// is ignored.
func (s *ConversationsService) Delete(ctx context.Context, id string) error {
	return s.client().do(ctx, &request{
		op:     "talkjs.conversations.delete",
		api:    s.client().talkjs,
		method: http.MethodDelete,
		path:   "/conversations/{conversationID}",
		params: []string{id},
	})
}

// Join adds user userID to conversation convID, or sets the whole
// participation (PUT /conversations/{convID}/participants/{userID}): a
// zero field takes the server's default (ReadWrite, notify on), not the
// previous value. Access may be ReadWrite or Read. It is idempotent and
// expects a 2xx answer; the body is ignored.
func (s *ConversationsService) Join(ctx context.Context, convID, userID string, p Participation) error {
	return s.participation(ctx, "talkjs.conversations.join", http.MethodPut, convID, userID, p, false)
}

// UpdateParticipation changes the fields p sets, leaving the others as
// they are (PATCH /conversations/{convID}/participants/{userID}). Access
// may also be AccessNone, which revokes access but keeps the conversation
// in the user's list. It is idempotent and expects a 2xx answer; the body
// is ignored.
func (s *ConversationsService) UpdateParticipation(ctx context.Context, convID, userID string, p Participation) error {
	return s.participation(ctx, "talkjs.conversations.update_participation", http.MethodPatch, convID, userID, p, true)
}

func (s *ConversationsService) participation(ctx context.Context, op, method, convID, userID string, p Participation, allowNone bool) error {
	var ps problems
	p.validate(&ps, allowNone)
	return s.client().do(ctx, &request{
		op:      op,
		api:     s.client().talkjs,
		method:  method,
		path:    "/conversations/{conversationID}/participants/{userID}",
		params:  []string{convID, userID},
		body:    p,
		invalid: ps.err(),
	})
}

// Leave removes user userID from conversation convID (DELETE
// /conversations/{convID}/participants/{userID}); the conversation leaves
// the user's list too. To keep it listed but revoke access, use
// UpdateParticipation with AccessNone. It expects a 2xx answer; the body is
// ignored.
func (s *ConversationsService) Leave(ctx context.Context, convID, userID string) error {
	return s.client().do(ctx, &request{
		op:     "talkjs.conversations.leave",
		api:    s.client().talkjs,
		method: http.MethodDelete,
		path:   "/conversations/{conversationID}/participants/{userID}",
		params: []string{convID, userID},
	})
}

// MarkAsRead marks conversation convID as read by user userID (POST
// /conversations/{convID}/readBy/{userID}, with no body). TalkJS does not
// document this endpoint: the path is the one the PHP client
// carandclassic/talkjs calls in markAsReadBy, with no body, and its answer
// is not read. Marking a conversation read twice changes nothing more, so
// the call is retried like a PUT. It expects a 2xx answer.
func (s *ConversationsService) MarkAsRead(ctx context.Context, convID, userID string) error {
	return s.client().do(ctx, &request{
		op:         "talkjs.conversations.mark_as_read",
		api:        s.client().talkjs,
		method:     http.MethodPost,
		path:       "/conversations/{conversationID}/readBy/{userID}",
		params:     []string{convID, userID},
		idempotent: true, // reading again reads nothing new
	})
}

// NotificationChannel is a way TalkJS notifies a user of unanswered
// messages.
type NotificationChannel string

// The notification channels of TriggerNotifications.
const (
	ChannelEmail NotificationChannel = "email" // by email (EmailSettings)
	ChannelSMS   NotificationChannel = "sms"   // by SMS (SMSSettings)
)

// NotificationTrigger is the body of TriggerNotifications.
type NotificationTrigger struct {
	// Channels are the ways to notify; at least one is required.
	Channels []NotificationChannel `json:"channels"`
	// Recipients are the user ids to notify. When empty the key is left
	// out, and TalkJS notifies everyone with unanswered messages.
	Recipients []string `json:"recipients,omitempty"`
	// SMSSettings overrides the text of the SMS; nil keeps the app's.
	SMSSettings *SMSSettings `json:"smsSettings,omitempty"`
	// EmailSettings overrides parts of the email; nil keeps the app's.
	EmailSettings *EmailSettings `json:"emailSettings,omitempty"`
}

// SMSSettings is the SMS of a NotificationTrigger. Templates take TalkJS
// placeholders such as {{app.name}}, {{sender.name}} and {{messages}}.
type SMSSettings struct {
	SMSTemplate string `json:"smsTemplate,omitempty"`
}

// EmailSettings is the email of a NotificationTrigger; empty fields are
// left out. Templates take TalkJS placeholders such as {{sender.name}}.
type EmailSettings struct {
	Subject  string `json:"subject,omitempty"`
	Header   string `json:"header,omitempty"`
	Footer   string `json:"footer,omitempty"`
	InboxURL string `json:"inboxUrl,omitempty"` // json "inboxUrl"
	// Extra adds keys the SDK does not model: TalkJS documents more email
	// settings than these four, but their names and types could not be
	// confirmed. A key of Extra never replaces one of the fields above.
	Extra map[string]any `json:"-"`
}

// MarshalJSON writes the set fields and the keys of Extra.
func (e EmailSettings) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(e.Extra)+4)
	for k, v := range e.Extra {
		out[k] = v
	}
	for k, v := range map[string]string{"subject": e.Subject, "header": e.Header, "footer": e.Footer, "inboxUrl": e.InboxURL} {
		if delete(out, k); v != "" {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

func (n *NotificationTrigger) validate(ps *problems) {
	if len(n.Channels) == 0 {
		ps.add("n.Channels", "at least one channel is required")
	}
	for i, ch := range n.Channels {
		switch {
		case ch != ChannelEmail && ch != ChannelSMS:
			ps.addf(fieldIndex("n.Channels", i), "must be %q or %q, not %q", ChannelEmail, ChannelSMS, string(ch))
		case slices.Contains(n.Channels[:i], ch):
			ps.addf(fieldIndex("n.Channels", i), "%q is named twice", string(ch))
		}
	}
	for i, r := range n.Recipients {
		if r == "" {
			ps.add(fieldIndex("n.Recipients", i), "user id must not be empty")
		}
	}
}

// TriggerNotifications makes TalkJS notify, by email or SMS, the users
// with unanswered messages in conversation convID (POST
// /conversations/{convID}/notifications), or only n.Recipients. The
// trigger is checked first; a problem comes back as a *ValidationError
// and nothing is sent. A trigger is never repeated after it may have
// reached TalkJS: a second one can notify the users twice. It expects a
// 2xx answer; the body is ignored (TalkJS does not document it).
func (s *ConversationsService) TriggerNotifications(ctx context.Context, convID string, n NotificationTrigger) error {
	var ps problems
	n.validate(&ps)
	return s.client().do(ctx, &request{
		op:      "talkjs.conversations.trigger_notifications",
		api:     s.client().talkjs,
		method:  http.MethodPost,
		path:    "/conversations/{conversationID}/notifications",
		params:  []string{convID},
		body:    n,
		invalid: ps.err(),
	})
}

func conversationID(c *Conversation) string { return c.ID }

// OpenConversation is what Conversations.Open needs to start a
// conversation.
type OpenConversation struct {
	// Users are created or updated first (with UpsertMany), keyed by id.
	Users map[string]UserUpdate
	// Conversation is upserted next. When its Participants is nil, the ids
	// of Users (sorted) are the participants.
	Conversation ConversationUpdate
	// Messages are sent last; there may be none.
	Messages []OutgoingMessage
}

// Open starts a conversation as TalkJS describes it, in one call: it
// upserts the users, then upserts conversation convID with its
// participants, then sends the first messages, and returns their ids.
// Everything is checked first; any problem comes back as a
// *ValidationError (fields named like "o.Messages[0].Sender") and nothing
// is sent.
//
// Every step is idempotent, so after a failure the caller may simply call
// Open again with the same arguments. For the messages this works because
// a message without an IdempotencyKey gets one derived from convID, its
// index in Messages, its type, its sender and its text (a SHA-256 prefix),
// not a random one: the second call sends the same keys and the server
// drops the messages it already has. The flip side: calling Open again
// with the same messages does not send them again (for as long as the
// server remembers keys, which TalkJS does not document); use SendMessages
// to send a message again on purpose.
//
// On an error Open says which step failed; an error of the last step comes
// with the ids of the messages already sent, as with SendMessages.
func (s *ConversationsService) Open(ctx context.Context, convID string, o OpenConversation) ([]string, error) {
	conv := o.Conversation
	if conv.Participants == nil && len(o.Users) > 0 {
		conv.Participants = sortedKeys(o.Users)
	}
	var ps problems
	ps.segment("conversationID", convID)
	for _, id := range sortedKeys(o.Users) {
		if id == "" {
			ps.add(`o.Users[""]`, "user id must not be empty")
		}
		u := o.Users[id]
		u.validate(&ps, func() string { return fieldKey("o.Users", id) + "." })
	}
	conv.validate(&ps, "o.Conversation.")
	if len(o.Messages) > 0 {
		validateMessages(&ps, "o.Messages", o.Messages)
	}
	if err := ps.err(); err != nil {
		// Open sends nothing: observers see one refused call of its own.
		return nil, s.client().do(ctx, &request{op: "talkjs.conversations.open", api: s.client().talkjs, invalid: err})
	}

	if len(o.Users) > 0 {
		if err := s.client().Users.UpsertMany(ctx, o.Users); err != nil {
			return nil, fmt.Errorf("convo: open conversation %q: upserting users: %w", convID, err)
		}
	}
	if err := s.Upsert(ctx, convID, conv); err != nil {
		return nil, fmt.Errorf("convo: open conversation %q: upserting the conversation: %w", convID, err)
	}
	if len(o.Messages) == 0 {
		return nil, nil
	}
	msgs := slices.Clone(o.Messages)
	for i := range msgs {
		if msgs[i].IdempotencyKey == "" {
			msgs[i].IdempotencyKey = derivedKey(convID, i, msgs[i])
		}
	}
	ids, err := s.send(ctx, convID, msgs)
	if err != nil {
		return ids, fmt.Errorf("convo: open conversation %q: sending messages: %w", convID, err)
	}
	return ids, nil
}

// derivedKey is Open's default idempotency key: the first 128 bits of a
// SHA-256 over the length-prefixed convID, index, type, sender and text.
func derivedKey(convID string, i int, m OutgoingMessage) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	put := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	put("convo/open/v1")
	put(convID)
	put(strconv.Itoa(i))
	put(string(m.Type))
	put(m.Sender)
	put(m.Text)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
