package convotest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TalkJS limits the fake applies.
const (
	maxBatchUsers   = 100 // users in one PUT /users
	maxSendMessages = 10  // messages in one POST .../messages
	defaultLimit    = 10  // page size of a list without limit
	maxLimit        = 100 // largest limit of a list
)

// User is a TalkJS user, in the JSON shape the API answers. Nullable
// fields are nil when unset.
type User struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Email            []string          `json:"email"`
	Phone            []string          `json:"phone"`
	PhotoURL         *string           `json:"photoUrl"`
	WelcomeMessage   *string           `json:"welcomeMessage"`
	Role             string            `json:"role"`
	Locale           *string           `json:"locale"`
	AvailabilityText *string           `json:"availabilityText"` // not settable over REST: always nil
	Custom           map[string]string `json:"custom"`
	PushTokens       map[string]bool   `json:"pushTokens"`
	CreatedAt        int64             `json:"createdAt"` // Unix milliseconds
}

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

type talkjsState struct {
	users     map[string]*User
	userOrder []string
	convs     map[string]*convState
	clock     int // bumped on each conversation's creation and message send
}

type convState struct {
	conv     Conversation
	activity int        // talkjsState.clock at the last creation or send
	messages []*Message // oldest first
	idem     map[string]string
}

func (t *talkjsState) init() {
	*t = talkjsState{users: make(map[string]*User), convs: make(map[string]*convState)}
}

// User returns a copy of the TalkJS user with the id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.talkjs.users[id]
	if !ok {
		return User{}, false
	}
	return u.clone(), true
}

// Conversation returns a copy of the TalkJS conversation with the id.
func (s *Server) Conversation(id string) (Conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.talkjs.convs[id]
	if !ok {
		return Conversation{}, false
	}
	return c.snapshot(), true
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
	out := make([]Message, len(c.messages))
	for i, m := range c.messages {
		out[i] = m.clone()
	}
	return out
}

func (u *User) clone() User {
	c := *u
	c.Email = slices.Clone(u.Email)
	c.Phone = slices.Clone(u.Phone)
	c.Custom = maps.Clone(u.Custom)
	c.PushTokens = maps.Clone(u.PushTokens)
	return c
}

func (m *Message) clone() Message {
	c := *m
	c.ReadBy = slices.Clone(m.ReadBy)
	c.Location = slices.Clone(m.Location)
	c.Custom = maps.Clone(m.Custom)
	return c
}

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

// routeTalkJS serves /v1/{appId}/.... The caller holds s.mu. Checks, in
// order: the Authorization header is a bearer token (401), the app id
// (404), the token (401), the route (404) and method (405), and for a
// request with a body, its Content-Type (400).
func (s *Server) routeTalkJS(r *http.Request, segs []string, body []byte) response {
	if len(segs) == 0 {
		return notFound(r.URL.EscapedPath())
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return errorResponse(http.StatusUnauthorized, `missing or malformed Authorization header; want "Bearer <secret key or app token>"`)
	}
	if segs[0] != s.appID {
		return errorResponse(http.StatusNotFound, "app not found")
	}
	if !s.talkJSTokenOK(token) {
		return errorResponse(http.StatusUnauthorized, "invalid secret key or app token")
	}
	h, allow := s.talkJSHandler(r.Method, segs[1:])
	if allow == nil {
		return notFound(r.URL.EscapedPath())
	}
	if h == nil {
		return methodNotAllowed(allow...)
	}
	if len(bytes.TrimSpace(body)) > 0 && !isJSON(r) {
		return errorResponse(http.StatusBadRequest, "Content-Type must be application/json")
	}
	return h(r, body)
}

type talkJSFunc func(r *http.Request, body []byte) response

// talkJSHandler finds the handler of a method and path. allow lists the
// methods of the path, nil when the path is unknown; the handler is nil
// when the method is not one of them.
func (s *Server) talkJSHandler(method string, p []string) (talkJSFunc, []string) {
	routes := map[string]talkJSFunc{}
	switch {
	case len(p) == 1 && p[0] == "users":
		routes["GET"] = s.listUsers
		routes["PUT"] = s.putUsers
	case len(p) == 2 && p[0] == "users":
		id := p[1]
		routes["GET"] = func(*http.Request, []byte) response { return s.getUser(id) }
		routes["PUT"] = func(_ *http.Request, b []byte) response { return s.putUser(id, b) }
	case len(p) == 3 && p[0] == "users" && p[2] == "conversations":
		id := p[1]
		routes["GET"] = func(r *http.Request, _ []byte) response { return s.listUserConversations(r, id) }
	case len(p) == 1 && p[0] == "conversations":
		routes["GET"] = func(r *http.Request, _ []byte) response { return s.listConversations(r, "") }
	case len(p) == 2 && p[0] == "conversations":
		id := p[1]
		routes["GET"] = func(*http.Request, []byte) response { return s.getConversation(id) }
		routes["PUT"] = func(_ *http.Request, b []byte) response { return s.putConversation(id, b) }
		routes["DELETE"] = func(*http.Request, []byte) response { return s.deleteConversation(id) }
	case len(p) == 4 && p[0] == "conversations" && p[2] == "participants":
		cid, uid := p[1], p[3]
		routes["PUT"] = func(_ *http.Request, b []byte) response { return s.setParticipant(cid, uid, b, false) }
		routes["PATCH"] = func(_ *http.Request, b []byte) response { return s.setParticipant(cid, uid, b, true) }
		routes["DELETE"] = func(*http.Request, []byte) response { return s.removeParticipant(cid, uid) }
	case len(p) == 3 && p[0] == "conversations" && p[2] == "messages":
		cid := p[1]
		routes["GET"] = func(r *http.Request, _ []byte) response { return s.listMessages(r, cid) }
		routes["POST"] = func(_ *http.Request, b []byte) response { return s.sendMessages(cid, b) }
	case len(p) == 4 && p[0] == "conversations" && p[2] == "messages":
		cid, mid := p[1], p[3]
		routes["GET"] = func(*http.Request, []byte) response { return s.getMessage(cid, mid) }
	default:
		return nil, nil
	}
	allow := slices.Sorted(maps.Keys(routes))
	return routes[method], allow
}

// talkJSTokenOK accepts the secret key itself, or an app token: a JWT
// signed HS256 with the secret key, with claims tokenType "app", iss the
// app id and an exp in the future.
func (s *Server) talkJSTokenOK(token string) bool {
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.secret)) == 1 {
		return true
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	var head struct {
		Alg string `json:"alg"`
	}
	if !decodeSegment(parts[0], &head) || head.Alg != "HS256" {
		return false
	}
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return false
	}
	var claims struct {
		TokenType string   `json:"tokenType"`
		Iss       string   `json:"iss"`
		Exp       *float64 `json:"exp"`
	}
	return decodeSegment(parts[1], &claims) && claims.TokenType == "app" && claims.Iss == s.appID &&
		claims.Exp != nil && time.Unix(int64(*claims.Exp), 0).After(time.Now())
}

func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	return err == nil && json.Unmarshal(b, v) == nil
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// ---- users

func (s *Server) getUser(id string) response {
	u, ok := s.talkjs.users[id]
	if !ok {
		return errorResponse(http.StatusNotFound, "user not found")
	}
	return jsonResponse(http.StatusOK, u)
}

func (s *Server) putUser(id string, body []byte) response {
	fields, ok := object(body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object")
	}
	u, problems := s.mergeUser(id, fields)
	if len(problems) > 0 {
		return errorResponse(http.StatusBadRequest, strings.Join(problems, "; "))
	}
	s.storeUser(u)
	return jsonResponse(http.StatusOK, struct{}{})
}

// putUsers is the batch upsert: all or nothing.
func (s *Server) putUsers(_ *http.Request, body []byte) response {
	all, ok := object(body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object of user id to user")
	}
	if len(all) > maxBatchUsers {
		return errorResponse(http.StatusBadRequest, fmt.Sprintf("at most %d users per request, got %d", maxBatchUsers, len(all)))
	}
	ids := slices.Sorted(maps.Keys(all))
	merged := make([]*User, 0, len(ids))
	errs := map[string]string{}
	for _, id := range ids {
		fields, ok := object(all[id])
		var problems []string
		var u *User
		switch {
		case id == "":
			problems = []string{"user id must not be empty"}
		case !ok:
			problems = []string{"user must be a JSON object"}
		default:
			u, problems = s.mergeUser(id, fields)
		}
		if len(problems) > 0 {
			errs[id] = strings.Join(problems, "; ")
			continue
		}
		merged = append(merged, u)
	}
	if len(errs) > 0 {
		return jsonResponse(http.StatusBadRequest, map[string]any{
			"message": fmt.Sprintf("%d of %d users are invalid; nothing was applied", len(errs), len(ids)),
			"errors":  errs,
		})
	}
	for _, u := range merged {
		s.storeUser(u)
	}
	return jsonResponse(http.StatusOK, struct{}{})
}

func (s *Server) storeUser(u *User) {
	if _, ok := s.talkjs.users[u.ID]; !ok {
		s.talkjs.userOrder = append(s.talkjs.userOrder, u.ID)
	}
	s.talkjs.users[u.ID] = u
}

// mergeUser applies an upsert body to a copy of the user (a new one when
// absent), without storing it. Only the fields sent change; null erases a
// field. name is required for a new user and can never be erased.
func (s *Server) mergeUser(id string, fields map[string]json.RawMessage) (*User, []string) {
	var u User
	old, exists := s.talkjs.users[id]
	if exists {
		u = old.clone()
	} else {
		u = User{ID: id, Role: "default", Custom: map[string]string{}, PushTokens: map[string]bool{}, CreatedAt: nowMillis()}
	}
	var p problemList
	for k, raw := range fields {
		switch k {
		case "name":
			if v, ok := asString(raw); ok && strings.TrimSpace(v) != "" {
				u.Name = v
			} else {
				p.add("name must be a non-empty string")
			}
		case "email":
			u.Email = p.stringListOrNull(k, raw, u.Email)
		case "phone":
			u.Phone = p.stringListOrNull(k, raw, u.Phone)
		case "photoUrl":
			u.PhotoURL = p.stringOrNull(k, raw, u.PhotoURL)
		case "welcomeMessage":
			u.WelcomeMessage = p.stringOrNull(k, raw, u.WelcomeMessage)
		case "locale":
			u.Locale = p.stringOrNull(k, raw, u.Locale)
		case "role":
			if r := p.stringOrNull(k, raw, &u.Role); r != nil {
				u.Role = *r
			} else {
				u.Role = "default"
			}
		case "custom":
			u.Custom = p.custom(raw, u.Custom)
		case "pushTokens":
			u.PushTokens = p.pushTokens(raw, u.PushTokens)
		default:
			p.add("unknown field " + strconv.Quote(k))
		}
	}
	if !exists && u.Name == "" && len(p) == 0 {
		p.add("name is required to create a user")
	}
	return &u, p
}

func (s *Server) listUsers(r *http.Request, _ []byte) response {
	users := make([]*User, len(s.talkjs.userOrder))
	for i, id := range s.talkjs.userOrder {
		users[i] = s.talkjs.users[id]
	}
	page, errResp := paginate(r, users, func(u *User) string { return u.ID })
	if errResp != nil {
		return *errResp
	}
	return jsonResponse(http.StatusOK, map[string]any{"data": page})
}

// ---- conversations

func (s *Server) getConversation(id string) response {
	c, ok := s.talkjs.convs[id]
	if !ok {
		return errorResponse(http.StatusNotFound, "conversation not found")
	}
	return jsonResponse(http.StatusOK, c.snapshot())
}

// putConversation merges: only the fields sent change, null erases one,
// and participants are added (ReadWrite, notify true), never removed or
// changed. Every participant must be an existing user.
func (s *Server) putConversation(id string, body []byte) response {
	fields, ok := object(body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object")
	}
	var conv Conversation
	old, exists := s.talkjs.convs[id]
	if exists {
		conv = old.snapshot()
		conv.LastMessage = nil
	} else {
		conv = Conversation{ID: id, Custom: map[string]string{}, Participants: map[string]Participation{}, CreatedAt: nowMillis()}
	}
	var p problemList
	for k, raw := range fields {
		switch k {
		case "participants":
			var ids []string
			if json.Unmarshal(raw, &ids) != nil || isNull(raw) {
				p.add("participants must be an array of user ids")
				continue
			}
			for _, uid := range ids {
				if _, ok := s.talkjs.users[uid]; !ok {
					p.add("participant " + strconv.Quote(uid) + " is not a user")
					continue
				}
				if _, in := conv.Participants[uid]; !in {
					conv.Participants[uid] = Participation{Access: "ReadWrite", Notify: true}
				}
			}
		case "subject":
			conv.Subject = p.stringOrNull(k, raw, conv.Subject)
		case "photoUrl":
			conv.PhotoURL = p.stringOrNull(k, raw, conv.PhotoURL)
		case "welcomeMessages":
			conv.WelcomeMessages = p.stringListOrNull(k, raw, conv.WelcomeMessages)
		case "custom":
			conv.Custom = p.custom(raw, conv.Custom)
		default:
			p.add("unknown field " + strconv.Quote(k))
		}
	}
	if len(p) > 0 {
		return errorResponse(http.StatusBadRequest, strings.Join(p, "; "))
	}
	if exists {
		old.conv = conv
	} else {
		s.talkjs.clock++
		s.talkjs.convs[id] = &convState{conv: conv, activity: s.talkjs.clock, idem: map[string]string{}}
	}
	return jsonResponse(http.StatusOK, struct{}{})
}

// deleteConversation removes it with its messages, participations and
// idempotency keys.
func (s *Server) deleteConversation(id string) response {
	if _, ok := s.talkjs.convs[id]; !ok {
		return errorResponse(http.StatusNotFound, "conversation not found")
	}
	delete(s.talkjs.convs, id)
	return jsonResponse(http.StatusOK, struct{}{})
}

// listConversations lists every conversation, or those of a user, by last
// activity, latest first.
func (s *Server) listConversations(r *http.Request, userID string) response {
	var convs []*convState
	for _, c := range s.talkjs.convs {
		if _, in := c.conv.Participants[userID]; userID == "" || in {
			convs = append(convs, c)
		}
	}
	slices.SortFunc(convs, func(a, b *convState) int { return b.activity - a.activity })
	page, errResp := paginate(r, convs, func(c *convState) string { return c.conv.ID })
	if errResp != nil {
		return *errResp
	}
	out := make([]Conversation, len(page))
	for i, c := range page {
		out[i] = c.snapshot()
	}
	return jsonResponse(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) listUserConversations(r *http.Request, userID string) response {
	if _, ok := s.talkjs.users[userID]; !ok {
		return errorResponse(http.StatusNotFound, "user not found")
	}
	return s.listConversations(r, userID)
}

// ---- participants

// setParticipant is PUT (patch false: overwrite, defaults ReadWrite and
// notify true) or PATCH (patch true: only the fields sent, the user must
// already participate, access may be "None").
func (s *Server) setParticipant(cid, uid string, body []byte, patch bool) response {
	c, ok := s.talkjs.convs[cid]
	if !ok {
		return errorResponse(http.StatusNotFound, "conversation not found")
	}
	if _, ok := s.talkjs.users[uid]; !ok {
		return errorResponse(http.StatusNotFound, "user not found")
	}
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		if fields, ok = object(body); !ok {
			return errorResponse(http.StatusBadRequest, "body must be a JSON object")
		}
	}
	cur, in := c.conv.Participants[uid]
	if patch && !in {
		return errorResponse(http.StatusNotFound, "user is not a participant")
	}
	if !patch {
		cur = Participation{Access: "ReadWrite", Notify: true}
	}
	var p problemList
	for k, raw := range fields {
		switch k {
		case "access":
			v, _ := asString(raw)
			switch {
			case v == "ReadWrite" || v == "Read" || (patch && v == "None"):
				cur.Access = v
			case patch:
				p.add(`access must be "ReadWrite", "Read" or "None"`)
			default:
				p.add(`access must be "ReadWrite" or "Read"`)
			}
		case "notify":
			var b bool
			if v, ok := asString(raw); ok && v == "MentionsOnly" {
				cur.Notify = v
			} else if json.Unmarshal(raw, &b) == nil && !isNull(raw) {
				cur.Notify = b
			} else {
				p.add(`notify must be true, false or "MentionsOnly"`)
			}
		default:
			p.add("unknown field " + strconv.Quote(k))
		}
	}
	if len(p) > 0 {
		return errorResponse(http.StatusBadRequest, strings.Join(p, "; "))
	}
	c.conv.Participants[uid] = cur
	return jsonResponse(http.StatusOK, struct{}{})
}

// removeParticipant is DELETE: the user leaves. It is idempotent: a user
// who does not participate is no error.
func (s *Server) removeParticipant(cid, uid string) response {
	c, ok := s.talkjs.convs[cid]
	if !ok {
		return errorResponse(http.StatusNotFound, "conversation not found")
	}
	if _, ok := s.talkjs.users[uid]; !ok {
		return errorResponse(http.StatusNotFound, "user not found")
	}
	delete(c.conv.Participants, uid)
	return jsonResponse(http.StatusOK, struct{}{})
}

// ---- messages

// sendMessages stores 1 to 10 messages, all or nothing, and answers their
// ids in order. A message whose idempotencyKey was seen in the
// conversation is not stored again: the first message's id is answered.
func (s *Server) sendMessages(cid string, body []byte) response {
	c, ok := s.talkjs.convs[cid]
	if !ok {
		return errorResponse(http.StatusNotFound, "conversation not found")
	}
	var items []json.RawMessage
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '[' || json.Unmarshal(b, &items) != nil {
		return errorResponse(http.StatusBadRequest, "body must be a JSON array of messages")
	}
	if len(items) == 0 || len(items) > maxSendMessages {
		return errorResponse(http.StatusBadRequest, fmt.Sprintf("send 1 to %d messages per request, got %d", maxSendMessages, len(items)))
	}
	msgs := make([]*Message, len(items))
	var all problemList
	for i, raw := range items {
		m, p := s.parseMessage(c, raw)
		for _, e := range p {
			all.add(fmt.Sprintf("messages[%d]: %s", i, e))
		}
		msgs[i] = m
	}
	if len(all) > 0 {
		return errorResponse(http.StatusBadRequest, strings.Join(all, "; "))
	}
	ids := make([]map[string]string, len(msgs))
	now := nowMillis()
	for i, m := range msgs {
		if m.IdempotencyKey != "" {
			if id, seen := c.idem[m.IdempotencyKey]; seen {
				ids[i] = map[string]string{"id": id}
				s.stats.TalkJSReplays++
				continue
			}
		}
		m.ID = "msg_" + randomBase62(22)
		m.ConversationID = cid
		m.CreatedAt = now
		if m.IdempotencyKey != "" {
			c.idem[m.IdempotencyKey] = m.ID
		}
		c.messages = append(c.messages, m)
		s.stats.TalkJSMessages++
		ids[i] = map[string]string{"id": m.ID}
		s.talkjs.clock++
		c.activity = s.talkjs.clock
	}
	return jsonResponse(http.StatusOK, ids)
}

// parseMessage checks one message to send.
func (s *Server) parseMessage(c *convState, raw json.RawMessage) (*Message, problemList) {
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
			p.add("unknown field " + strconv.Quote(k))
		}
	}
	if !hasText && m.Location == nil {
		p.add("text is required")
	}
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
	return m, p
}

// listMessages lists a conversation's messages, newest first.
func (s *Server) listMessages(r *http.Request, cid string) response {
	c, ok := s.talkjs.convs[cid]
	if !ok {
		return errorResponse(http.StatusNotFound, "conversation not found")
	}
	newest := slices.Clone(c.messages)
	slices.Reverse(newest)
	page, errResp := paginate(r, newest, func(m *Message) string { return m.ID })
	if errResp != nil {
		return *errResp
	}
	return jsonResponse(http.StatusOK, map[string]any{"data": page})
}

func (s *Server) getMessage(cid, mid string) response {
	c, ok := s.talkjs.convs[cid]
	if !ok {
		return errorResponse(http.StatusNotFound, "conversation not found")
	}
	for _, m := range c.messages {
		if m.ID == mid {
			return jsonResponse(http.StatusOK, m)
		}
	}
	return errorResponse(http.StatusNotFound, "message not found")
}

// ---- shared helpers

// paginate reads limit (1 to 100, default 10) and startingAfter (the id
// of the last item of the previous page; an id not in the list is a 400)
// and returns the page.
func paginate[T any](r *http.Request, items []T, id func(T) string) ([]T, *response) {
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			resp := errorResponse(http.StatusBadRequest, fmt.Sprintf("limit must be an integer from 1 to %d", maxLimit))
			return nil, &resp
		}
		limit = n
	}
	start := 0
	if after := q.Get("startingAfter"); after != "" {
		i := slices.IndexFunc(items, func(t T) bool { return id(t) == after })
		if i < 0 {
			resp := errorResponse(http.StatusBadRequest, "startingAfter: no item with id "+strconv.Quote(after))
			return nil, &resp
		}
		start = i + 1
	}
	end := min(start+limit, len(items))
	return slices.Clone(items[start:end]), nil
}

// problemList collects what is wrong with a body.
type problemList []string

func (p *problemList) add(msg string) { *p = append(*p, msg) }

// stringOrNull decodes a string, or null (nil); on a bad type it notes a
// problem and keeps old.
func (p *problemList) stringOrNull(name string, raw json.RawMessage, old *string) *string {
	if isNull(raw) {
		return nil
	}
	v, ok := asString(raw)
	if !ok {
		p.add(name + " must be a string or null")
		return old
	}
	return &v
}

// stringListOrNull decodes an array of strings, or null (nil).
func (p *problemList) stringListOrNull(name string, raw json.RawMessage, old []string) []string {
	if isNull(raw) {
		return nil
	}
	var v []string
	if json.Unmarshal(raw, &v) != nil {
		p.add(name + " must be an array of strings or null")
		return old
	}
	return v
}

// custom applies a custom-field patch: null erases all fields; an object
// sets each key given, and a key given as null is removed. Values must be
// strings.
func (p *problemList) custom(raw json.RawMessage, old map[string]string) map[string]string {
	if isNull(raw) {
		return map[string]string{}
	}
	var patch map[string]*string
	if json.Unmarshal(raw, &patch) != nil || patch == nil {
		p.add("custom must be an object of string values, or null")
		return old
	}
	out := maps.Clone(old)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range patch {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = *v
		}
	}
	return out
}

// pushTokens applies a push-token patch: null unregisters all; an object
// registers each key given as true and unregisters each given as null.
func (p *problemList) pushTokens(raw json.RawMessage, old map[string]bool) map[string]bool {
	if isNull(raw) {
		return map[string]bool{}
	}
	var patch map[string]*bool
	if json.Unmarshal(raw, &patch) != nil || patch == nil {
		p.add("pushTokens must be an object of true or null values, or null")
		return old
	}
	out := maps.Clone(old)
	if out == nil {
		out = map[string]bool{}
	}
	for k, v := range patch {
		switch {
		case v == nil:
			delete(out, k)
		case *v:
			out[k] = true
		default:
			p.add("pushTokens values must be true or null")
		}
	}
	return out
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomBase62 gives n random characters of [0-9A-Za-z].
func randomBase62(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = base62[int(b[i])%62]
	}
	return string(b)
}
