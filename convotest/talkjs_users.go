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
	AvailabilityText *string           `json:"availabilityText"` // not settable over REST: always nil
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
		return badRequest(problems)
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
	return emptyOK()
}

// mergeBatchUser is mergeUser for one member of a batch upsert.
func (s *Server) mergeBatchUser(id string, raw json.RawMessage) (*User, problemList) {
	fields, ok := object(raw)
	switch {
	case id == "":
		return nil, problemList{"user id must not be empty"}
	case !ok:
		return nil, problemList{"user must be a JSON object"}
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
	}
	p.fields(fields, nullable, func(k string, raw json.RawMessage) {
		switch k {
		case "name":
			if v, ok := asString(raw); ok && strings.TrimSpace(v) != "" {
				u.Name = v
			} else {
				p.add("name must be a non-empty string")
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
		p.add("name is required to create a user")
	}
	return &u, p
}

// listUsers is GET users: every user, in creation order.
func (s *Server) listUsers(c call) response {
	users := make([]*User, len(s.talkjs.userOrder))
	for i, id := range s.talkjs.userOrder {
		users[i] = s.talkjs.users[id]
	}
	return listPage(c, users, func(u *User) string { return u.ID })
}
