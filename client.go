package convo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-querystring/query"
	"github.com/hashicorp/go-retryablehttp"
)

// Version is the version of this SDK, sent in the User-Agent header.
const Version = "0.1.0"

// Default settings of a Client.
const (
	DefaultTalquiURL = "https://api.talqui.chat"
	DefaultTalkJSURL = "https://api.talkjs.com"
	// DefaultTalkJSVersion is the TalkJS REST API version the SDK is
	// written against, sent as TalkJS-REST-Version on every TalkJS call so
	// that a change of the app's default version cannot change its
	// behaviour (say, 2024-01-01 answers 404 for the conversations of a
	// user that does not exist).
	DefaultTalkJSVersion = "2024-01-01"

	defaultMaxRetries      = 4
	defaultMinWait         = 500 * time.Millisecond
	defaultMaxWait         = 30 * time.Second
	defaultHeaderTimeout   = 30 * time.Second
	defaultIdleConnsToHost = 64

	// maxResponseBody is the largest success body the client reads.
	maxResponseBody = 16 << 20
)

// PluginConnection is a Talqui plugin connection: its id (sent as
// pluginConnectionID) and its token (sent as
// "Authorization: PluginConnection <token>"). Its String, GoString and
// LogValue methods never show the token.
type PluginConnection struct {
	ID    string
	Token string
}

// String shows the connection id and hides the token.
func (p PluginConnection) String() string {
	return "PluginConnection{ID:" + p.ID + " Token:[redacted]}"
}

// GoString is String, so %#v hides the token too.
func (p PluginConnection) GoString() string { return p.String() }

// LogValue hides the token from slog.
func (p PluginConnection) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", p.ID), slog.String("token", "[redacted]"))
}

// RetryPolicy says how often and how long a call is retried. It is taken
// as given: MaxRetries 0 means one try. A zero MinWait or MaxWait takes the
// default (500 ms and 30 s).
type RetryPolicy struct {
	MaxRetries int           // retries after the first try
	MinWait    time.Duration // the first backoff, doubled on each retry, with jitter
	MaxWait    time.Duration // the longest wait, and the longest Retry-After honoured
}

// Option configures a Client. An option that is given bad input makes
// NewClient fail.
type Option func(*settings) error

type settings struct {
	talqui     *talquiConfig
	talkjs     *talkjsConfig
	talquiURL  string
	talkjsURL  string
	talkjsVer  string
	httpClient *http.Client
	retry      RetryPolicy
	logger     *slog.Logger
	userAgent  string
}

type talquiConfig struct {
	tenantID string
	conns    []PluginConnection
	auth     [][]string // the Authorization header of each connection; shared, never modified
}

type talkjsConfig struct {
	appID  string
	secret string
}

// WithTalqui configures Talqui with the tenant id and its plugin
// connections. A session start names its connection by id; with exactly
// one connection it may leave the id empty.
func WithTalqui(tenantID string, conns ...PluginConnection) Option {
	return func(s *settings) error {
		var ps problems
		if strings.TrimSpace(tenantID) == "" {
			ps.add("tenantID", "must not be empty")
		}
		if len(conns) == 0 {
			ps.add("conns", "at least one plugin connection is required")
		}
		seen := make(map[string]bool, len(conns))
		for i, c := range conns {
			f := "conns[" + strconv.Itoa(i) + "]"
			if strings.TrimSpace(c.ID) == "" {
				ps.add(f+".ID", "must not be empty")
			} else if seen[c.ID] {
				ps.add(f+".ID", "duplicate connection id "+strconv.Quote(c.ID))
			}
			seen[c.ID] = true
			if strings.TrimSpace(c.Token) == "" {
				ps.add(f+".Token", "must not be empty")
			}
		}
		if err := ps.err(); err != nil {
			return err
		}
		tc := &talquiConfig{tenantID: tenantID, conns: append([]PluginConnection(nil), conns...)}
		for _, c := range conns {
			tc.auth = append(tc.auth, []string{"PluginConnection " + c.Token})
		}
		s.talqui = tc
		return nil
	}
}

// WithTalkJS configures TalkJS with the app id and a secret key, sent as
// "Authorization: Bearer <secretKey>".
func WithTalkJS(appID, secretKey string) Option {
	return func(s *settings) error {
		var ps problems
		if strings.TrimSpace(appID) == "" {
			ps.add("appID", "must not be empty")
		}
		if strings.TrimSpace(secretKey) == "" {
			ps.add("secretKey", "must not be empty")
		}
		if err := ps.err(); err != nil {
			return err
		}
		s.talkjs = &talkjsConfig{appID: appID, secret: secretKey}
		return nil
	}
}

// WithTalquiURL sets the Talqui base URL (default https://api.talqui.chat).
// It must be absolute https, or http to a loopback host.
func WithTalquiURL(u string) Option {
	return func(s *settings) (err error) {
		s.talquiURL, err = checkBaseURL("talquiURL", u)
		return err
	}
}

// WithTalkJSURL sets the TalkJS base URL (default https://api.talkjs.com).
// It must be absolute https, or http to a loopback host.
func WithTalkJSURL(u string) Option {
	return func(s *settings) (err error) {
		s.talkjsURL, err = checkBaseURL("talkjsURL", u)
		return err
	}
}

// WithTalkJSVersion sets the TalkJS-REST-Version header of TalkJS calls
// (default DefaultTalkJSVersion); "" sends none, so the app's default
// version applies.
func WithTalkJSVersion(v string) Option {
	return func(s *settings) error {
		if strings.ContainsAny(v, "\r\n") {
			return &ValidationError{Problems: []Problem{{Field: "talkjsVersion", Reason: "must not contain a line break"}}}
		}
		s.talkjsVer = v
		return nil
	}
}

// WithHTTPClient makes the client send through hc: its transport and its
// timeouts apply. The client never closes hc's idle connections.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return &ValidationError{Problems: []Problem{{Field: "httpClient", Reason: "must not be nil"}}}
		}
		s.httpClient = hc
		return nil
	}
}

// WithRetry sets the retry policy. See RetryPolicy for the zero values.
func WithRetry(p RetryPolicy) Option {
	return func(s *settings) error {
		var ps problems
		if p.MaxRetries < 0 {
			ps.add("RetryPolicy.MaxRetries", "must not be negative")
		}
		if p.MinWait < 0 {
			ps.add("RetryPolicy.MinWait", "must not be negative")
		}
		if p.MaxWait < 0 {
			ps.add("RetryPolicy.MaxWait", "must not be negative")
		}
		if p.MinWait == 0 {
			p.MinWait = defaultMinWait
		}
		if p.MaxWait == 0 {
			p.MaxWait = defaultMaxWait
		}
		if p.MinWait > 0 && p.MaxWait > 0 && p.MinWait > p.MaxWait {
			ps.add("RetryPolicy.MinWait", "must not exceed MaxWait")
		}
		if err := ps.err(); err != nil {
			return err
		}
		s.retry = p
		return nil
	}
}

// WithLogger makes the client log each attempt (debug) and each retry
// (info) to l. No log line holds a token, a secret or a header.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) error {
		s.logger = l
		return nil
	}
}

// WithUserAgent appends suffix (say "my-app/1.2") to the User-Agent
// header, which starts with convo-go/<Version>.
func WithUserAgent(suffix string) Option {
	return func(s *settings) error {
		if strings.ContainsAny(suffix, "\r\n") {
			return &ValidationError{Problems: []Problem{{Field: "userAgent", Reason: "must not contain a line break"}}}
		}
		s.userAgent = strings.TrimSpace(suffix)
		return nil
	}
}

func checkBaseURL(field, raw string) (string, error) {
	bad := func(reason string) (string, error) {
		return "", &ValidationError{Problems: []Problem{{Field: field, Reason: reason}}}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return bad("must be an absolute http(s) URL")
	}
	if u.User != nil {
		return bad("must not hold credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("must not have a query or a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return bad("plain http is allowed only to a loopback host")
		}
	default:
		return bad("must be an absolute http(s) URL")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Client talks to Talqui and TalkJS. It is safe for concurrent use; create
// one and share it, since it holds the connection pool.
type Client struct {
	// Sessions starts Talqui sessions.
	Sessions *SessionsService
	// Users manages TalkJS users.
	Users *UsersService
	// Conversations manages TalkJS conversations, participants and messages.
	Conversations *ConversationsService

	rc        *retryablehttp.Client
	logger    *slog.Logger
	userAgent []string // the User-Agent header; shared, never modified
	policy    RetryPolicy
	secrets   [][]byte // every configured credential, redacted from error bodies

	talqui    *talquiConfig
	talkjs    *talkjsConfig
	talquiAPI endpoint
	talkjsAPI endpoint
}

// endpoint is where a provider's calls go: origin + prefix + path.
type endpoint struct {
	origin string              // scheme://host[:port]
	prefix string              // the base URL's path, plus "/v1/{appId}" for TalkJS
	auth   []string            // the Authorization header, when it does not vary by call; shared, never modified
	header map[string][]string // more headers of every call (canonical keys); shared, never modified
}

func newEndpoint(base, prefix, auth string) endpoint {
	u, _ := url.Parse(base) // checked by checkBaseURL
	ep := endpoint{origin: u.Scheme + "://" + u.Host, prefix: strings.TrimRight(u.EscapedPath(), "/") + prefix}
	if auth != "" {
		ep.auth = []string{auth}
	}
	return ep
}

type service struct{ c *Client }

// NewClient builds a Client. Configure at least one provider with
// WithTalqui or WithTalkJS; a service of a provider left out answers
// ErrNotConfigured.
func NewClient(opts ...Option) (*Client, error) {
	s := settings{
		talquiURL: DefaultTalquiURL,
		talkjsURL: DefaultTalkJSURL,
		talkjsVer: DefaultTalkJSVersion,
		retry:     RetryPolicy{MaxRetries: defaultMaxRetries, MinWait: defaultMinWait, MaxWait: defaultMaxWait},
	}
	var ps problems
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := ps.merge(o(&s)); err != nil {
			return nil, err
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}

	c := &Client{
		logger: s.logger,
		policy: s.retry,
		talqui: s.talqui,
		talkjs: s.talkjs,
	}
	ua := "convo-go/" + Version
	if s.userAgent != "" {
		ua += " " + s.userAgent
	}
	c.userAgent = []string{ua}
	if c.talqui != nil {
		c.talquiAPI = newEndpoint(s.talquiURL, "", "")
		for _, pc := range c.talqui.conns {
			c.secrets = append(c.secrets, []byte(pc.Token))
		}
	}
	if c.talkjs != nil {
		c.talkjsAPI = newEndpoint(s.talkjsURL, "/v1/"+url.PathEscape(c.talkjs.appID), "Bearer "+c.talkjs.secret)
		if s.talkjsVer != "" {
			c.talkjsAPI.header = map[string][]string{"Talkjs-Rest-Version": {s.talkjsVer}}
		}
		c.secrets = append(c.secrets, []byte(c.talkjs.secret))
	}

	hc := s.httpClient
	if hc == nil {
		hc = &http.Client{Transport: newTransport()}
	}
	// retryablehttp closes the client's idle connections after every failed
	// call, which would flush the pool that concurrent calls share. The
	// wrapper hides CloseIdleConnections from it.
	inner := hc.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	wrapped := *hc
	wrapped.Transport = keepIdle{inner}

	rc := &retryablehttp.Client{
		HTTPClient:   &wrapped,
		RetryWaitMin: s.retry.MinWait,
		RetryWaitMax: s.retry.MaxWait,
		RetryMax:     s.retry.MaxRetries,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		ErrorHandler: passthrough,
		// Logger stays a true nil: the pipeline logs for itself.
		RequestLogHook: countAttempt,
	}
	c.rc = rc
	c.Sessions = &SessionsService{c: c}
	c.Users = &UsersService{c: c}
	c.Conversations = &ConversationsService{c: c}
	return c, nil
}

// CloseIdleConnections closes the idle connections of the client's
// transport (the caller's, with WithHTTPClient). The pipeline itself never
// does: the pool is shared by concurrent calls.
func (c *Client) CloseIdleConnections() {
	if ci, ok := c.rc.HTTPClient.Transport.(keepIdle).rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// newTransport is a pooled transport that keeps enough idle connections
// for 64 concurrent calls to one host and waits at most 30 s for response
// headers.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2 * defaultIdleConnsToHost,
		MaxIdleConnsPerHost:   defaultIdleConnsToHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: defaultHeaderTimeout,
	}
}

// keepIdle hides the wrapped transport's CloseIdleConnections.
type keepIdle struct{ rt http.RoundTripper }

// RoundTrip sends r through the wrapped transport.
func (k keepIdle) RoundTrip(r *http.Request) (*http.Response, error) { return k.rt.RoundTrip(r) }

func passthrough(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err }

// request describes one call for the pipeline.
type request struct {
	provider Provider
	method   string
	// path is a template such as "/users/{userID}/conversations"; each
	// {name} is replaced, in order, by the escaped value of params. An
	// empty value, "." or ".." is refused with a problem naming the field.
	path   string
	params []string
	query  any // a struct encoded with go-querystring, or nil
	body   any // encoded with encoding/json; nil sends no body
	out    any // the success body is decoded into it; nil discards it
	// raw, if set, receives the success body as read.
	raw *[]byte
	// repeatable says the call may be sent again after it may have reached
	// the server (GET, PUT, PATCH, DELETE, or a send with idempotency keys).
	repeatable bool
	// auth is the Authorization header; nil takes the provider's. It is
	// shared, never modified.
	auth []string
}

// bodyEncoder is a request body that writes its own JSON. The pipeline
// uses it instead of json.Marshal, which would scan and copy the output of
// a MarshalJSON method a second time. The output must be valid JSON.
type bodyEncoder interface {
	encodeBody() ([]byte, error)
}

// callState travels in the request context to the retry hooks.
type callState struct {
	repeatable    bool
	attempts      int
	retryAfter    time.Duration // of the last response
	hasRetryAfter bool
	lastStatus    int  // status of the last response, 0 if none
	unknown       bool // the last attempt failed after it may have reached the server
	reached       bool // an earlier attempt may have been applied by the server
	logger        *slog.Logger
	provider      Provider
	method        string
	path          string
	body          []byte // the final response body, read within the attempt
	bodyErr       error
	discard       bool // the call has no use for a success body
}

type stateKey struct{}

func stateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(stateKey{}).(*callState)
	if st == nil {
		return &callState{}
	}
	return st
}

func countAttempt(_ retryablehttp.Logger, r *http.Request, i int) {
	st := stateOf(r.Context())
	st.attempts = i + 1
	st.body, st.bodyErr, st.unknown = nil, nil, false
	if st.logger != nil {
		st.logger.LogAttrs(r.Context(), slog.LevelDebug, "convo: sending",
			slog.String("provider", string(st.provider)), slog.String("method", st.method),
			slog.String("path", st.path), slog.Int("attempt", i+1))
	}
}

// do runs one call through the pipeline: validate and build the request,
// send it with retries, and turn the final response into r.out or an
// error.
func (c *Client) do(ctx context.Context, r *request) error {
	ep, err := c.endpoint(r.provider)
	if err != nil {
		return err
	}
	auth := ep.auth
	if r.auth != nil {
		auth = r.auth
	}
	path, err := expandPath(r.path, r.params)
	if err != nil {
		return err
	}
	full := ep.origin + ep.prefix + path
	path = full[len(ep.origin):]
	if err := ctx.Err(); err != nil {
		// Nothing is sent on a context that is already done.
		return fmt.Errorf("convo: %s %s %s: %w", r.provider, r.method, path, err)
	}
	if r.query != nil {
		v, err := query.Values(r.query)
		if err != nil {
			return fmt.Errorf("convo: %s %s %s: encoding query: %w", r.provider, r.method, path, err)
		}
		if q := v.Encode(); q != "" {
			full += "?" + q
		}
	}
	var body []byte
	if r.body != nil {
		if e, ok := r.body.(bodyEncoder); ok {
			body, err = e.encodeBody()
		} else {
			body, err = json.Marshal(r.body)
		}
		if err != nil {
			return fmt.Errorf("convo: %s %s %s: encoding body: %w", r.provider, r.method, path, err)
		}
	}

	st := &callState{
		repeatable: r.repeatable,
		logger:     c.logger,
		provider:   r.provider,
		method:     r.method,
		path:       path,
		discard:    r.out == nil && r.raw == nil,
	}
	ctx = context.WithValue(ctx, stateKey{}, st)
	var rawBody any
	if body != nil {
		rawBody = body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, full, rawBody)
	if err != nil {
		return fmt.Errorf("convo: %s %s %s: %w", r.provider, r.method, path, err)
	}
	// The header values are shared slices, set once: http.RoundTripper
	// implementations must not modify the request, and Header.Set and Add
	// replace a slice rather than write into it.
	h := req.Header
	h["Authorization"] = auth
	h["Accept"] = headerJSON
	h["User-Agent"] = c.userAgent
	if body != nil {
		h["Content-Type"] = headerJSON
	}
	for k, v := range ep.header {
		h[k] = v
	}
	req.SetResponseHandler(func(resp *http.Response) error { return readBody(st, resp) })

	resp, err := c.rc.Do(req)
	if resp != nil {
		// The response handler read and closed the body of the final
		// response; a response passed through after exhausted retries has
		// not been read yet.
		if st.body == nil && st.bodyErr == nil {
			_ = readBody(st, resp)
		}
		resp.Body.Close()
	}
	if err != nil {
		if resp == nil || !errors.Is(err, errBodyRead) {
			return c.transportError(ctx, r, st, err)
		}
	}
	return c.finish(r, st, resp)
}

// finish turns the final response into r.out or an *APIError.
func (c *Client) finish(r *request, st *callState, resp *http.Response) error {
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if resp.StatusCode == http.StatusNotFound && r.method == http.MethodDelete && st.attempts > 1 && st.reached {
		// An earlier attempt of this DELETE may have been applied: the
		// resource is gone, which is what the caller asked for.
		return nil
	}
	if ok && st.bodyErr == nil {
		if r.raw != nil {
			*r.raw = st.body
		}
		if r.out == nil {
			return nil
		}
		if len(bytes.TrimSpace(st.body)) == 0 {
			st.bodyErr = errors.New("empty response body")
		} else if err := json.Unmarshal(st.body, r.out); err != nil {
			st.bodyErr = fmt.Errorf("decoding response: %w", err)
		} else {
			return nil
		}
	}
	e := &APIError{
		Provider:   r.provider,
		Method:     r.method,
		Path:       st.path,
		StatusCode: resp.StatusCode,
		RequestID:  requestID(resp.Header),
		RetryAfter: st.retryAfter,
		Attempts:   st.attempts,
	}
	if ok {
		e.Message = st.bodyErr.Error()
		if r.raw != nil {
			*r.raw = st.body
		}
	} else {
		e.Body = c.redact(st.body)
		e.Message = string(c.redact([]byte(messageFromBody(e.Body))))
	}
	return e
}

// transportError wraps a failure that left no response to read. It
// matches ErrOutcomeUnknown when the last attempt may have reached the
// server, and keeps the context's error when the context ended.
func (c *Client) transportError(ctx context.Context, r *request, st *callState, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "convo: %s %s %s: ", r.provider, r.method, st.path)
	if st.attempts > 1 {
		fmt.Fprintf(&b, "after %d attempts", st.attempts)
		if st.lastStatus != 0 {
			fmt.Fprintf(&b, " (last status %d)", st.lastStatus)
		}
		b.WriteString(": ")
	}
	if st.unknown {
		return fmt.Errorf("%s%w (%w)", b.String(), err, ErrOutcomeUnknown)
	}
	return fmt.Errorf("%s%w", b.String(), err)
}

func (c *Client) endpoint(p Provider) (*endpoint, error) {
	switch {
	case p == ProviderTalqui && c.talqui != nil:
		return &c.talquiAPI, nil
	case p == ProviderTalkJS && c.talkjs != nil:
		return &c.talkjsAPI, nil
	case p == ProviderTalqui:
		return nil, fmt.Errorf("%w: talqui (use WithTalqui)", ErrNotConfigured)
	case p == ProviderTalkJS:
		return nil, fmt.Errorf("%w: talkjs (use WithTalkJS)", ErrNotConfigured)
	}
	return nil, fmt.Errorf("%w: %s", ErrNotConfigured, p)
}

// redact replaces every configured secret in b.
func (c *Client) redact(b []byte) []byte {
	for _, s := range c.secrets {
		if len(s) > 0 && bytes.Contains(b, s) {
			b = bytes.ReplaceAll(b, s, []byte("[redacted]"))
		}
	}
	return b
}

// expandPath fills the {name} placeholders of tmpl with the escaped params.
func expandPath(tmpl string, params []string) (string, error) {
	if len(params) == 0 && strings.IndexByte(tmpl, '{') < 0 {
		return tmpl, nil
	}
	full := tmpl
	var b strings.Builder
	b.Grow(len(tmpl) + 16*len(params))
	var ps problems
	i := 0
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			break
		}
		end := strings.IndexByte(tmpl[open:], '}') + open
		name := tmpl[open+1 : end]
		b.WriteString(tmpl[:open])
		if i >= len(params) {
			return "", fmt.Errorf("convo: internal error: path %q has more placeholders than values", full)
		}
		v := params[i]
		i++
		switch v {
		case "":
			ps.add(name, "must not be empty")
		case ".", "..":
			ps.addf(name, "must not be %q", v)
		}
		b.WriteString(url.PathEscape(v))
		tmpl = tmpl[end+1:]
	}
	if err := ps.err(); err != nil {
		return "", err
	}
	return b.String(), nil
}

var headerJSON = []string{"application/json"}

var errBodyRead = errors.New("reading response body")

var errBodyTooLarge = errors.New("response body too large")

// readBody reads the final response's body within the attempt, so that a
// body cut short can be retried like any other failure after sending. An
// error body is kept up to 64 KiB; a success body up to 16 MiB, or not at
// all when the call has no use for it.
func readBody(st *callState, resp *http.Response) error {
	defer resp.Body.Close()
	limit := int64(maxResponseBody)
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if ok && st.discard {
		// The status is the answer; read a little so the connection can
		// be reused, whatever the body holds.
		_, _ = io.CopyN(io.Discard, resp.Body, maxErrorBody)
		st.body, st.bodyErr = []byte{}, nil
		return nil
	}
	if !ok {
		limit = maxErrorBody
	}
	n := resp.ContentLength
	if n < 0 || n > limit {
		n = 0
	}
	// ReadFrom grows the buffer whenever less than bytes.MinRead is free
	// before a read, even the last one that only sees EOF: with that much
	// room past a known length, the body is read into one allocation.
	buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	b := buf.Bytes()
	switch {
	case err != nil:
		st.body, st.bodyErr = b, fmt.Errorf("%w: %w", errBodyRead, err)
		if !ok {
			// An error status is what counts; a body cut short does not
			// change it.
			st.bodyErr = nil
			return nil
		}
		return st.bodyErr
	case int64(len(b)) > limit:
		if !ok {
			st.body = b[:limit]
			return nil
		}
		st.body = nil
		st.bodyErr = fmt.Errorf("%w: %w: over %d bytes", errBodyRead, errBodyTooLarge, limit)
		return st.bodyErr
	}
	if b == nil {
		b = []byte{}
	}
	st.body, st.bodyErr = b, nil
	return nil
}

func requestID(h http.Header) string {
	for _, k := range []string{"X-Request-Id", "Request-Id", "X-Correlation-Id"} {
		if v := h.Get(k); v != "" {
			return truncate(v, 200)
		}
	}
	return ""
}

// checkRetry decides whether an attempt is repeated. See the package
// documentation for the rules.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	st := stateOf(ctx)
	if ctxErr := ctx.Err(); ctxErr != nil {
		st.unknown = err != nil && resp == nil && !isDialError(err)
		return false, ctxErr
	}
	retry, reason := c.decide(st, resp, err)
	if retry && st.logger != nil {
		if reason == "" && resp != nil {
			reason = "status " + strconv.Itoa(resp.StatusCode)
		}
		attrs := []slog.Attr{
			slog.String("provider", string(st.provider)), slog.String("method", st.method),
			slog.String("path", st.path), slog.Int("attempt", st.attempts), slog.String("reason", reason),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		st.logger.LogAttrs(ctx, slog.LevelInfo, "convo: retrying", attrs...)
	}
	return retry, err
}

func (c *Client) decide(st *callState, resp *http.Response, err error) (bool, string) {
	if err != nil {
		switch {
		case errors.Is(err, errBodyTooLarge):
			return false, ""
		case isDialError(err):
			return true, "dial failed"
		case isPermanent(err):
			return false, ""
		}
		st.unknown = resp == nil
		st.reached = true
		return st.repeatable, "transport error after sending"
	}
	st.retryAfter, st.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	code := resp.StatusCode
	st.lastStatus = code
	var retry bool
	switch {
	case code == http.StatusTooManyRequests:
		retry = true
	case code == http.StatusRequestTimeout:
		retry = st.repeatable
	case code == http.StatusNotImplemented:
		retry = false
	case code >= 500:
		retry = st.repeatable
	}
	if code == http.StatusRequestTimeout || code >= 500 {
		st.reached = true
	}
	if retry && st.retryAfter > c.policy.MaxWait {
		// The server asks for a longer wait than the policy allows: give
		// the caller the error, with RetryAfter, at once.
		return false, ""
	}
	return retry, "" // checkRetry names the status when it logs the retry
}

// backoff is exponential with jitter between MinWait and MaxWait; a
// Retry-After of the response (already capped by checkRetry) wins.
func (c *Client) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.Request != nil {
		if st := stateOf(resp.Request.Context()); st.hasRetryAfter && st.retryAfter <= maxWait {
			return st.retryAfter
		}
	}
	d := maxWait
	if attempt < 32 {
		if x := minWait << attempt; x > 0 && x < maxWait {
			d = x
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(365*24*time.Hour/time.Second) {
			n = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// isDialError reports a failure to connect: nothing was sent.
func isDialError(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isPermanent reports a transport error that no retry can mend.
func isPermanent(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) {
		msg := ue.Error()
		for _, s := range []string{"stopped after", "unsupported protocol scheme", "invalid header", "certificate is not trusted"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
	}
	var unknownAuth x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var hostname x509.HostnameError
	return errors.As(err, &unknownAuth) || errors.As(err, &verify) || errors.As(err, &hostname)
}
