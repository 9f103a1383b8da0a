package convotest

// This file holds the TalkJS core: the state, the route table of
// /v1/{appId}/..., the checks every call passes (credentials, Content-Type)
// and the pager of every list. Each resource's endpoints are in a file of
// its own: talkjs_users.go, talkjs_conversations.go, talkjs_messages.go.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

type talkjsState struct {
	users     map[string]*User
	userOrder []string
	presence  map[string]*Presence // set with SetPresence
	files     map[string]*File     // uploaded, by attachment token
	convs     map[string]*convState
	clock     int // bumped on each conversation's creation and message send
}

func (t *talkjsState) init() {
	*t = talkjsState{users: make(map[string]*User), convs: make(map[string]*convState), presence: make(map[string]*Presence), files: make(map[string]*File)}
}

// talkjsRoutes are the TalkJS endpoints, below /v1/{appId}.
var talkjsRoutes = []route{
	{"GET", "users", (*Server).listUsers},
	{"PUT", "users", (*Server).putUsers},
	{"GET", "users/{user}", (*Server).getUser},
	{"PUT", "users/{user}", (*Server).putUser},
	{"GET", "users/{user}/conversations", (*Server).listUserConversations},

	{"GET", "conversations", (*Server).listConversations},
	{"GET", "conversations/{conversation}", (*Server).getConversation},
	{"PUT", "conversations/{conversation}", (*Server).putConversation},
	{"DELETE", "conversations/{conversation}", (*Server).deleteConversation},
	{"PUT", "conversations/{conversation}/participants/{user}", (*Server).putParticipant},
	{"PATCH", "conversations/{conversation}/participants/{user}", (*Server).patchParticipant},
	{"DELETE", "conversations/{conversation}/participants/{user}", (*Server).removeParticipant},
	{"POST", "conversations/{conversation}/readBy/{user}", (*Server).markRead},

	{"GET", "conversations/{conversation}/messages", (*Server).listMessages},
	{"POST", "conversations/{conversation}/messages", (*Server).sendMessages},
	{"GET", "conversations/{conversation}/messages/{message}", (*Server).getMessage},
	{"PUT", "conversations/{conversation}/messages/{message}", (*Server).editMessage},
	{"DELETE", "conversations/{conversation}/messages/{message}", (*Server).deleteMessage},
	{"POST", "import/conversations/{conversation}/messages", (*Server).importMessages},
	{"POST", "conversations/{conversation}/notifications", (*Server).triggerNotifications},
	{"POST", "presences", (*Server).queryPresences},
	{"POST", "files", (*Server).uploadFile},
}

// serveTalkJS serves /v1/{appId}/.... The caller holds s.mu. Checks, in
// order: the Authorization header is a bearer token (401), the app id
// (404), the token (401), the route (404) and method (405), and for a
// request with a body, its Content-Type (400).
func (s *Server) serveTalkJS(c call) response {
	if len(c.segs) == 0 {
		return notFound(c.path)
	}
	token, ok := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return errorResponse(http.StatusUnauthorized, `missing or malformed Authorization header; want "Bearer <secret key or app token>"`)
	}
	if c.segs[0] != s.appID {
		return errorResponse(http.StatusNotFound, "app not found")
	}
	if !s.talkJSTokenOK(token) {
		return errorResponse(http.StatusUnauthorized, "invalid secret key or app token")
	}
	c.segs = c.segs[1:]
	return s.dispatch(talkjsRoutes, c, jsonBodyOnly)
}

// jsonBodyOnly refuses a request body not sent as application/json, but
// for an upload (POST files), whose body is a multipart form.
func jsonBodyOnly(c call) *response {
	if len(c.segs) == 1 && c.segs[0] == "files" {
		return nil
	}
	if len(bytes.TrimSpace(c.body)) > 0 && !isJSON(c.r) {
		resp := errorResponse(http.StatusBadRequest, "Content-Type must be application/json")
		return &resp
	}
	return nil
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

// listPage answers one page of items as {"data": [...]}: see paginate.
func listPage[T any](c call, items []T, id func(T) string) response {
	page, errResp := paginate(c.r, items, id)
	if errResp != nil {
		return *errResp
	}
	return jsonResponse(http.StatusOK, map[string]any{"data": page})
}

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
	return append([]T{}, items[start:end]...), nil // [] and not null when empty
}
