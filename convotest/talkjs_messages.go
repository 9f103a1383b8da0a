package convotest

// This file holds the TalkJS messages:
// /v1/{appId}/conversations/{conversation}/messages/....

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// Message is a TalkJS message, in the JSON shape the API answers.
type Message struct {
	ID             string   `json:"id"`
	ConversationID string   `json:"conversationId"`
	Type           string   `json:"type"` // "UserMessage" or "SystemMessage"
	SenderID       *string  `json:"senderId"`
	ReadBy         []string `json:"readBy"`
	Text           string   `json:"text"`
	// Attachment is the file the message's attachmentToken named, {"url":
	// …, "size": bytes}, or null.
	Attachment          any               `json:"attachment"`
	Location            []float64         `json:"location"`
	Origin              string            `json:"origin"` // "rest"
	CreatedAt           int64             `json:"createdAt"`
	EditedAt            *int64            `json:"editedAt"`
	ReferencedMessageID *string           `json:"referencedMessageId"`
	Custom              map[string]string `json:"custom"`
	// IdempotencyKey is the key the message was sent with; it is not part
	// of the API's answer.
	IdempotencyKey string `json:"-"`
}

// Messages returns a copy of the messages of a TalkJS conversation in the
// order they were stored, oldest first (the API lists them newest first).
// It is nil for an unknown conversation.
func (s *Server) Messages(conversationID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.talkjs.convs[conversationID]
	if !ok {
		return nil
	}
	return copyAll(c.messages, (*Message).clone)
}

func (m *Message) clone() Message {
	c := *m
	c.ReadBy = slices.Clone(m.ReadBy)
	c.Location = slices.Clone(m.Location)
	c.Custom = maps.Clone(m.Custom)
	return c
}

// sendMessages is POST conversations/{conversation}/messages. It stores
// 1 to 10 messages, all or nothing, and answers their ids in order. A
// message whose idempotencyKey was seen in the conversation is not stored
// again: the first message's id is answered.
func (s *Server) sendMessages(c call) response {
	conv, msgs, errResp := s.messageBatch(c, sendRules)
	if errResp != nil {
		return *errResp
	}
	ids := make([]map[string]string, len(msgs))
	now := nowMillis()
	for i, m := range msgs {
		ids[i] = map[string]string{"id": s.storeMessage(conv, m, now)}
	}
	return jsonResponse(http.StatusOK, ids)
}

// importMessages is POST import/conversations/{conversation}/messages.
// It stores 1 to 10 historical user messages, all or nothing, each at its
// timestamp among the conversation's messages, with origin "import", and
// answers {}. Unlike a send it never deduplicates: the same import twice
// stores every message twice, as TalkJS does.
func (s *Server) importMessages(c call) response {
	conv, msgs, errResp := s.messageBatch(c, importRules)
	if errResp != nil {
		return *errResp
	}
	for _, m := range msgs {
		m.ID = "msg_" + randomBase62(22)
		m.ConversationID = conv.conv.ID
		at, _ := slices.BinarySearchFunc(conv.messages, m.CreatedAt+1, func(x *Message, t int64) int { return cmp.Compare(x.CreatedAt, t) })
		conv.messages = slices.Insert(conv.messages, at, m)
		s.stats.TalkJSMessages++
		s.stats.TalkJSImported++
	}
	return emptyOK()
}

// messageBatch reads the body of a send or an import: a JSON array of 1
// to 10 messages to the conversation the path names, every one checked
// by rules.
func (s *Server) messageBatch(c call, rules messageRules) (*convState, []*Message, *response) {
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return nil, nil, errResp
	}
	fail := func(resp response) (*convState, []*Message, *response) { return nil, nil, &resp }
	var items []json.RawMessage
	if b := bytes.TrimSpace(c.body); len(b) == 0 || b[0] != '[' || json.Unmarshal(b, &items) != nil {
		return fail(errorResponse(http.StatusBadRequest, "body must be a JSON array of messages"))
	}
	if len(items) == 0 || len(items) > maxSendMessages {
		return fail(errorResponse(http.StatusBadRequest, fmt.Sprintf("send 1 to %d messages per request, got %d", maxSendMessages, len(items))))
	}
	msgs := make([]*Message, len(items))
	var all problemList
	for i, raw := range items {
		m, p := parseMessage(conv, s.talkjs.files, raw, rules)
		all.within(fmt.Sprintf("messages[%d]", i), p)
		msgs[i] = m
	}
	if len(all) > 0 {
		return fail(talkJSBadRequest(all))
	}
	return conv, msgs, nil
}

// storeMessage stores m in conv at now and returns its id; or, when its
// idempotency key was seen in conv, stores nothing and returns the id of
// the message first sent with it.
func (s *Server) storeMessage(conv *convState, m *Message, now int64) string {
	if m.IdempotencyKey != "" {
		if id, seen := conv.idem[m.IdempotencyKey]; seen {
			s.stats.TalkJSReplays++
			return id
		}
	}
	m.ID = "msg_" + randomBase62(22)
	m.ConversationID = conv.conv.ID
	m.CreatedAt = now
	if m.IdempotencyKey != "" {
		conv.idem[m.IdempotencyKey] = m.ID
	}
	conv.messages = append(conv.messages, m)
	s.stats.TalkJSMessages++
	s.talkjs.clock++
	conv.activity = s.talkjs.clock
	return m.ID
}

// messageRules are the fields a message of one endpoint may and must
// have.
type messageRules struct {
	allowed  []string // every field the endpoint takes
	required []string // the fields it needs, whatever the type
	origin   string
}

var (
	// sendRules: a send takes a text (or a location) and a type; a
	// UserMessage a sender (see checkMessageType).
	sendRules = messageRules{
		allowed:  []string{"type", "text", "sender", "referencedMessageId", "custom", "idempotencyKey", "location", "attachmentToken"},
		required: []string{"type"},
		origin:   "rest",
	}
	// importRules: the shape of the import (every field required but
	// attachmentToken and custom), user messages only.
	importRules = messageRules{
		allowed:  []string{"text", "sender", "timestamp", "readBy", "type", "attachmentToken", "custom"},
		required: []string{"text", "sender", "timestamp", "readBy", "type"},
		origin:   "import",
	}
)

// parseMessage checks one message to send or import, as rules say.
func parseMessage(c *convState, files map[string]*File, raw json.RawMessage, rules messageRules) (*Message, problemList) {
	var p problemList
	fields, ok := object(raw)
	if !ok {
		p.add("", "must be a JSON object")
		return nil, p
	}
	m := &Message{ReadBy: []string{}, Origin: rules.origin, Custom: map[string]string{}}
	var sender string
	for k, v := range fields {
		switch {
		case !slices.Contains(rules.allowed, k):
			p.unknown(k)
		case k == "sender":
			if sender, ok = asString(v); !ok || sender == "" {
				p.add("sender", "must be a user id")
			}
		default:
			setMessageField(c, files, m, k, v, &p)
		}
	}
	checkMessage(c, m, fields, sender, rules, &p)
	return m, p
}

// setMessageField reads field k of a message body into m.
func setMessageField(c *convState, files map[string]*File, m *Message, k string, v json.RawMessage, p *problemList) {
	var ok bool
	switch k {
	case "type":
		m.Type, _ = asString(v)
	case "text":
		if m.Text, ok = asString(v); !ok {
			p.add("text", "must be a string")
		}
	case "referencedMessageId":
		ref, ok := asString(v)
		if !ok || !slices.ContainsFunc(c.messages, func(m *Message) bool { return m.ID == ref }) {
			p.add("referencedMessageId", "must be the id of a message of the conversation")
			return
		}
		m.ReferencedMessageID = &ref
	case "custom":
		m.Custom = p.custom(v, m.Custom)
	case "idempotencyKey":
		if m.IdempotencyKey, ok = asString(v); !ok || m.IdempotencyKey == "" {
			p.add("idempotencyKey", "must be a non-empty string")
		}
	case "location":
		if json.Unmarshal(v, &m.Location) != nil || len(m.Location) != 2 {
			p.add("location", "must be an array of two numbers")
		}
	case "timestamp":
		if json.Unmarshal(v, &m.CreatedAt) != nil || m.CreatedAt <= 0 {
			p.add("timestamp", "must be a positive whole number of Unix milliseconds")
		}
	case "readBy":
		if json.Unmarshal(v, &m.ReadBy) != nil || m.ReadBy == nil {
			p.add("readBy", "must be an array of user ids")
			m.ReadBy = []string{}
		}
	case "attachmentToken":
		tok, _ := asString(v)
		f, ok := files[tok]
		if !ok {
			p.add("attachmentToken", "unknown token: upload the file first (POST /files)")
			return
		}
		m.Attachment = map[string]any{"url": "https://convotest.invalid/files/" + f.Token + "/" + url.PathEscape(f.Filename), "size": len(f.Data)}
	}
}

// checkMessage applies the rules that span fields: the required ones, the
// type's, and readers who participate.
func checkMessage(c *convState, m *Message, fields map[string]json.RawMessage, sender string, rules messageRules, p *problemList) {
	for _, k := range rules.required {
		if _, ok := fields[k]; !ok {
			p.add(k, "is required")
		}
	}
	if _, ok := fields["text"]; !ok && rules.origin == "rest" && m.Location == nil {
		p.add("text", "is required")
	}
	_, hasSender := fields["sender"]
	switch _, sent := fields["type"]; {
	case !sent: // noted as required
	case rules.origin == "import" && m.Type != "UserMessage":
		p.add("type", `must be "UserMessage": only user messages can be imported`)
	default:
		checkMessageType(c, m, sender, hasSender, p)
	}
	for _, uid := range m.ReadBy {
		if _, in := c.conv.Participants[uid]; !in {
			p.add("readBy", strconv.Quote(uid)+" is not a participant of the conversation")
		}
	}
}

// checkMessageType applies the rules of the message's type: a
// UserMessage has a sender who participates, a SystemMessage has neither
// a sender nor a location.
func checkMessageType(c *convState, m *Message, sender string, hasSender bool, p *problemList) {
	switch m.Type {
	case "UserMessage":
		if !hasSender {
			p.add("sender", "is required for a UserMessage")
		} else if sender != "" {
			if _, in := c.conv.Participants[sender]; !in {
				p.add("sender", strconv.Quote(sender)+" is not a participant of the conversation")
			}
			m.SenderID = &sender
		}
	case "SystemMessage":
		if hasSender {
			p.add("sender", "must not be set on a SystemMessage")
		}
		if m.Location != nil {
			p.add("location", "must not be set on a SystemMessage")
		}
	default:
		p.add("type", `must be "UserMessage" or "SystemMessage"`)
	}
}

// listMessages is GET conversations/{conversation}/messages: the
// messages, newest first.
func (s *Server) listMessages(c call) response {
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return *errResp
	}
	newest := slices.Clone(conv.messages)
	slices.Reverse(newest)
	return listPage(c, newest, func(m *Message) string { return m.ID })
}

// message finds the conversation and the message the path names, or
// answers 404.
func (s *Server) message(c call) (*convState, int, *response) {
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return nil, 0, errResp
	}
	mid := c.param("message")
	i := slices.IndexFunc(conv.messages, func(m *Message) bool { return m.ID == mid })
	if i < 0 {
		resp := errorResponse(http.StatusNotFound, "message not found")
		return nil, 0, &resp
	}
	return conv, i, nil
}

// getMessage is GET conversations/{conversation}/messages/{message}.
func (s *Server) getMessage(c call) response {
	conv, i, errResp := s.message(c)
	if errResp != nil {
		return *errResp
	}
	return jsonResponse(http.StatusOK, conv.messages[i])
}

// editMessage is PUT conversations/{conversation}/messages/{message}: it
// replaces the text and patches custom (a key sent as null is removed,
// custom null erases them all), sets editedAt and answers {}. An edit
// must send text or custom.
func (s *Server) editMessage(c call) response {
	conv, i, errResp := s.message(c)
	if errResp != nil {
		return *errResp
	}
	fields, ok := object(c.body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object")
	}
	m := conv.messages[i].clone()
	var p problemList
	for k, v := range fields {
		switch k {
		case "text":
			if m.Text, ok = asString(v); !ok {
				p.add("text", "must be a string")
			}
		case "custom":
			m.Custom = p.custom(v, m.Custom)
		default:
			p.unknown(k)
		}
	}
	if len(fields) == 0 {
		p.add("text", "or custom is required: an edit changes something")
	}
	if len(p) > 0 {
		return talkJSBadRequest(p)
	}
	now := nowMillis()
	m.EditedAt = &now
	conv.messages[i] = &m
	return emptyOK()
}

// deleteMessage is DELETE conversations/{conversation}/messages/{message}:
// the message is gone (a second DELETE is 404) and answers {}.
func (s *Server) deleteMessage(c call) response {
	conv, i, errResp := s.message(c)
	if errResp != nil {
		return *errResp
	}
	conv.messages = slices.Delete(conv.messages, i, i+1)
	return emptyOK()
}
