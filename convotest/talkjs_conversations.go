package convotest

// This file holds the TalkJS conversations and their participants:
// /v1/{appId}/conversations/{conversation} and .../participants/{user}.

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// Participation is one participant's access to a conversation.
type Participation struct {
	// Access is "ReadWrite", "Read" or "None".
	Access string `json:"access"`
	// Notify is true, false or the string "MentionsOnly".
	Notify any `json:"notify"`
}

// Conversation is a TalkJS conversation, in the JSON shape the API
// answers.
type Conversation struct {
	ID              string                   `json:"id"`
	Subject         *string                  `json:"subject"`
	PhotoURL        *string                  `json:"photoUrl"`
	WelcomeMessages []string                 `json:"welcomeMessages"`
	Custom          map[string]string        `json:"custom"`
	LastMessage     *Message                 `json:"lastMessage"`
	Participants    map[string]Participation `json:"participants"`
	CreatedAt       int64                    `json:"createdAt"` // Unix milliseconds
	TopicID         *string                  `json:"topicId"`
}

// convState is a stored conversation with its messages.
type convState struct {
	conv     Conversation
	activity int        // talkjsState.clock at the last creation or send
	messages []*Message // oldest first
	idem     map[string]string
}

// Conversation returns a copy of the TalkJS conversation with the id.
func (s *Server) Conversation(id string) (Conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyOne(s.talkjs.convs[id], (*convState).snapshot)
}

// snapshot is the conversation as the API answers it, a copy.
func (c *convState) snapshot() Conversation {
	out := c.conv
	out.WelcomeMessages = slices.Clone(c.conv.WelcomeMessages)
	out.Custom = maps.Clone(c.conv.Custom)
	out.Participants = maps.Clone(c.conv.Participants)
	if n := len(c.messages); n > 0 {
		m := c.messages[n-1].clone()
		out.LastMessage = &m
	}
	return out
}

// conversation finds the conversation the path names, or answers 404.
func (s *Server) conversation(c call) (*convState, *response) {
	conv, ok := s.talkjs.convs[c.param("conversation")]
	if !ok {
		resp := errorResponse(http.StatusNotFound, "conversation not found")
		return nil, &resp
	}
	return conv, nil
}

// getConversation is GET conversations/{conversation}.
func (s *Server) getConversation(c call) response {
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return *errResp
	}
	return jsonResponse(http.StatusOK, conv.snapshot())
}

// putConversation is PUT conversations/{conversation}. It merges: only
// the fields sent change, null erases one, and participants are added
// (ReadWrite, notify true), never removed or changed. Every participant
// must be an existing user.
func (s *Server) putConversation(c call) response {
	fields, ok := object(c.body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object")
	}
	id := c.param("conversation")
	var conv Conversation
	old, exists := s.talkjs.convs[id]
	if exists {
		conv = old.snapshot()
		conv.LastMessage = nil
	} else {
		conv = Conversation{ID: id, Custom: map[string]string{}, Participants: map[string]Participation{}, CreatedAt: nowMillis()}
	}
	if p := s.mergeConversation(&conv, fields); len(p) > 0 {
		return talkJSBadRequest(p)
	}
	if exists {
		old.conv = conv
	} else {
		s.talkjs.clock++
		s.talkjs.convs[id] = &convState{conv: conv, activity: s.talkjs.clock, idem: map[string]string{}}
	}
	return emptyOK()
}

// mergeConversation applies the fields of an upsert to conv.
func (s *Server) mergeConversation(conv *Conversation, fields map[string]json.RawMessage) problemList {
	var p problemList
	nullable := map[string]any{"subject": &conv.Subject, "photoUrl": &conv.PhotoURL, "welcomeMessages": &conv.WelcomeMessages}
	p.fields(fields, nullable, func(k string, raw json.RawMessage) {
		switch k {
		case "participants":
			s.addParticipants(conv, raw, &p)
		case "custom":
			conv.Custom = p.custom(raw, conv.Custom)
		default:
			p.unknown(k)
		}
	})
	return p
}

// addParticipants adds the users of an upsert's participants array who
// do not participate yet, with ReadWrite access and notify true.
func (s *Server) addParticipants(conv *Conversation, raw json.RawMessage, p *problemList) {
	var ids []string
	if json.Unmarshal(raw, &ids) != nil || isNull(raw) {
		p.add("participants", "must be an array of user ids")
		return
	}
	for _, uid := range ids {
		if _, ok := s.talkjs.users[uid]; !ok {
			p.add("participants", strconv.Quote(uid)+" is not a user")
			continue
		}
		if _, in := conv.Participants[uid]; !in {
			conv.Participants[uid] = Participation{Access: "ReadWrite", Notify: true}
		}
	}
}

// deleteConversation is DELETE conversations/{conversation}: it removes
// the conversation with its messages, participations and idempotency
// keys.
func (s *Server) deleteConversation(c call) response {
	if _, errResp := s.conversation(c); errResp != nil {
		return *errResp
	}
	delete(s.talkjs.convs, c.param("conversation"))
	return emptyOK()
}

// listConversations is GET conversations.
func (s *Server) listConversations(c call) response {
	return s.conversationsPage(c, "")
}

// listUserConversations is GET users/{user}/conversations.
func (s *Server) listUserConversations(c call) response {
	userID := c.param("user")
	if _, ok := s.talkjs.users[userID]; !ok {
		return errorResponse(http.StatusNotFound, "user not found")
	}
	return s.conversationsPage(c, userID)
}

// conversationsPage lists every conversation, or those of a user, by
// last activity, latest first.
func (s *Server) conversationsPage(c call, userID string) response {
	var convs []*convState
	for _, conv := range s.talkjs.convs {
		if _, in := conv.conv.Participants[userID]; userID == "" || in {
			convs = append(convs, conv)
		}
	}
	slices.SortFunc(convs, func(a, b *convState) int { return b.activity - a.activity })
	var filter *conversationFilter
	if v := c.r.URL.Query().Get("filter"); v != "" {
		if userID != "" {
			return talkJSBadRequest(problemList{{"filter", "the fake takes a filter on GET /conversations only"}})
		}
		f, errResp := parseConversationFilter(v)
		if errResp != nil {
			return *errResp
		}
		filter = f
	}
	all := make([]Conversation, 0, len(convs))
	for _, conv := range convs {
		if snap := conv.snapshot(); filter == nil || filter.matches(snap) {
			all = append(all, snap)
		}
	}
	return listPage(c, all, func(c Conversation) string { return c.ID })
}

// putParticipant is PUT conversations/{conversation}/participants/{user}:
// it overwrites the participation, ReadWrite and notify true by default.
func (s *Server) putParticipant(c call) response { return s.setParticipant(c, false) }

// patchParticipant is PATCH .../participants/{user}: only the fields sent
// change, the user must already participate, and access may be "None".
func (s *Server) patchParticipant(c call) response { return s.setParticipant(c, true) }

func (s *Server) setParticipant(c call, patch bool) response {
	conv, uid, errResp := s.participantPath(c)
	if errResp != nil {
		return *errResp
	}
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(c.body)) > 0 {
		var ok bool
		if fields, ok = object(c.body); !ok {
			return errorResponse(http.StatusBadRequest, "body must be a JSON object")
		}
	}
	cur, in := conv.conv.Participants[uid]
	if patch && !in {
		return errorResponse(http.StatusNotFound, "user is not a participant")
	}
	if !patch {
		cur = Participation{Access: "ReadWrite", Notify: true}
	}
	if p := mergeParticipation(&cur, fields, patch); len(p) > 0 {
		return talkJSBadRequest(p)
	}
	conv.conv.Participants[uid] = cur
	return emptyOK()
}

// mergeParticipation applies the fields of a PUT or PATCH to cur.
func mergeParticipation(cur *Participation, fields map[string]json.RawMessage, patch bool) problemList {
	var p problemList
	for k, raw := range fields {
		switch k {
		case "access":
			v, _ := asString(raw)
			switch {
			case v == "ReadWrite" || v == "Read" || (patch && v == "None"):
				cur.Access = v
			case patch:
				p.add("access", `must be "ReadWrite", "Read" or "None"`)
			default:
				p.add("access", `must be "ReadWrite" or "Read"`)
			}
		case "notify":
			var b bool
			if v, ok := asString(raw); ok && v == "MentionsOnly" {
				cur.Notify = v
			} else if json.Unmarshal(raw, &b) == nil && !isNull(raw) {
				cur.Notify = b
			} else {
				p.add("notify", `must be true, false or "MentionsOnly"`)
			}
		default:
			p.unknown(k)
		}
	}
	return p
}

// removeParticipant is DELETE .../participants/{user}: the user leaves.
// It is idempotent: a user who does not participate is no error.
func (s *Server) removeParticipant(c call) response {
	conv, uid, errResp := s.participantPath(c)
	if errResp != nil {
		return *errResp
	}
	delete(conv.conv.Participants, uid)
	return emptyOK()
}

// participantPath finds the conversation and the user a participant path
// names, or answers 404.
func (s *Server) participantPath(c call) (*convState, string, *response) {
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return nil, "", errResp
	}
	uid := c.param("user")
	if _, ok := s.talkjs.users[uid]; !ok {
		resp := errorResponse(http.StatusNotFound, "user not found")
		return nil, "", &resp
	}
	return conv, uid, nil
}

// triggerNotifications is POST conversations/{conversation}/notifications:
// TalkJS (re-)sends email or SMS notifications of the unanswered messages.
// The fake sends nothing: it checks the body, counts the trigger in
// Stats.TalkJSNotifications and answers {}. channels is required (one or
// more of "email" and "sms"); recipients, when sent, names one or more
// participants (left out, TalkJS notifies everyone with unanswered
// messages); smsSettings takes smsTemplate; emailSettings takes the
// strings footer, header, subject and inboxUrl, and any other key (the
// reference lists more keys it could not read).
func (s *Server) triggerNotifications(c call) response {
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return *errResp
	}
	fields, ok := object(c.body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object")
	}
	var p problemList
	for k, raw := range fields {
		switch k {
		case "channels":
			var chs []string
			if json.Unmarshal(raw, &chs) != nil || len(chs) == 0 ||
				slices.ContainsFunc(chs, func(ch string) bool { return ch != "email" && ch != "sms" }) {
				p.add("channels", `must be a non-empty array of "email" and "sms"`)
			}
		case "recipients":
			var ids []string
			if json.Unmarshal(raw, &ids) != nil || len(ids) == 0 {
				p.add("recipients", "must be a non-empty array of user ids, or left out to notify everyone")
			}
			for _, uid := range ids {
				if _, in := conv.conv.Participants[uid]; !in {
					p.add("recipients", strconv.Quote(uid)+" is not a participant of the conversation")
				}
			}
		case "smsSettings":
			var sms struct {
				SMSTemplate *string `json:"smsTemplate"`
			}
			if strictObject(raw, &sms, "smsTemplate") != nil {
				p.add("smsSettings", "must be an object with the string smsTemplate")
			}
		case "emailSettings":
			var email struct {
				Subject, Header, Footer, InboxURL *string
			}
			if _, ok := object(raw); !ok || json.Unmarshal(raw, &email) != nil {
				p.add("emailSettings", "must be an object; subject, header, footer and inboxUrl strings")
			}
		default:
			p.unknown(k)
		}
	}
	if _, ok := fields["channels"]; !ok {
		p.add("channels", "is required")
	}
	if len(p) > 0 {
		return talkJSBadRequest(p)
	}
	s.stats.TalkJSNotifications++
	return emptyOK()
}

// strictObject decodes raw, a JSON object, into v, and refuses a member
// whose name is not one of keys, spelt exactly (encoding/json alone would
// take "userIDs" for "userIds").
func strictObject(raw json.RawMessage, v any, keys ...string) error {
	fields, ok := object(raw)
	if !ok {
		return errors.New("not a JSON object")
	}
	for k := range fields {
		if !slices.Contains(keys, k) {
			return errors.New("unknown field " + strconv.Quote(k))
		}
	}
	return json.Unmarshal(raw, v)
}

// markRead is POST conversations/{conversation}/readBy/{user}, the path of
// the PHP client's markAsReadBy (TalkJS does not document it): every
// message of the conversation that the user did not send is read by the
// user. The user must be a participant (404 otherwise); a body is refused
// (the client sends none). It answers {}.
func (s *Server) markRead(c call) response {
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return *errResp
	}
	uid := c.param("user")
	if _, in := conv.conv.Participants[uid]; !in {
		return errorResponse(http.StatusNotFound, "user is not a participant of the conversation")
	}
	if len(bytes.TrimSpace(c.body)) > 0 {
		return errorResponse(http.StatusBadRequest, "readBy takes no body")
	}
	for _, m := range conv.messages {
		if (m.SenderID == nil || *m.SenderID != uid) && !slices.Contains(m.ReadBy, uid) {
			m.ReadBy = append(m.ReadBy, uid)
		}
	}
	return emptyOK()
}

// conversationFilter is the filter query parameter of GET conversations:
// a JSON object in the syntax of TalkJS's conversation list filters. The
// fake applies custom (each key "exists", "!exists" or [op, operand] with
// "==", "!=", "oneOf", "!oneOf"), createdAt and lastMessageTs ([op,
// operand] with ">", "<", ">=", "<=", "between", "!between"); any other
// key is a 400, as is a filter that is not such JSON.
type conversationFilter struct {
	Custom        map[string]json.RawMessage `json:"custom"`
	CreatedAt     json.RawMessage            `json:"createdAt"`
	LastMessageTs json.RawMessage            `json:"lastMessageTs"`
}

// parseConversationFilter reads the filter parameter; nil when absent.
func parseConversationFilter(v string) (*conversationFilter, *response) {
	if v == "" {
		return nil, nil
	}
	bad := func(msg string) (*conversationFilter, *response) {
		resp := talkJSBadRequest(problemList{{"filter", msg}})
		return nil, &resp
	}
	var f conversationFilter
	if err := strictObject(json.RawMessage(v), &f, "custom", "createdAt", "lastMessageTs"); err != nil {
		return bad("must be a JSON conversation filter the fake supports (custom, createdAt, lastMessageTs): " + err.Error())
	}
	for k, raw := range f.Custom {
		if _, err := customPredicate(raw); err != nil {
			return bad("custom." + k + ": " + err.Error())
		}
	}
	for name, raw := range map[string]json.RawMessage{"createdAt": f.CreatedAt, "lastMessageTs": f.LastMessageTs} {
		if raw != nil {
			if _, err := numberPredicate(raw); err != nil {
				return bad(name + ": " + err.Error())
			}
		}
	}
	return &f, nil
}

// matches reports whether conv passes every predicate of f.
func (f *conversationFilter) matches(conv Conversation) bool {
	for k, raw := range f.Custom {
		pred, _ := customPredicate(raw)
		v, ok := conv.Custom[k]
		if !pred(v, ok) {
			return false
		}
	}
	if f.CreatedAt != nil {
		pred, _ := numberPredicate(f.CreatedAt)
		if !pred(float64(conv.CreatedAt)) {
			return false
		}
	}
	if f.LastMessageTs != nil {
		pred, _ := numberPredicate(f.LastMessageTs)
		if conv.LastMessage == nil || !pred(float64(conv.LastMessage.CreatedAt)) {
			return false
		}
	}
	return true
}

// customPredicate reads a custom field's predicate: "exists", "!exists",
// or [op, operand] with "==" and "!=" (a string) or "oneOf" and "!oneOf"
// (strings).
func customPredicate(raw json.RawMessage) (func(v string, ok bool) bool, error) {
	if s, ok := asString(raw); ok {
		switch s {
		case "exists":
			return func(_ string, ok bool) bool { return ok }, nil
		case "!exists":
			return func(_ string, ok bool) bool { return !ok }, nil
		}
		return nil, errors.New(`a string must be "exists" or "!exists"`)
	}
	var pair []json.RawMessage
	var op string
	if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 || json.Unmarshal(pair[0], &op) != nil {
		return nil, errors.New(`must be "exists", "!exists" or [operator, operand]`)
	}
	switch op {
	case "==", "!=":
		var want string
		if json.Unmarshal(pair[1], &want) != nil {
			return nil, errors.New(op + " takes a string")
		}
		return func(v string, ok bool) bool { return (ok && v == want) == (op == "==") }, nil
	case "oneOf", "!oneOf":
		var set []string
		if json.Unmarshal(pair[1], &set) != nil {
			return nil, errors.New(op + " takes an array of strings")
		}
		return func(v string, ok bool) bool { return (ok && slices.Contains(set, v)) == (op == "oneOf") }, nil
	}
	return nil, errors.New("unknown operator " + strconv.Quote(op))
}

// numberPredicate reads a time predicate: [op, number] with ">", "<",
// ">=", "<=", or [op, [from, to]] with "between", "!between" (inclusive).
func numberPredicate(raw json.RawMessage) (func(float64) bool, error) {
	var pair []json.RawMessage
	var op string
	if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 || json.Unmarshal(pair[0], &op) != nil {
		return nil, errors.New("must be [operator, operand]")
	}
	var n float64
	var r [2]float64
	switch op {
	case ">", "<", ">=", "<=":
		if json.Unmarshal(pair[1], &n) != nil {
			return nil, errors.New(op + " takes a number")
		}
	case "between", "!between":
		if json.Unmarshal(pair[1], &r) != nil {
			return nil, errors.New(op + " takes [from, to]")
		}
	default:
		return nil, errors.New("unknown operator " + strconv.Quote(op))
	}
	return func(v float64) bool {
		switch op {
		case ">":
			return v > n
		case "<":
			return v < n
		case ">=":
			return v >= n
		case "<=":
			return v <= n
		case "between":
			return v >= r[0] && v <= r[1]
		}
		return v < r[0] || v > r[1]
	}, nil
}
