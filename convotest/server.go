package convotest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convokit/convo"
)

// Default credentials of a Server made without options. They are fixed, so
// a test may write them down; the fake accepts only these (or the ones set
// with WithTenant, WithConnections and WithTalkJSApp).
const (
	// DefaultTenantID is the Talqui tenant the fake knows.
	DefaultTenantID = "tenant-convotest"
	// DefaultConnectionID is the id of the one Talqui plugin connection the
	// fake has by default. It may start sessions on every channel.
	DefaultConnectionID = "pc-convotest"
	// DefaultConnectionToken is the token of that connection.
	DefaultConnectionToken = "pct_convotest_token"
	// DefaultAppID is the TalkJS app the fake knows.
	DefaultAppID = "convotest-app"
	// DefaultSecretKey is the secret key of that app. It authenticates REST
	// calls and signs the webhooks sent by DeliverTalkJS.
	DefaultSecretKey = "sk_test_convotest"
)

// maxBody is the largest request body the fake reads; a larger one gets
// 413.
const maxBody = 1 << 20

// Server is an in-memory fake of the Talqui and TalkJS HTTP APIs, served
// over HTTP on 127.0.0.1. Both APIs share its URL: Talqui under
// /tenants/..., TalkJS under /v1/....
//
// All its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the fake, such as http://127.0.0.1:41234,
	// without a trailing slash. Give it to convo.WithTalquiURL and
	// convo.WithTalkJSURL, or use Client.
	URL string

	hs      *httptest.Server
	closing chan struct{}
	once    sync.Once

	// Credentials, fixed once NewServer returns.
	tenantID string
	conns    []convo.PluginConnection
	appID    string
	secret   string

	mu       sync.Mutex
	requests []RecordedRequest
	faults   []*Fault
	stats    Stats
	talqui   talquiState
	talkjs   talkjsState
}

// ServerOption configures a Server made by NewServer.
type ServerOption func(*Server)

// WithTenant sets the Talqui tenant id the fake knows (default
// DefaultTenantID). A session start for any other tenant gets 404.
func WithTenant(tenantID string) ServerOption {
	return func(s *Server) { s.tenantID = tenantID }
}

// WithConnections replaces the Talqui plugin connections of the tenant
// (default: one, DefaultConnectionID with DefaultConnectionToken). Every
// connection may start sessions on every channel; a session start must
// carry the token of the connection its body names in pluginConnectionID.
// With more than one connection, a convo client must name the connection
// of each session start.
func WithConnections(conns ...convo.PluginConnection) ServerOption {
	return func(s *Server) { s.conns = append([]convo.PluginConnection(nil), conns...) }
}

// WithTalkJSApp sets the TalkJS app id and its secret key (default
// DefaultAppID and DefaultSecretKey).
func WithTalkJSApp(appID, secretKey string) ServerOption {
	return func(s *Server) { s.appID, s.secret = appID, secretKey }
}

// NewServer starts a fake on 127.0.0.1. Close it when done, typically with
// t.Cleanup(srv.Close).
func NewServer(opts ...ServerOption) *Server {
	s := &Server{
		closing:  make(chan struct{}),
		tenantID: DefaultTenantID,
		conns:    []convo.PluginConnection{{ID: DefaultConnectionID, Token: DefaultConnectionToken}},
		appID:    DefaultAppID,
		secret:   DefaultSecretKey,
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	s.talqui.init()
	s.talkjs.init()
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.hs.URL
	return s
}

// Close stops the server. A fault's Delay still running is cut short.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	s.hs.Close()
}

// Client returns a convo client wired to the fake: both providers
// configured with the fake's credentials and URL, and a fast retry policy
// (3 retries, waits between 1 ms and 10 ms). opts are applied after these,
// so they override them.
func (s *Server) Client(opts ...convo.Option) (*convo.Client, error) {
	base := []convo.Option{
		convo.WithTalqui(s.tenantID, s.conns...),
		convo.WithTalkJS(s.appID, s.secret),
		convo.WithTalquiURL(s.URL),
		convo.WithTalkJSURL(s.URL),
		convo.WithRetry(convo.RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond}),
	}
	return convo.NewClient(append(base, opts...)...)
}

// TenantID is the Talqui tenant id the fake knows.
func (s *Server) TenantID() string { return s.tenantID }

// Connections is a copy of the Talqui plugin connections of the tenant.
func (s *Server) Connections() []convo.PluginConnection {
	return append([]convo.PluginConnection(nil), s.conns...)
}

// AppID is the TalkJS app id the fake knows.
func (s *Server) AppID() string { return s.appID }

// SecretKey is the TalkJS secret key of the app.
func (s *Server) SecretKey() string { return s.secret }

// Stats counts what the fake actually did, since NewServer or the last
// Reset. Unlike the state (which a DELETE can shrink), the counts only
// grow, so a test can assert that a send happened at most once even when
// the client saw an error.
type Stats struct {
	// TalquiSessions is how many Talqui sessions were opened, that is, how
	// many first messages were sent to a contact.
	TalquiSessions int
	// TalquiContacts is how many Talqui contacts were created.
	TalquiContacts int
	// TalkJSMessages is how many TalkJS messages were stored.
	TalkJSMessages int
	// TalkJSReplays is how many TalkJS messages were not stored because
	// their idempotencyKey had been seen: the first message's id was
	// answered instead.
	TalkJSReplays int
	// FaultsApplied is how many requests got an injected fault.
	FaultsApplied int
}

// Stats returns the counts of what the fake did.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Reset forgets all state (contacts, sessions, users, conversations,
// messages, idempotency keys), the recorded requests, the pending faults
// and the stats. The credentials and the URL stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.faults = nil
	s.stats = Stats{}
	s.talqui.init()
	s.talkjs.init()
}

// RecordedRequest is one request the fake received, as it received it.
// Header holds the Authorization header too: this is a test fake. Do not
// log a RecordedRequest's Header.
type RecordedRequest struct {
	Method string
	// Path is the escaped path as sent, such as /v1/app/users/a%2Fb.
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	// Time is when the fake received the request.
	Time time.Time
	// Status is what the fake answered, or 0 when it dropped the
	// connection instead.
	Status int
	// Fault is the injected fault this request got, or nil.
	Fault *Fault
}

// Requests returns a copy of every request received, oldest first.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordedRequest, len(s.requests))
	for i, r := range s.requests {
		out[i] = r
		out[i].Query = cloneValues(r.Query)
		out[i].Header = r.Header.Clone()
		out[i].Body = bytes.Clone(r.Body)
		if r.Fault != nil {
			f := *r.Fault
			out[i].Fault = &f
		}
	}
	return out
}

// ClearRequests forgets the recorded requests only.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// RequestCount counts the recorded requests with the method (any when
// empty) and a path matching pattern: the escaped path exactly, or, when
// pattern ends in "*", any path that starts with what comes before it.
func (s *Server) RequestCount(method, pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if matches(method, pattern, r.Method, r.Path) {
			n++
		}
	}
	return n
}

func matches(method, pattern, gotMethod, gotPath string) bool {
	if method != "" && !strings.EqualFold(method, gotMethod) {
		return false
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(gotPath, prefix)
	}
	return pattern == "" || pattern == gotPath
}

// Fault is a failure the fake plays instead of (or after) handling a
// matching request. Inject it; the next Times matching requests get it.
//
// There are two kinds, and tests of "at most once" need both:
//   - fail before acting (AfterApply false, the default): the request is
//     not handled at all. Nothing is stored; the client gets Status, or a
//     dropped connection when Drop is set.
//   - act then fail (AfterApply true): the request is handled and its
//     effects stay (a session opened, a message stored), then the real
//     answer is thrown away and the client gets Status, or a dropped
//     connection when Drop is set. The client cannot tell that the server
//     acted.
//
// A fault with neither Status nor Drop only delays the request, which is
// then handled normally; with a client timeout shorter than Delay, that is
// a request the server handled after the client gave up.
type Fault struct {
	// Method matches the request method; empty matches any.
	Method string
	// Path matches the escaped request path exactly, or, when it ends in
	// "*", as a prefix ("/v1/convotest-app/*"). Empty matches any.
	Path string
	// Times is how many matching requests get the fault; 0 means 1.
	Times int
	// Status is the status answered; 0 answers none (see Drop).
	Status int
	// RetryAfter, if not empty, is sent as the Retry-After header with
	// Status: seconds ("2") or an HTTP date.
	RetryAfter string
	// Body is sent with Status; empty sends {"message": "<status text>"}.
	// It is sent as application/json.
	Body string
	// Delay is waited before the request is handled (or the fault
	// answered). The wait goes on when the client gives up, like a slow
	// server's, and ends early only when the server is closed.
	Delay time.Duration
	// Drop resets the connection (TCP RST) without answering. With
	// AfterApply, the request is handled first.
	Drop bool
	// Truncate sends Status and the headers, announcing the whole body
	// (the handler's answer with AfterApply, else Body), then only half
	// of it, and resets the connection: a reset after the response
	// started.
	Truncate bool
	// AfterApply handles the request before failing it: see the type's
	// documentation.
	AfterApply bool
}

// Inject queues faults. Each request takes the first queued fault that
// matches it; a fault leaves the queue once it has been used Times times.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range faults {
		if f.Times <= 0 {
			f.Times = 1
		}
		s.faults = append(s.faults, &f)
	}
}

// PendingFaults is how many uses are left in the fault queue, added up.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += f.Times
	}
	return n
}

// ClearFaults empties the fault queue.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns a copy of the first queued fault matching the request
// and uses it up once. The caller holds s.mu.
func (s *Server) takeFault(method, path string) *Fault {
	for i, f := range s.faults {
		if !matches(f.Method, f.Path, method, path) {
			continue
		}
		got := *f
		got.Times = 1
		f.Times--
		if f.Times == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		s.stats.FaultsApplied++
		return &got
	}
	return nil
}

// response is a handler's answer, built under the lock and written after.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	path := r.URL.EscapedPath()

	s.mu.Lock()
	idx := len(s.requests)
	s.requests = append(s.requests, RecordedRequest{
		Method: r.Method,
		Path:   path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
		Body:   body,
		Time:   time.Now(),
	})
	f := s.takeFault(r.Method, path)
	s.requests[idx].Fault = f
	s.mu.Unlock()

	setStatus := func(code int) {
		s.mu.Lock()
		if idx < len(s.requests) { // Reset may have cleared the log meanwhile
			s.requests[idx].Status = code
		}
		s.mu.Unlock()
	}

	if f != nil && f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
		}
	}
	failing := f != nil && (f.Status != 0 || f.Drop)
	if failing && !f.AfterApply {
		setStatus(playFault(w, f, nil))
		return
	}

	var resp response
	switch {
	case readErr != nil:
		resp = errorResponse(http.StatusBadRequest, "reading body: "+readErr.Error())
	case len(body) > maxBody:
		resp = errorResponse(http.StatusRequestEntityTooLarge, "body larger than 1 MiB")
	default:
		s.mu.Lock()
		resp = s.route(r, path, body)
		s.mu.Unlock()
	}

	if failing {
		setStatus(playFault(w, f, resp.body))
		return
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
	setStatus(resp.status)
}

// playFault answers f's status, or resets the connection. handled is the
// handler's answer body when the request was handled (AfterApply). It
// returns the status sent, 0 for a reset.
func playFault(w http.ResponseWriter, f *Fault, handled []byte) int {
	if f.Drop {
		resetConn(w)
		return 0
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	body := []byte(f.Body)
	switch {
	case f.Body != "":
	case f.Truncate && handled != nil:
		body = handled
	default:
		body = errorResponse(f.Status, http.StatusText(f.Status)).body
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if f.Truncate {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(f.Status)
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		resetConn(w)
		return f.Status
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write(body)
	return f.Status
}

// resetConn closes the request's connection with a TCP RST, answering
// nothing.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("convotest: connection cannot be hijacked to drop it")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic("convotest: hijacking the connection: " + err.Error())
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// route dispatches by path. The caller holds s.mu.
func (s *Server) route(r *http.Request, path string, body []byte) response {
	segs, ok := splitPath(path)
	if ok && len(segs) > 0 {
		switch segs[0] {
		case "tenants":
			return s.routeTalqui(r, segs[1:], body)
		case "v1":
			return s.routeTalkJS(r, segs[1:], body)
		}
	}
	return notFound(path)
}

// splitPath splits an escaped path into unescaped segments, so that an
// escaped "/" stays inside its segment. An empty segment (a double or
// trailing slash) or a bad escape makes it fail.
func splitPath(escaped string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, "/")
	if !ok || rest == "" {
		return nil, false
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil || v == "" {
			return nil, false
		}
		parts[i] = v
	}
	return parts, true
}

// jsonResponse marshals v as the body.
func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		panic("convotest: encoding a response: " + err.Error())
	}
	return response{status: status, body: b}
}

// errorResponse is the error body both fakes use: {"message": "..."}.
func errorResponse(status int, msg string) response {
	return jsonResponse(status, map[string]string{"message": msg})
}

func notFound(path string) response {
	return errorResponse(http.StatusNotFound, "no route for "+path)
}

// methodNotAllowed answers 405 with the Allow header.
func methodNotAllowed(allow ...string) response {
	resp := errorResponse(http.StatusMethodNotAllowed, "method not allowed; allowed: "+strings.Join(allow, ", "))
	resp.header = http.Header{"Allow": {strings.Join(allow, ", ")}}
	return resp
}

// isJSON reports whether the request's Content-Type is application/json,
// parameters (charset) allowed.
func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// newUUID gives a random version-4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// object parses body as one JSON object, keeping each member raw.
func object(body []byte) (map[string]json.RawMessage, bool) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	return m, true
}

// isNull reports whether raw is the JSON null.
func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// asString decodes raw as a JSON string.
func asString(raw json.RawMessage) (string, bool) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	var s string
	return s, json.Unmarshal(b, &s) == nil
}
