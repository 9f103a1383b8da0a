package convo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// SelartiService sends a person's message to Selarti's AI ("Send external
// message") and adds targets to Selarti tasks. The AI's answer does not
// come back in the call's answer: Selarti posts it, with the operators'
// replies, to the "All messages" webhook (see NewSelartiHandler), whose
// external_chat_id is the ChatID sent.
//
// Every call carries "Authorization: Bearer <token>". The token is the API
// key of WithSelarti exchanged at POST /wf/auth; it is obtained on the
// first call, cached and shared by all the calls of the Client
// (concurrent first calls wait for one exchange). When Selarti refuses it
// (a 401; a Bubble body whose status is UNAUTHORIZED; or, on a 400, 401
// or 403, Bubble's {"error_class": "Unauthorized", …, "translation":
// "Invalid or expired token: …"}), it applied nothing: the key is
// exchanged once more and the call repeated once, unless an earlier
// attempt of the call may have been applied. The error of a refused token
// matches ErrUnauthorized whatever its status, and its Message is the
// server's reason ("Unauthorized: Invalid or expired token: …", the token
// redacted). An
// exchange that fails, or answers without a token, is the error of the
// exchange (an *APIError's Path ends in /wf/auth); the call itself was not
// sent, so that error matches neither ErrOutcomeUnknown nor ErrBadResponse,
// whatever the exchange met: the message may be sent again.
type SelartiService service

// SelartiWorkflows names the workflows of Selarti's API (the part of the
// path after /wf/) and the keys of their bodies. Selarti documents that a
// message goes to its AI with the person's chat id in chat_id, but does
// not publish the workflow's path or its other keys: the defaults
// (DefaultSelartiWorkflows) are the SDK's guesses, after Bubble's
// conventions and the add_target workflow seen in use. Override them with
// WithSelartiWorkflows once Selarti tells you otherwise.
type SelartiWorkflows struct {
	Send      string // the "Send external message" workflow (default send_external_message)
	AddTarget string // the workflow that adds a target to a task (default add_target)
	TaskKey   string // the key of the task id in both bodies (default task)
	ChatKey   string // the key of the chat id in a send (default chat_id)
	TextKey   string // the key of the text in a send (default text)
}

// DefaultSelartiWorkflows are the workflows and keys the SDK uses unless
// WithSelartiWorkflows overrides them.
var DefaultSelartiWorkflows = SelartiWorkflows{
	Send:      "send_external_message",
	AddTarget: "add_target",
	TaskKey:   "task",
	ChatKey:   "chat_id",
	TextKey:   "text",
}

// selartiTargetKey is the key of the target in an add_target body, as seen
// in use.
const selartiTargetKey = "target"

// override gives w with each non-zero field of o, checked: a workflow name
// is one path segment; the keys are not blank and differ from each other
// and from "target".
func (w SelartiWorkflows) override(o SelartiWorkflows) (SelartiWorkflows, error) {
	var ps problems
	for _, f := range []struct {
		field    string
		dst      *string
		v        string
		workflow bool
	}{
		{"SelartiWorkflows.Send", &w.Send, o.Send, true},
		{"SelartiWorkflows.AddTarget", &w.AddTarget, o.AddTarget, true},
		{"SelartiWorkflows.TaskKey", &w.TaskKey, o.TaskKey, false},
		{"SelartiWorkflows.ChatKey", &w.ChatKey, o.ChatKey, false},
		{"SelartiWorkflows.TextKey", &w.TextKey, o.TextKey, false},
	} {
		if f.v == "" {
			continue
		}
		switch {
		case blank(f.v):
			ps.add(f.field, "must not be blank")
		case !utf8.ValidString(f.v) || strings.IndexFunc(f.v, unicode.IsControl) >= 0:
			ps.add(f.field, "must be valid UTF-8 without control characters")
		case f.workflow && (strings.ContainsAny(f.v, "/?#% ") || f.v == "." || f.v == ".."):
			ps.addf(f.field, "must be one workflow name, the part of the path after /wf/, got %q", truncate(f.v, 60))
		}
		*f.dst = f.v
	}
	keys := map[string]string{selartiTargetKey: "the add_target body's target"}
	for _, k := range []struct{ field, v string }{
		{"SelartiWorkflows.TaskKey", w.TaskKey}, {"SelartiWorkflows.ChatKey", w.ChatKey}, {"SelartiWorkflows.TextKey", w.TextKey},
	} {
		if other, dup := keys[k.v]; dup {
			ps.addf(k.field, "%q is already the key of %s", k.v, other)
		}
		keys[k.v] = k.field
	}
	return w, ps.err()
}

// SelartiMessage is a person's message for Selarti's AI.
type SelartiMessage struct {
	// TaskID is the task whose AI answers (Selarti's panel: Tasks, a task
	// of type Web, "copy the task id").
	TaskID string
	// ChatID is your stable id of the person's chat (a Telegram user id,
	// a TalkJS conversation id). Selarti joins the dialog's context by it
	// and sends it back as the webhook's external_chat_id.
	ChatID string
	// Text is the person's message.
	Text string
	// Extra adds keys to the body, at its top level, for what your
	// workflow takes beyond the three; a key may not be one of those three.
	Extra map[string]any
}

// SelartiResult is what a Selarti workflow answered. Selarti does not
// publish the shape of its answers, so the SDK keeps them raw.
type SelartiResult struct {
	// Response is the "response" member of Bubble's success envelope
	// {"status": "success", "response": {...}}, raw; nil when there is none.
	Response json.RawMessage
	// Raw is the body as received.
	Raw json.RawMessage
}

// decodeBody keeps the body and its "response".
func (r *SelartiResult) decodeBody(b []byte) error {
	r.Raw = bytes.Clone(b)
	var env struct {
		Response json.RawMessage `json:"response"`
	}
	if err := decodeJSON(b, &env); err != nil {
		return err
	}
	r.Response = env.Response
	return nil
}

// Send posts m to Selarti's "Send external message" workflow, POST
// /wf/send_external_message with {"task": TaskID, "chat_id": ChatID,
// "text": Text} plus Extra (the path and the task and text keys are
// guesses: see SelartiWorkflows). The AI answers through the "All
// messages" webhook.
//
// TaskID, ChatID and Text must not be blank and must be valid UTF-8, and
// no Extra key may be one of the three keys; every problem is reported at
// once in a *ValidationError, and then nothing is sent, not even the token
// exchange.
//
// A send reaches an AI that answers a person, so it is never sent twice
// once it may have reached Selarti: it is retried only after a dial
// failure or a 429 (and repeated once after a refused token, which Selarti
// did not act on). When it fails after the request may have reached
// Selarti (a reset, a timeout, a 5xx such as 503), the error matches
// ErrOutcomeUnknown: the AI may answer anyway. A 200 whose Bubble status
// is not "success" is an *APIError too.
//
// A mock of Selarti (httpmock, or a server of yours) answers two calls for
// a client's first send, and one for each send after it:
//
//	POST <base>/wf/auth {"key": "<api key>"}
//	    200 {"status": "success", "response": {"token": "<token>"}}
//	POST <base>/wf/send_external_message, Authorization: Bearer <token>
//	    200 {"status": "success", "response": {}}
//
// The token is read at response.token: an answer without it, such as a
// bare {"token": "…"}, fails the exchange. "status" may be left out; when
// present it must be "success". A 401 (or a body whose status is
// UNAUTHORIZED) to the send makes the client exchange the key once more and
// send again once. The result's Response is the send's "response", Raw its
// whole body.
func (s *SelartiService) Send(ctx context.Context, m SelartiMessage) (*SelartiResult, error) {
	sc := s.client().selarti
	body, err := sc.sendBody(m)
	return s.run(ctx, &request{op: "selarti.selarti.send", params: []string{sc.flows().Send}, body: body, invalid: err})
}

// AddTarget adds target (such as "@maria"; Selarti's lists also take ids
// and phone numbers) to the outreach of a task: POST /wf/add_target with
// {"task": taskID, "target": target}. What Selarti does with a second call
// is not published, so, like Send, it is not repeated once it may have
// reached Selarti.
func (s *SelartiService) AddTarget(ctx context.Context, taskID, target string) error {
	sc := s.client().selarti
	body, err := sc.targetBody(taskID, target)
	_, err = s.run(ctx, &request{op: "selarti.selarti.add_target", params: []string{sc.flows().AddTarget}, body: body, invalid: err})
	return err
}

// selartiConfig is a configured Selarti: its workflows, and the endpoint
// that sends them with the token.
type selartiConfig struct {
	workflows SelartiWorkflows
	api       *endpoint
}

// newSelartiConfig builds Selarti's endpoints on base: the workflows,
// authorized by a selartiToken, and /wf/auth, which exchanges the key.
func newSelartiConfig(c *Client, base, apiKey string, w SelartiWorkflows) *selartiConfig {
	auth := newEndpoint(ProviderSelarti, base, "", "", "")
	auth.read = bubbleAnswer
	api := newEndpoint(ProviderSelarti, base, "", "", "")
	api.read = bubbleAnswer
	api.cred = &selartiToken{c: c, api: auth, key: apiKey}
	return &selartiConfig{workflows: w, api: api}
}

// selartiOff is where the calls of a client without Selarti go: nowhere.
var selartiOff = &endpoint{provider: ProviderSelarti, err: notConfigured(ProviderSelarti, "WithSelarti")}

// flows gives the workflows; none when Selarti is not configured.
func (sc *selartiConfig) flows() SelartiWorkflows {
	if sc == nil {
		return SelartiWorkflows{}
	}
	return sc.workflows
}

// run posts r (its operation, workflow and body) to a workflow through the
// pipeline. The result is kept with an ErrBadResponse, when a 2xx body was
// read.
func (s *SelartiService) run(ctx context.Context, r *request) (*SelartiResult, error) {
	out := &SelartiResult{}
	r.api, r.method, r.path, r.out = selartiOff, http.MethodPost, "/wf/{workflow}", out
	if s.client().selarti != nil {
		r.api = s.client().selarti.api
	}
	err := s.client().do(ctx, r)
	if err != nil && out.Raw == nil {
		return nil, err
	}
	return out, err
}

// sendBody checks m and gives the body of a send. A nil sc (Selarti not
// configured) gives ErrNotConfigured.
func (sc *selartiConfig) sendBody(m SelartiMessage) (map[string]any, error) {
	if sc == nil {
		return nil, notConfigured(ProviderSelarti, "WithSelarti")
	}
	w := sc.workflows
	var ps problems
	ps.required("TaskID", m.TaskID)
	ps.required("ChatID", m.ChatID)
	ps.required("Text", m.Text)
	ps.extraKeys("Extra", m.Extra, func(k string) string {
		for _, f := range [][2]string{{w.TaskKey, "TaskID"}, {w.ChatKey, "ChatID"}, {w.TextKey, "Text"}} {
			if k == f[0] {
				return "collides with the key " + k + " that " + f[1] + " sends; set " + f[1] + " instead"
			}
		}
		return ""
	})
	if err := ps.err(); err != nil {
		return nil, err
	}
	body := make(map[string]any, 3+len(m.Extra))
	maps.Copy(body, m.Extra)
	body[w.TaskKey], body[w.ChatKey], body[w.TextKey] = m.TaskID, m.ChatID, m.Text
	return body, nil
}

// targetBody checks the arguments of AddTarget and gives its body.
func (sc *selartiConfig) targetBody(taskID, target string) (map[string]string, error) {
	if sc == nil {
		return nil, notConfigured(ProviderSelarti, "WithSelarti")
	}
	var ps problems
	ps.required("taskID", taskID)
	ps.required("target", target)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return map[string]string{sc.workflows.TaskKey: taskID, selartiTargetKey: target}, nil
}

// bubbleAnswer reads Selarti's answers, which are Bubble's envelopes: a
// success is {"status": "success", "response": {...}}; an error is
// {"statusCode": 400, "body": {"status": "MISSING_DATA", "message": "…"}}
// (or the status and message at the top level), or Bubble's own error
// {"error_class": "Unauthorized", "args": {…}, "message": null,
// "translation": "Invalid or expired token: …"}, whose reason is its
// translation. A 2xx whose status is present and not "success" failed.
// The token is refused by a 401, by the status UNAUTHORIZED, and by the
// error_class Unauthorized on a 400, 401 or 403: Bubble's forum shows that
// body for an expired token without saying its status.
func bubbleAnswer(status int, body []byte) verdict {
	b := bubbleStatus(body)
	v := verdict{
		failed: status < 200 || status > 299 || (b.code != "" && b.code != "success"),
		refused: status == http.StatusUnauthorized || b.statusCode == http.StatusUnauthorized || b.code == "UNAUTHORIZED" ||
			(strings.EqualFold(b.class, "Unauthorized") && (status == http.StatusBadRequest || status == http.StatusForbidden)),
	}
	switch {
	case !v.failed:
	case b.class != "" && b.msg != "":
		v.message = b.class + ": " + b.msg
	case b.code != "" && b.code != "success" && b.msg != "":
		v.message = b.code + ": " + b.msg
	case b.msg != "":
		v.message = b.msg
	case b.class != "":
		v.message = b.class
	case b.code != "" && b.code != "success":
		v.message = b.code
	default:
		v.message = messageFromBody(body)
	}
	return v
}

// bubbleBody is what bubbleStatus reads of a Bubble body.
type bubbleBody struct {
	code       string // "status", from the "body" object when there is one
	msg        string // "message", or else "translation"
	statusCode int    // "statusCode"
	class      string // "error_class"
}

// bubbleStatus reads a Bubble body: the status and the message from its
// "body" object when it has one, else from the top level, where Bubble's
// own errors put error_class and translation; zero values for a body that
// is not such an object.
func bubbleStatus(body []byte) bubbleBody {
	type statusMsg struct {
		Status      json.RawMessage `json:"status"`
		Message     json.RawMessage `json:"message"`
		Translation json.RawMessage `json:"translation"`
	}
	var env struct {
		statusMsg
		StatusCode json.RawMessage `json:"statusCode"`
		Body       json.RawMessage `json:"body"`
		ErrorClass json.RawMessage `json:"error_class"`
	}
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &env) != nil {
		return bubbleBody{}
	}
	sm := env.statusMsg
	var inner statusMsg
	if len(env.Body) > 0 && env.Body[0] == '{' && json.Unmarshal(env.Body, &inner) == nil {
		sm = inner
	}
	b := bubbleBody{code: jsonText(sm.Status), msg: cmp.Or(jsonText(sm.Message), jsonText(sm.Translation)), class: jsonText(env.ErrorClass)}
	_ = json.Unmarshal(env.StatusCode, &b.statusCode)
	return b
}

// maxRunTimeTokens is how many of the latest exchanged tokens are
// redacted from errors, in every form a configured secret is found in.
const maxRunTimeTokens = 4

// selartiToken is the auth step of Selarti's workflows: the API key
// exchanged for a bearer token at POST /wf/auth, cached and shared by every
// call of the client.
type selartiToken struct {
	c   *Client
	api *endpoint // /wf/auth, which takes no Authorization
	key string

	mu     sync.Mutex
	h      []string     // "Bearer <token>"; nil until exchanged, and once refused
	flight *tokenFlight // the exchange under way, nil when none
	seen   secrets      // the latest tokens, for redact; replaced, never modified
}

// tokenFlight is one exchange, shared by the callers that wait for it.
type tokenFlight struct {
	done chan struct{}
	h    []string
	err  error
}

// header gives the cached header, or exchanges the key for one: the first
// caller exchanges, the others wait for its result. When the exchange
// ended with the context of the caller that ran it, a waiter whose own
// context is alive runs one itself.
func (t *selartiToken) header(ctx context.Context) ([]string, error) {
	for {
		t.mu.Lock()
		if h := t.h; h != nil {
			t.mu.Unlock()
			return h, nil
		}
		f, lead := t.flight, t.flight == nil
		if lead {
			f = &tokenFlight{done: make(chan struct{})}
			t.flight = f
		}
		t.mu.Unlock()
		if lead {
			return t.lead(ctx, f)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("convo: selarti: waiting for the token exchange: %w", ctx.Err())
		}
		if f.err == nil || (!errors.Is(f.err, context.Canceled) && !errors.Is(f.err, context.DeadlineExceeded)) {
			return f.h, f.err
		}
	}
}

// errExchangePanicked is what the callers waiting for an exchange get when
// it panicked (say, in an observer or a log handler).
var errExchangePanicked = errors.New("convo: selarti: the token exchange panicked")

// lead runs the exchange f for the callers that wait for it. It ends the
// flight however the exchange ends, a panic too (which goes on up the
// caller's stack), so that the next call exchanges again.
func (t *selartiToken) lead(ctx context.Context, f *tokenFlight) ([]string, error) {
	f.err = errExchangePanicked
	defer func() {
		t.mu.Lock()
		t.flight = nil
		if f.err == nil {
			t.h = f.h
		}
		t.mu.Unlock()
		close(f.done)
	}()
	f.h, f.err = t.exchange(ctx)
	return f.h, f.err
}

// exchange posts the key to /wf/auth, a call safe to repeat, and reads
// the token at response.token.
func (t *selartiToken) exchange(ctx context.Context) ([]string, error) {
	var out selartiTokenAnswer
	err := t.c.do(ctx, &request{
		op:         "selarti.auth.exchange", // the token exchange before a call
		api:        t.api,
		method:     http.MethodPost,
		path:       "/wf/auth",
		body:       map[string]string{"key": t.key},
		out:        &out,
		idempotent: true, // it only makes a token
		credential: true, // its failure leaves the call unsent
	})
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.seen = append(slices.Clone(t.seen[max(0, len(t.seen)-maxRunTimeTokens+1):]), []byte(out.token))
	t.mu.Unlock()
	return []string{"Bearer " + out.token}, nil
}

// refused drops h unless a newer token replaced it already: the next
// header exchanges the key anew, so the call is worth one repeat.
func (t *selartiToken) refused(h []string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h != nil && t.h[0] == h[0] {
		t.h = nil
	}
	return true
}

// redact hides the latest tokens in b, in every form a configured secret
// is found in.
func (t *selartiToken) redact(b []byte) []byte {
	t.mu.Lock()
	seen := t.seen
	t.mu.Unlock()
	return seen.redact(b)
}

// longest is the length of the longest form of the latest tokens.
func (t *selartiToken) longest() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen.longest()
}

// selartiTokenAnswer is the answer of /wf/auth.
type selartiTokenAnswer struct{ token string }

// decodeBody reads response.token; an answer without one is an error
// that does not quote the body.
func (a *selartiTokenAnswer) decodeBody(b []byte) error {
	var env struct {
		Response struct {
			Token json.RawMessage `json:"token"`
		} `json:"response"`
	}
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &env) != nil {
		return errors.New("token exchange: the answer is not a JSON object with response.token")
	}
	var tok string
	if json.Unmarshal(env.Response.Token, &tok) != nil || blank(tok) {
		return errors.New("token exchange: no token at response.token")
	}
	if strings.IndexFunc(tok, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		// A header value cannot hold it: every call would fail.
		return errors.New("token exchange: the token at response.token holds a control character")
	}
	a.token = tok
	return nil
}
