package convotest

// This file holds the Selarti side: its route table below /api/1.1, the
// token exchange, the checks every workflow call passes, and the two
// workflows a client calls with a token (send a user's message to the AI,
// add a target to a task). The AI's answers and their webhook delivery are
// in selarti_ai.go.

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Default Selarti credentials of a Server made without options.
const (
	// DefaultSelartiKey is the Selarti API key the fake knows: POST
	// /api/1.1/wf/auth exchanges it for a token.
	DefaultSelartiKey = "selarti_key_convotest"
	// DefaultSelartiTaskID is the one Selarti task the fake has by
	// default (the task id of Selarti's own webhook example).
	DefaultSelartiTaskID = "1721129985149x478019552540622850"
)

// selartiPrefix is where the fake serves Selarti, as selarti.com does:
// the workflows are at /api/1.1/wf/{workflow}.
const selartiPrefix = "/api/1.1"

// The wire values of a Selarti message's author (message_type).
const (
	selartiUser     = "user"
	selartiBot      = "bot"
	selartiOperator = "operator"
)

// SelartiMessage is a message of a dialog of the fake Selarti: a user's
// message received by the send workflow, or an answer (the AI's or an
// operator's). Each is delivered as an "All messages" webhook, the user's
// too, as Selarti echoes them.
type SelartiMessage struct {
	ID       string // message_id, a Bubble-style id
	TaskID   string // task_id
	ChatID   string // the chat_id sent (external_chat_id in the webhook)
	ThreadID string // thread_id: the dialog, one per chat id
	Type     string // message_type: "user", "bot" or "operator"
	Text     string // message_text
	// Extra holds the body keys of a user's message beyond task, chat_id
	// and text, raw; nil when there are none.
	Extra map[string]json.RawMessage
	Time  time.Time
	// WebhookStatus is the status the webhook URL answered the message's
	// delivery; 0 while it is under way, when no URL was set, or when the
	// delivery failed (WebhookError says why).
	WebhookStatus int
	// WebhookError says why the message was not delivered, or "".
	WebhookError string
}

func (m *SelartiMessage) clone() SelartiMessage {
	c := *m
	c.Extra = maps.Clone(m.Extra)
	return c
}

type selartiState struct {
	tokens   map[string]bool
	threads  map[string]string // chat id -> thread id
	messages []*SelartiMessage
	targets  map[string][]string // task id -> targets, in order
}

func (st *selartiState) init() {
	*st = selartiState{tokens: map[string]bool{}, threads: map[string]string{}, targets: map[string][]string{}}
}

// WithSelartiAccount sets the Selarti API key the fake knows (default
// DefaultSelartiKey) and, when any are given, its tasks (default one,
// DefaultSelartiTaskID).
func WithSelartiAccount(apiKey string, taskIDs ...string) ServerOption {
	return func(s *Server) {
		s.selartiKey = apiKey
		if len(taskIDs) > 0 {
			s.selartiTasks = slices.Clone(taskIDs)
		}
	}
}

// SelartiKey is the Selarti API key the fake knows.
func (s *Server) SelartiKey() string { return s.selartiKey }

// SelartiTaskID is the fake's first Selarti task id.
func (s *Server) SelartiTaskID() string { return s.selartiTasks[0] }

// SelartiURL is the base URL of the fake's Selarti API, s.URL+"/api/1.1",
// for convo.WithSelartiURL.
func (s *Server) SelartiURL() string { return s.URL + selartiPrefix }

// SelartiMessages returns a copy of the messages of the dialog of chatID
// (the user's messages and the answers), oldest first; nil when there is
// none.
func (s *Server) SelartiMessages(chatID string) []SelartiMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SelartiMessage
	for _, m := range s.selarti.messages {
		if m.ChatID == chatID {
			out = append(out, m.clone())
		}
	}
	return out
}

// SelartiTargets returns the targets added to a task, in order.
func (s *Server) SelartiTargets(taskID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.selarti.targets[taskID])
}

// ExpireSelartiTokens makes every token exchanged so far invalid, as an
// expired or revoked token is: the next call with one gets 401.
func (s *Server) ExpireSelartiTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.selarti.tokens)
}

// SelartiTokenError is the shape of the fake's answer to a Selarti
// workflow called with a bad token (missing, made up or expired); see
// WithSelartiTokenError.
type SelartiTokenError int

const (
	// BubbleStatusBody is Bubble's workflow error
	// {"statusCode": 401, "body": {"status": "UNAUTHORIZED", "message": "…"}},
	// the default.
	BubbleStatusBody SelartiTokenError = iota
	// BubbleErrorClass is Bubble's own error, as a Bubble forum thread
	// quotes it for an invalid or expired token:
	// {"error_class": "Unauthorized", "args": {"code": "…"}, "message": null,
	// "translation": "Invalid or expired token: bus|…|<token>"}. The
	// translation ends with the token sent, as the thread's seems to.
	BubbleErrorClass
)

// WithSelartiTokenError makes the fake answer a Selarti workflow called
// with a bad token with status and a body of the given shape (default 401
// and BubbleStatusBody). The thread that quotes BubbleErrorClass does not
// give its status: 400, 401 and 403 are all plausible.
func WithSelartiTokenError(status int, shape SelartiTokenError) ServerOption {
	return func(s *Server) { s.selartiBadToken = selartiBadToken{status: status, shape: shape} }
}

// selartiBadToken is how the fake answers a bad token.
type selartiBadToken struct {
	status int
	shape  SelartiTokenError
}

// answer is the answer to a bad token; msg says what was wrong with it.
func (b selartiBadToken) answer(token, msg string) response {
	status := cmp.Or(b.status, http.StatusUnauthorized)
	if b.shape == BubbleErrorClass {
		return jsonResponse(status, map[string]any{
			"error_class": "Unauthorized",
			"args":        map[string]string{"code": bubbleID()},
			"message":     nil,
			"translation": "Invalid or expired token: bus|" + bubbleID() + "|" + token,
		})
	}
	return bubbleError(status, "UNAUTHORIZED", msg)
}

// selartiRoutes are the Selarti workflows, below /api.
var selartiRoutes = []route{
	{http.MethodPost, "1.1/wf/auth", (*Server).selartiAuth},
	{http.MethodPost, "1.1/wf/send_external_message", withSelartiToken((*Server).selartiSend)},
	{http.MethodPost, "1.1/wf/add_target", withSelartiToken((*Server).selartiAddTarget)},
}

// serveSelarti serves /api/1.1/wf/.... The caller holds s.mu. Every
// workflow takes a JSON object sent as application/json (400).
func (s *Server) serveSelarti(c call) response {
	return s.dispatch(selartiRoutes, c, selartiJSONBody)
}

// selartiJSONBody refuses a body that is not a JSON object sent as
// application/json, in Bubble's error shape.
func selartiJSONBody(c call) *response {
	var resp response
	switch _, ok := object(c.body); {
	case !isJSON(c.r):
		resp = bubbleError(http.StatusBadRequest, "INVALID_DATA", "Content-Type must be application/json")
	case !ok:
		resp = bubbleError(http.StatusBadRequest, "INVALID_DATA", "body must be a JSON object")
	default:
		return nil
	}
	return &resp
}

// withSelartiToken runs a workflow only for a caller with a valid token:
// "Authorization: Bearer <token>" with a token the fake exchanged and did
// not expire (else 401, or as WithSelartiTokenError says).
func withSelartiToken(wf func(*Server, call) response) func(*Server, call) response {
	return func(s *Server, c call) response {
		token, ok := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			return s.selartiBadToken.answer(token, `missing or malformed Authorization header; want "Bearer <token>"`)
		}
		if !s.selarti.tokens[token] {
			return s.selartiBadToken.answer(token, "invalid or expired token")
		}
		return wf(s, c)
	}
}

// selartiAuth is POST /wf/auth {"key": apiKey}: it answers a new token
// for the fake's key (401 for another) in Bubble's success envelope.
func (s *Server) selartiAuth(c call) response {
	body, _ := object(c.body)
	var p selartiProblems
	key := p.required(body, "key")
	p.onlyKeys(body, "key")
	if resp, bad := p.answer(); bad {
		return resp
	}
	if subtle.ConstantTimeCompare([]byte(key), []byte(s.selartiKey)) != 1 {
		return bubbleError(http.StatusUnauthorized, "UNAUTHORIZED", "invalid API key")
	}
	token := "tok_" + randomBase62(32)
	s.selarti.tokens[token] = true
	s.stats.SelartiTokens++
	return selartiOK(map[string]any{"token": token})
}

// selartiSend is POST /wf/send_external_message {task, chat_id, text,
// ...}: it stores the user's message in the dialog of chat_id and has the
// AI answer it (see selarti_ai.go). Keys beyond the three are kept in
// Extra.
func (s *Server) selartiSend(c call) response {
	body, _ := object(c.body)
	var p selartiProblems
	task := p.required(body, "task")
	chat := p.required(body, "chat_id")
	text := p.required(body, "text")
	p.knownTask(s, task)
	if resp, bad := p.answer(); bad {
		return resp
	}
	var extra map[string]json.RawMessage
	for k, v := range body {
		if k != "task" && k != "chat_id" && k != "text" {
			if extra == nil {
				extra = map[string]json.RawMessage{}
			}
			extra[k] = v
		}
	}
	msg := s.addSelartiMessage(task, chat, selartiUser, text)
	msg.Extra = extra
	s.stats.SelartiMessages++
	s.answerLater(msg)
	return selartiOK(map[string]any{})
}

// selartiAddTarget is POST /wf/add_target {task, target}: it appends the
// target to the task's.
func (s *Server) selartiAddTarget(c call) response {
	body, _ := object(c.body)
	var p selartiProblems
	task := p.required(body, "task")
	target := p.required(body, "target")
	p.onlyKeys(body, "task", "target")
	p.knownTask(s, task)
	if resp, bad := p.answer(); bad {
		return resp
	}
	s.selarti.targets[task] = append(s.selarti.targets[task], target)
	s.stats.SelartiTargets++
	return selartiOK(map[string]any{})
}

// addSelartiMessage stores a message in the dialog of chat, made on first
// use; a new message moves the dialog to task. The caller holds s.mu.
func (s *Server) addSelartiMessage(task, chat, typ, text string) *SelartiMessage {
	thread, ok := s.selarti.threads[chat]
	if !ok {
		thread = bubbleID()
		s.selarti.threads[chat] = thread
	}
	m := &SelartiMessage{ID: bubbleID(), TaskID: task, ChatID: chat, ThreadID: thread, Type: typ, Text: text, Time: time.Now()}
	s.selarti.messages = append(s.selarti.messages, m)
	return m
}

// selartiProblems collects what is wrong with a workflow's body, as
// Bubble tells it: MISSING_DATA when a parameter is missing, else
// INVALID_DATA.
type selartiProblems struct {
	list    problemList
	missing bool
}

// required reads a parameter that must be a string that is not blank.
func (p *selartiProblems) required(body map[string]json.RawMessage, key string) string {
	raw, ok := body[key]
	if !ok || isNull(raw) {
		p.missing = true
		p.list.add(key, "is missing")
		return ""
	}
	v, ok := asString(raw)
	switch {
	case !ok:
		p.list.add(key, "must be a string")
	case strings.TrimSpace(v) == "":
		p.missing = true
		p.list.add(key, "is blank")
	}
	return v
}

// onlyKeys notes every key of body not in keys, in sorted order.
func (p *selartiProblems) onlyKeys(body map[string]json.RawMessage, keys ...string) {
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if !slices.Contains(keys, k) {
			p.list.unknown(k)
		}
	}
}

// knownTask notes a task id (when one was read) the fake does not have.
func (p *selartiProblems) knownTask(s *Server, task string) {
	if strings.TrimSpace(task) != "" && !slices.Contains(s.selartiTasks, task) {
		p.list.add("task", strconv.Quote(task)+" is not a task of the account")
	}
}

// answer is the 400 of the problems found, if any.
func (p *selartiProblems) answer() (response, bool) {
	if len(p.list) == 0 {
		return response{}, false
	}
	status := "INVALID_DATA"
	if p.missing {
		status = "MISSING_DATA"
	}
	return bubbleError(http.StatusBadRequest, status, p.list.text()), true
}

// selartiOK is Bubble's success envelope around a workflow's response.
func selartiOK(resp map[string]any) response {
	return jsonResponse(http.StatusOK, map[string]any{"status": "success", "response": resp})
}

// bubbleError is Bubble's error body:
// {"statusCode": 400, "body": {"status": "MISSING_DATA", "message": "…"}}.
func bubbleError(status int, code, msg string) response {
	return jsonResponse(status, map[string]any{
		"statusCode": status,
		"body":       map[string]string{"status": code, "message": msg},
	})
}

// bubbleID makes an id of Bubble's shape: the time in Unix milliseconds,
// "x", and 18 random digits.
func bubbleID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e18))
	return fmt.Sprintf("%dx%018d", time.Now().UnixMilli(), n)
}
