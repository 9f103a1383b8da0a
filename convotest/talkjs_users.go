package convotest

// This file holds the TalkJS users: /v1/{appId}/users/....

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
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
	AvailabilityText *string           `json:"availabilityText"`
	Custom           map[string]string `json:"custom"`
	PushTokens       map[string]bool   `json:"pushTokens"`
	CreatedAt        int64             `json:"createdAt"` // Unix milliseconds
}

// User returns a copy of the TalkJS user with the id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyOne(s.talkjs.users[id], (*User).clone)
}

func (u *User) clone() User {
	c := *u
	c.Email = slices.Clone(u.Email)
	c.Phone = slices.Clone(u.Phone)
	c.Custom = maps.Clone(u.Custom)
	c.PushTokens = maps.Clone(u.PushTokens)
	return c
}

// getUser is GET users/{user}.
func (s *Server) getUser(c call) response {
	u, ok := s.talkjs.users[c.param("user")]
	if !ok {
		return errorResponse(http.StatusNotFound, "user not found")
	}
	return jsonResponse(http.StatusOK, u)
}

// putUser is PUT users/{user}: an upsert, see mergeUser.
func (s *Server) putUser(c call) response {
	fields, ok := object(c.body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object")
	}
	u, problems := s.mergeUser(c.param("user"), fields)
	if len(problems) > 0 {
		return talkJSBadRequest(problems)
	}
	s.storeUser(u)
	return emptyOK()
}

// putUsers is PUT users, the batch upsert of an object of user id to
// user: all or nothing.
func (s *Server) putUsers(c call) response {
	all, ok := object(c.body)
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
		u, problems := s.mergeBatchUser(id, all[id])
		if len(problems) > 0 {
			errs[id] = problems.text()
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
	return emptyOK()
}

// mergeBatchUser is mergeUser for one member of a batch upsert.
func (s *Server) mergeBatchUser(id string, raw json.RawMessage) (*User, problemList) {
	fields, ok := object(raw)
	switch {
	case id == "":
		return nil, problemList{{"", "user id must not be empty"}}
	case !ok:
		return nil, problemList{{"", "user must be a JSON object"}}
	}
	return s.mergeUser(id, fields)
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
func (s *Server) mergeUser(id string, fields map[string]json.RawMessage) (*User, problemList) {
	var u User
	old, exists := s.talkjs.users[id]
	if exists {
		u = old.clone()
	} else {
		u = User{ID: id, Role: "default", Custom: map[string]string{}, PushTokens: map[string]bool{}, CreatedAt: nowMillis()}
	}
	var p problemList
	nullable := map[string]any{
		"email": &u.Email, "phone": &u.Phone,
		"photoUrl": &u.PhotoURL, "welcomeMessage": &u.WelcomeMessage, "locale": &u.Locale,
		"availabilityText": &u.AvailabilityText,
	}
	p.fields(fields, nullable, func(k string, raw json.RawMessage) {
		switch k {
		case "name":
			if v, ok := asString(raw); ok && strings.TrimSpace(v) != "" {
				u.Name = v
			} else {
				p.add("name", "must be a non-empty string")
			}
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
			p.unknown(k)
		}
	})
	if !exists && u.Name == "" && len(p) == 0 {
		p.add("name", "is required to create a user")
	}
	return &u, p
}

// listUsers is GET users: every user, in creation order; with
// isOnline=true only the users online (see SetPresence), with
// isOnline=false only the others.
func (s *Server) listUsers(c call) response {
	users := make([]*User, 0, len(s.talkjs.userOrder))
	online := c.r.URL.Query().Get("isOnline")
	if online != "" && online != "true" && online != "false" {
		return talkJSBadRequest(problemList{{"isOnline", "must be true or false"}})
	}
	for _, id := range s.talkjs.userOrder {
		if _, on := s.talkjs.presence[id]; online == "" || on == (online == "true") {
			users = append(users, s.talkjs.users[id])
		}
	}
	return listPage(c, users, func(u *User) string { return u.ID })
}

// Presence is what TalkJS knows of an online user's sessions, in the JSON
// shape POST /presences answers (TalkJS's User Presence reference).
type Presence struct {
	// Status is "online".
	Status string `json:"status"`
	// BackgroundSessions are the user's sessions with no chat UI shown
	// (one for each page that creates a TalkJS session, or a mobile app in
	// the background). TalkJS types them like Widgets.
	BackgroundSessions []PresenceSession `json:"backgroundSessions"`
	// Widgets are the user's chat UIs open in a browser or an app.
	Widgets []PresenceSession `json:"widgets"`
}

// PresenceSession is one session of an online user: a chat UI it has open
// (a widget), or a background session.
type PresenceSession struct {
	SelectedConversationID *string           `json:"selectedConversationId"` // nil when none is selected
	Custom                 map[string]string `json:"custom"`
	HasFocus               bool              `json:"hasFocus"`
	IsTyping               bool              `json:"isTyping"`
	SessionID              string            `json:"sessionId"`
}

// SetPresence makes a TalkJS user online with the sessions of p (Status
// "online" when empty, a nil Custom answered as {}), as POST /presences
// and GET users?isOnline answer them; a nil p makes the user offline. The
// user need not exist.
func (s *Server) SetPresence(userID string, p *Presence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == nil {
		delete(s.talkjs.presence, userID)
		return
	}
	c := *p
	if c.Status == "" {
		c.Status = "online"
	}
	c.BackgroundSessions = sessions(p.BackgroundSessions)
	c.Widgets = sessions(p.Widgets)
	s.talkjs.presence[userID] = &c
}

// sessions copies ss, with custom {} where it is nil, as TalkJS answers.
func sessions(ss []PresenceSession) []PresenceSession {
	out := make([]PresenceSession, len(ss))
	for i, x := range ss {
		if x.Custom == nil {
			x.Custom = map[string]string{}
		}
		out[i] = x
	}
	return out
}

// presenceKeys are the members of a presence query.
var presenceKeys = []string{"includeBackgroundSessions", "selectedConversationId", "hasFocus", "isTyping", "userIds"}

// presenceQuery is the body of POST /presences; a nil field does not
// filter.
type presenceQuery struct {
	IncludeBackgroundSessions *bool    `json:"includeBackgroundSessions"`
	HasFocus                  *bool    `json:"hasFocus"`
	IsTyping                  *bool    `json:"isTyping"`
	UserIDs                   []string `json:"userIds"`
	// SelectedConversationID is read from the body's members into
	// selected and conv: null differs from absent.
	SelectedConversationID json.RawMessage `json:"selectedConversationId"`
	// selected is set when selectedConversationId was sent; conv is nil
	// for null, which asks for a widget with no conversation selected.
	selected bool
	conv     *string
}

// queryPresences is POST presences: {"data": {userId: Presence}} for the
// online users the query's filters keep. A user counts when one of its
// widgets matches every widget filter sent (hasFocus, isTyping,
// selectedConversationId); with includeBackgroundSessions true, a user
// with a background session and no filter on widgets counts too. userIds
// keeps only the users it names.
func (s *Server) queryPresences(c call) response {
	var q presenceQuery
	if err := strictObject(c.body, &q, presenceKeys...); err != nil {
		return talkJSBadRequest(problemList{{"", "body must be a presence query: " + err.Error()}})
	}
	fields, _ := object(c.body)
	if raw, ok := fields["selectedConversationId"]; ok {
		q.selected = true
		if v, ok := asString(raw); ok {
			q.conv = &v
		} else if !isNull(raw) {
			return talkJSBadRequest(problemList{{"selectedConversationId", "must be a string or null"}})
		}
	}
	out := map[string]*Presence{}
	for uid, p := range s.talkjs.presence {
		if q.UserIDs != nil && !slices.Contains(q.UserIDs, uid) {
			continue
		}
		if slices.ContainsFunc(p.Widgets, q.matches) ||
			(q.IncludeBackgroundSessions != nil && *q.IncludeBackgroundSessions && len(p.BackgroundSessions) > 0 && !q.filtersWidgets()) {
			out[uid] = p
		}
	}
	return jsonResponse(http.StatusOK, map[string]any{"data": out})
}

func (q *presenceQuery) filtersWidgets() bool {
	return q.HasFocus != nil || q.IsTyping != nil || q.selected
}

// matches reports whether w passes every widget filter of q.
func (q *presenceQuery) matches(w PresenceSession) bool {
	switch {
	case q.HasFocus != nil && w.HasFocus != *q.HasFocus,
		q.IsTyping != nil && w.IsTyping != *q.IsTyping:
		return false
	case !q.selected:
		return true
	case q.conv == nil:
		return w.SelectedConversationID == nil
	}
	return w.SelectedConversationID != nil && *w.SelectedConversationID == *q.conv
}
