package convotest

// This file holds the TalkJS messages:
// /v1/{appId}/conversations/{conversation}/messages/....

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// Message is a TalkJS message, in the JSON shape the API answers.
type Message struct {
	ID                  string            `json:"id"`
	ConversationID      string            `json:"conversationId"`
	Type                string            `json:"type"` // "UserMessage" or "SystemMessage"
	SenderID            *string           `json:"senderId"`
	ReadBy              []string          `json:"readBy"`
	Text                string            `json:"text"`
	Attachment          any               `json:"attachment"` // always null: the fake has no files
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
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return *errResp
	}
	var items []json.RawMessage
	if b := bytes.TrimSpace(c.body); len(b) == 0 || b[0] != '[' || json.Unmarshal(b, &items) != nil {
		return errorResponse(http.StatusBadRequest, "body must be a JSON array of messages")
	}
	if len(items) == 0 || len(items) > maxSendMessages {
		return errorResponse(http.StatusBadRequest, fmt.Sprintf("send 1 to %d messages per request, got %d", maxSendMessages, len(items)))
	}
	msgs := make([]*Message, len(items))
	var all problemList
	for i, raw := range items {
		m, p := parseMessage(conv, raw)
		for _, e := range p {
			all.add(fmt.Sprintf("messages[%d]: %s", i, e))
		}
		msgs[i] = m
	}
	if len(all) > 0 {
		return badRequest(all)
	}
	ids := make([]map[string]string, len(msgs))
	now := nowMillis()
	for i, m := range msgs {
		ids[i] = map[string]string{"id": s.storeMessage(conv, m, now)}
	}
	return jsonResponse(http.StatusOK, ids)
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

// parseMessage checks one message to send.
func parseMessage(c *convState, raw json.RawMessage) (*Message, problemList) {
	var p problemList
	fields, ok := object(raw)
	if !ok {
		p.add("must be a JSON object")
		return nil, p
	}
	m := &Message{ReadBy: []string{}, Origin: "rest", Custom: map[string]string{}}
	var sender string
	hasSender, hasText := false, false
	for k, v := range fields {
		switch k {
		case "type":
			m.Type, _ = asString(v)
		case "text":
			if m.Text, hasText = asString(v); !hasText {
				p.add("text must be a string")
			}
		case "sender":
			hasSender = true
			if sender, ok = asString(v); !ok || sender == "" {
				p.add("sender must be a user id")
			}
		case "referencedMessageId":
			ref, ok := asString(v)
			if !ok || !slices.ContainsFunc(c.messages, func(m *Message) bool { return m.ID == ref }) {
				p.add("referencedMessageId must be the id of a message of the conversation")
				continue
			}
			m.ReferencedMessageID = &ref
		case "custom":
			m.Custom = p.custom(v, m.Custom)
		case "idempotencyKey":
			if m.IdempotencyKey, ok = asString(v); !ok || m.IdempotencyKey == "" {
				p.add("idempotencyKey must be a non-empty string")
			}
		case "location":
			if json.Unmarshal(v, &m.Location) != nil || len(m.Location) != 2 {
				p.add("location must be an array of two numbers")
			}
		case "attachmentToken":
			p.add("attachmentToken: unknown token (the fake stores no files)")
		default:
			p.unknown(k)
		}
	}
	if !hasText && m.Location == nil {
		p.add("text is required")
	}
	checkMessageType(c, m, sender, hasSender, &p)
	return m, p
}

// checkMessageType applies the rules of the message's type: a
// UserMessage has a sender who participates, a SystemMessage has neither
// a sender nor a location.
func checkMessageType(c *convState, m *Message, sender string, hasSender bool, p *problemList) {
	switch m.Type {
	case "UserMessage":
		if !hasSender {
			p.add("a UserMessage needs a sender")
		} else if sender != "" {
			if _, in := c.conv.Participants[sender]; !in {
				p.add("sender " + strconv.Quote(sender) + " is not a participant of the conversation")
			}
			m.SenderID = &sender
		}
	case "SystemMessage":
		if hasSender {
			p.add("a SystemMessage must not have a sender")
		}
		if m.Location != nil {
			p.add("a SystemMessage cannot have a location")
		}
	default:
		p.add(`type must be "UserMessage" or "SystemMessage"`)
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

// getMessage is GET conversations/{conversation}/messages/{message}.
func (s *Server) getMessage(c call) response {
	conv, errResp := s.conversation(c)
	if errResp != nil {
		return *errResp
	}
	mid := c.param("message")
	for _, m := range conv.messages {
		if m.ID == mid {
			return jsonResponse(http.StatusOK, m)
		}
	}
	return errorResponse(http.StatusNotFound, "message not found")
}
