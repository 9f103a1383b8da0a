package convo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-querystring/query"
	"github.com/hashicorp/go-retryablehttp"
)

// Version is the version of this SDK, sent in the User-Agent header.
const Version = "0.2.0"

// Default settings of a Client.
const (
	// DefaultTalquiURL is Talqui's base URL; see WithTalquiURL.
	DefaultTalquiURL = "https://api.talqui.chat"
	// DefaultTalkJSURL is TalkJS's base URL, below which the paths start
	// with /v1/{appId}; see WithTalkJSURL.
	DefaultTalkJSURL = "https://api.talkjs.com"
	// DefaultSelartiURL is Selarti's base URL; its workflows are under
	// /wf/. See WithSelartiURL.
	DefaultSelartiURL = "https://selarti.com/api/1.1"
	// DefaultTalkJSVersion is the TalkJS REST API version the SDK is
	// written against, sent as TalkJS-REST-Version on every TalkJS call so
	// that a change of the app's default version cannot change its
	// behaviour (say, 2024-01-01 answers 404 for the conversations of a
	// user that does not exist).
	DefaultTalkJSVersion = "2024-01-01"
	// DefaultTimeout bounds one attempt of a call as a whole (connect,
	// headers and body); see WithTimeout.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxResponseBytes is the largest success body a call reads
	// (16 MiB); see WithMaxResponseBytes.
	DefaultMaxResponseBytes = 16 << 20

	defaultMaxRetries      = 4
	defaultMinWait         = 500 * time.Millisecond
	defaultMaxWait         = 30 * time.Second
	defaultHeaderTimeout   = 30 * time.Second
	defaultIdleConnsToHost = 64
)

// Client talks to Talqui, TalkJS and Selarti. It is safe for concurrent
// use; create one and share it, since it holds the connection pool (and
// Selarti's token). Make it with NewClient: every call of a Client that
// NewClient did not make (its zero value) answers ErrNotConfigured and
// sends nothing.
type Client struct {
	// Sessions starts Talqui sessions.
	Sessions *SessionsService
	// Users manages TalkJS users.
	Users *UsersService
	// Conversations manages TalkJS conversations, participants and messages.
	Conversations *ConversationsService
	// Selarti sends people's messages to Selarti's AI and adds targets to
	// its tasks.
	Selarti *SelartiService

	rc *retryablehttp.Client
	// onResponse reads the final answer's body within its attempt
	// (readBody); one function for every call, set with rc.
	onResponse retryablehttp.ResponseHandlerFunc
	logger     *slog.Logger
	observer   *Observer // nil when no hook of a client is set
	userAgent  []string  // the User-Agent header; shared, never modified
	policy     RetryPolicy
	maxBody    int64   // the largest success body read (WithMaxResponseBytes)
	secrets    secrets // every configured credential, redacted from error bodies
	// creds are the credentials that give tokens at run time (TalkJS app
	// tokens, Selarti's): their tokens are redacted like secrets, from
	// the errors of every endpoint.
	creds []credential

	talqui    *talquiConfig       // nil when Talqui is not configured
	talkjs    *endpoint           // where TalkJS calls go; its err is set when TalkJS is not configured
	talkjsApp string              // the TalkJS app id, "" when TalkJS is not configured
	selarti   *selartiConfig      // nil when Selarti is not configured
	baseURLs  map[Provider]string // the base URL of each configured provider (BaseURL)
}

// endpoint is where a provider's calls go: scheme://hostport + prefix +
// path, with the headers every call of it carries.
type endpoint struct {
	provider Provider
	scheme   string              // http or https
	hostport string              // host[:port], as in the base URL
	prefix   string              // the base URL's path, plus "/v1/{appId}" for TalkJS
	template string              // prefix with "{appID}" for the app id, for observers and logs
	host     string              // the base URL's host, without the port
	port     int                 // the base URL's port, or the scheme's
	auth     []string            // the Authorization header, nil for none; shared, never modified
	header   map[string][]string // more headers of every call (canonical keys); shared, never modified
	err      error               // ErrNotConfigured: the provider was left out, nothing is sent
	// cred, when not nil, gives the Authorization header of each attempt
	// at run time, in place of auth (see auth.go).
	cred credential
	// read reads a final answer: plainAnswer, or the provider's own
	// envelope (bubbleAnswer for Selarti).
	read func(status int, body []byte) verdict

	once     sync.Once   // builds the two headers below, on the first call
	noBody   http.Header // every header of a call without a body (see headers)
	withBody http.Header // the same, and Content-Type
}

// headers is the header of every call of the endpoint, with or without a
// body, built on its first call: a request's header is a copy of it (see
// newRequest). ua is the client's User-Agent.
func (ep *endpoint) headers(ua []string, body bool) http.Header {
	ep.once.Do(func() {
		h := http.Header{"Accept": headerJSON, "User-Agent": ua}
		if ep.auth != nil {
			h["Authorization"] = ep.auth
		}
		for k, v := range ep.header {
			h[k] = v
		}
		ep.noBody = h
		ep.withBody = maps.Clone(h)
		ep.withBody["Content-Type"] = headerJSON
	})
	if body {
		return ep.withBody
	}
	return ep.noBody
}

// newEndpoint is the endpoint of base (checked by checkBaseURL) plus
// prefix, which observers and logs see as template; auth "" sends no
// Authorization header.
func newEndpoint(p Provider, base, prefix, template, auth string) *endpoint {
	u, _ := url.Parse(base) // checked by checkBaseURL
	port, _ := strconv.Atoi(u.Port())
	if port == 0 {
		port = 443
		if u.Scheme == "http" {
			port = 80
		}
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	ep := &endpoint{
		provider: p,
		scheme:   u.Scheme,
		hostport: u.Host,
		prefix:   path + prefix,
		template: path + template,
		host:     u.Hostname(),
		port:     port,
		read:     plainAnswer,
	}
	if auth != "" {
		ep.auth = []string{auth}
	}
	return ep
}

// verdict is what the pipeline reads of a final answer.
type verdict struct {
	failed  bool   // the call failed, whatever the status says
	message string // the server's message, for APIError.Message
	refused bool   // the server refused the credential and applied nothing
}

// plainAnswer reads an answer by its status: a 2xx succeeded; an error
// body's message is read by messageFromBody.
func plainAnswer(status int, body []byte) verdict {
	if status >= 200 && status <= 299 {
		return verdict{}
	}
	return verdict{failed: true, message: messageFromBody(body)}
}

// notConfigured is the error of every call to a provider left out.
func notConfigured(p Provider, option string) error {
	return fmt.Errorf("%w: %s (use %s)", ErrNotConfigured, p, option)
}

type service struct{ c *Client }

// NewClient builds a Client from opts. Configure at least one provider with
// WithTalqui, WithTalkJS or WithSelarti; a service of a provider left out
// answers ErrNotConfigured. Without other options the client talks to the
// providers' real base URLs (DefaultTalquiURL, DefaultTalkJSURL,
// DefaultSelartiURL) through its own connection pool, bounds each attempt
// by DefaultTimeout (30 s), makes up to 4 retries with waits from 500 ms to
// 30 s, reads success bodies up to DefaultMaxResponseBytes (16 MiB), and
// logs nothing. An option given bad input (a base URL that is not absolute
// https or loopback http, an empty or malformed id or credential) makes it
// fail with a *ValidationError that names every problem, never a
// credential's value. NewClient sends nothing.
func NewClient(opts ...Option) (*Client, error) {
	s, err := newSettings(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{logger: s.logger, policy: s.retry, maxBody: s.maxBody}
	if s.observer != nil && s.observer.forCalls() {
		o := *s.observer
		c.observer = &o
	}
	ua := "convo-go/" + Version
	if s.userAgent != "" {
		ua += " " + s.userAgent
	}
	c.userAgent = []string{ua}
	c.configureProviders(s)
	c.rc = c.newRetryClient(s.httpClient, s.timeout)
	c.Sessions = &SessionsService{c: c}
	c.Users = &UsersService{c: c}
	c.Conversations = &ConversationsService{c: c}
	c.Selarti = &SelartiService{c: c}
	return c, nil
}

// configureProviders builds the endpoint of each configured provider, with
// its Authorization, and collects every credential into c.secrets; a
// provider left out gets an endpoint that answers ErrNotConfigured.
func (c *Client) configureProviders(s *settings) {
	if tq := s.talqui; tq != nil {
		for _, pc := range tq.conns {
			tq.apis = append(tq.apis, newEndpoint(ProviderTalqui, s.talquiURL, "", "", "PluginConnection "+pc.Token))
			c.secrets.add(pc.Token)
		}
		tq.region = s.region
		c.talqui = tq
	}
	c.talkjs = &endpoint{provider: ProviderTalkJS, err: notConfigured(ProviderTalkJS, "WithTalkJS")}
	if tj := s.talkjs; tj != nil {
		c.talkjs = newEndpoint(ProviderTalkJS, s.talkjsURL, "/v1/"+url.PathEscape(tj.appID), "/v1/{appID}", "Bearer "+tj.secret)
		c.talkjsApp = tj.appID
		if s.tokenAuth {
			c.talkjs.auth, c.talkjs.cred = nil, newAppTokens(tj.appID, tj.secret)
			c.creds = append(c.creds, c.talkjs.cred)
		}
		if s.talkjsVer != "" {
			c.talkjs.header = map[string][]string{"Talkjs-Rest-Version": {s.talkjsVer}}
		}
		c.secrets.add(tj.secret)
	}
	if sc := s.selarti; sc != nil && sc.apiKey != "" {
		c.selarti = newSelartiConfig(c, s.selartiURL, sc.apiKey, sc.workflows)
		c.creds = append(c.creds, c.selarti.api.cred)
		c.secrets.add(sc.apiKey)
	}
	if c.talqui != nil {
		c.talqui.secrets = c.secrets
	}
	c.baseURLs = make(map[Provider]string, 3)
	if c.talqui != nil {
		c.baseURLs[ProviderTalqui] = s.talquiURL
	}
	if c.talkjsApp != "" {
		c.baseURLs[ProviderTalkJS] = s.talkjsURL
	}
	if c.selarti != nil {
		c.baseURLs[ProviderSelarti] = s.selartiURL
	}
}

// request describes one call for the pipeline.
type request struct {
	// op names the SDK method for observers and logs:
	// "<provider>.<service>.<method>" in snake case (see CallInfo).
	op     string
	api    *endpoint // where the call goes: c.talkjs, or a Talqui connection's
	method string
	// path is a template such as "/users/{userID}/conversations"; each
	// {name} is replaced, in order, by the escaped value of params. An
	// empty value, "." or ".." is refused with a problem naming the field.
	path   string
	params []string
	query  any // a struct encoded with go-querystring, or nil
	body   any // encoded with encoding/json; nil sends no body
	// encoded is a body the endpoint encoded with encode, instead of
	// setting body: a struct with its own encoder is then not boxed into
	// an interface (an allocation of its size on every call).
	encoded encodedBody
	out     any // the success body is decoded into it (see bodyDecoder); nil discards it
	// idempotent marks a POST that is safe to repeat: a message send
	// whose every message has an idempotencyKey, or a query that changes
	// nothing (presence). Other calls are repeatable by their method
	// alone.
	idempotent bool
	// invalid is the problem the method found in its arguments: the call
	// ends with it and nothing is sent (observers still see the call).
	invalid error
	// credential marks a credential step that runs before a call
	// (Selarti's token exchange): repeating it is harmless, and its
	// failure means the call it serves was not sent, so its error never
	// matches ErrOutcomeUnknown or ErrBadResponse.
	credential bool

	// A call of Client.Raw. rawPath, when set, is the escaped path below
	// the endpoint's prefix, checked by checkRawPath, sent instead of the
	// expanded template (path stays the template observers see); only a
	// GET is then repeatable by its method alone.
	rawPath string
	// stream, when not nil, is the body, read as is with the
	// Content-Type contentType: it is sent again once sent only when the
	// call is repeatable and the body can be rewound (see streamBody),
	// and never at all when it cannot be rewound.
	stream      io.Reader
	contentType string
}

// provider names the API of the call.
func (r *request) provider() Provider {
	if r.api == nil {
		return ""
	}
	return r.api.provider
}

// repeatable says whether the call may be sent again after it may have
// reached the server: GET, PUT, PATCH and DELETE are, by HTTP's rules; a
// POST only when it is marked idempotent.
func (r *request) repeatable() bool {
	if r.rawPath != "" {
		return r.method == http.MethodGet || r.idempotent
	}
	switch r.method {
	case http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return r.idempotent
}

// rewinds reports whether the body can be sent again: any body but a
// stream that is not a rewinder (see streamBody).
func (r *request) rewinds() bool {
	if r.stream == nil {
		return true
	}
	_, ok := r.stream.(rewinder)
	return ok
}

// resendable reports whether the call may be sent again once it was sent,
// though nothing of it was applied (a 429, a refused credential): always,
// but a stream that is not repeatable or cannot be rewound.
func (r *request) resendable() bool {
	return r.stream == nil || (r.rewinds() && r.repeatable())
}

// bodyEncoder is a request body that writes its own JSON. The pipeline
// uses it instead of json.Marshal, which would scan and copy the output of
// a MarshalJSON method a second time. The output must be valid JSON.
// It buys, in bench/: UpsertMany of 10,000 users 4.1 MB an op instead of
// 4.9 MB; Upsert 31 allocs instead of 32, Sessions.Start 64 instead of 65.
type bodyEncoder interface {
	encodeBody() ([]byte, error)
}

// encodedBody is a request body encoded by encode; its error is the
// call's, reported as encodeBody's would be.
type encodedBody struct {
	b   []byte
	err error
	ok  bool // set by encode
}

// encode encodes v through its own encoder, without boxing it.
func encode[T bodyEncoder](v T) encodedBody {
	b, err := v.encodeBody()
	return encodedBody{b: b, err: err, ok: true}
}

// callState is one run of a call through retryablehttp, and the context
// of its request: the retry hooks, which see only the request, find it
// there by a type assertion (stateOf), not a lookup. It embeds the call's
// context (the observer's, when it gave one), to which it hands every
// method but Value of stateKey. It holds, so that a call allocates them
// once, the retryablehttp request and the reader of the request body.
type callState struct {
	context.Context
	api           *endpoint
	attempts      int
	lastStatus    int           // status of the last response, 0 if none
	retryAfter    time.Duration // of the last response
	logger        *slog.Logger
	path          string
	template      string // the path template, which logs name (a path may hold personal data)
	credErr       error  // the credential step before a retry failed: the retry was not sent
	body          []byte // the final response body, read within the attempt
	bodyErr       error
	ob            *observation // nil unless the call is observed
	attempt       *attemptCtx  // the attempt in flight, ended by endAttempt
	repeatable    bool
	resendable    bool // may be sent again after it was sent, when nothing was applied (429)
	once          bool // a streamed body that cannot be rewound: never sent again
	hasRetryAfter bool
	reached       bool // an attempt may have been applied; it stays set, whatever ends the call
	discard       bool // the call has no use for a success body

	first   attemptCtx                    // the first attempt's context, made with the request (see attemptTransport)
	reqBody []byte                        // the encoded request body, nil for none
	rewind  func() (io.ReadCloser, error) // a fresh reader of a streamed body, nil for none
	rreq    retryablehttp.Request         // the request handed to retryablehttp
	bodyr   bytes.Reader                  // the first attempt's body reader
	drain   io.LimitedReader              // reads a discarded success body (readBody)
}

type stateKey struct{}

// Value gives the call's state for stateKey (for a context that wraps it,
// such as http.Client.Timeout's), and asks the call's context otherwise.
func (st *callState) Value(key any) any {
	if key == (stateKey{}) {
		return st
	}
	return st.Context.Value(key)
}

// stateOf finds the call's state in a request's context: the state
// itself, the attempt's context around it, or a context wrapping either.
func stateOf(ctx context.Context) *callState {
	switch c := ctx.(type) {
	case *callState:
		return c
	case *attemptCtx:
		if st, ok := c.Context.(*callState); ok {
			return st
		}
	}
	st, _ := ctx.Value(stateKey{}).(*callState)
	if st == nil {
		return &callState{Context: ctx}
	}
	return st
}

// endAttempt ends the attempt in flight, if any: its deadline no longer
// runs. The pipeline calls it once the attempt's body is read or dropped.
func (st *callState) endAttempt() {
	if a := st.attempt; a != nil {
		st.attempt = nil
		a.end()
	}
}

// end ends the call's attempts, the first one's context too when it was
// never started (the call's own deadline came first): a context made for
// it that waits on the call's ends.
func (st *callState) end() {
	st.endAttempt()
	if st.first.w == nil {
		st.first.end() // never started (a started one was an attempt)
	}
}

// retrying gives the request a retry copies the call's context, if it
// has the first attempt's, which ended: retryablehttp waits for the retry
// on the request's context.
func (st *callState) retrying() {
	if r := st.rreq.Request; r != nil && r.Context() == context.Context(&st.first) {
		st.rreq.Request = r.WithContext(st)
	}
}

// getBody is a fresh reader of the request body, for a retry
// (prepareRetry).
func (st *callState) getBody() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(st.reqBody)), nil
}

// prepareRetry readies the request of a retry, a shallow copy of the
// previous attempt's: a fresh reader of its body, and the credential's
// Authorization again.
func prepareRetry(req *http.Request) error {
	st := stateOf(req.Context())
	rewind := st.rewind // a stream's, nil for one that cannot be rewound
	if st.reqBody != nil {
		rewind = st.getBody
	}
	if rewind != nil {
		body, err := rewind()
		if err != nil {
			return err
		}
		req.Body = body
	}
	if err := reauthorize(req, st.api); err != nil {
		// The retry is not sent: send returns this error, not the
		// answer before it.
		st.credErr = err
		return err
	}
	return nil
}

// noReplayBody is the empty body of a call that has none and is not safe
// to repeat: net/http deems a request without a body replayable.
type noReplayBody struct{}

func (noReplayBody) Read([]byte) (int, error) { return 0, io.EOF }
func (noReplayBody) Close() error             { return nil }

// countAttempt runs before each attempt: it ends the previous one and
// starts the observation and the debug line of this one.
func countAttempt(_ retryablehttp.Logger, r *http.Request, i int) {
	st := stateOf(r.Context())
	st.endAttempt() // the previous attempt's body was drained
	st.attempts = i + 1
	st.body, st.bodyErr = nil, nil
	if st.ob != nil {
		st.ob.attemptStart(r)
	}
	if st.logger != nil {
		st.logger.LogAttrs(r.Context(), slog.LevelDebug, "convo: sending",
			slog.String("provider", string(st.api.provider)), slog.String("method", r.Method),
			slog.String("path", st.template), slog.Int("attempt", i+1))
	}
}

// do runs one call through the pipeline: validate and build the request,
// authorize it, send it with retries, and turn the final response into
// r.out or an error. When the server refused the endpoint's credential, it
// applied nothing: the credential is renewed and the call sent once more.
func (c *Client) do(ctx context.Context, r *request) error {
	if ctx == nil {
		// Refused: observers see the call with a background context.
		ctx = context.Background()
		if r.invalid == nil {
			r.invalid = &ValidationError{Problems: []Problem{{Field: "ctx", Reason: "must not be nil (use context.Background())"}}}
		}
	}
	if !c.observing(ctx) {
		return c.call(ctx, r, nil)
	}
	ob := c.observeStart(ctx, r)
	err := c.call(ob.ctx, r, ob)
	c.observeEnd(ob, err)
	return err
}

// call is the call itself, observed by ob when it is not nil: refuse it,
// or send it, once more when the server refused the credential.
func (c *Client) call(ctx context.Context, r *request, ob *observation) error {
	if r.invalid != nil {
		return r.invalid
	}
	if r.api.err != nil {
		return r.api.err
	}
	refused, err := c.send(ctx, r, ob)
	if refused && r.resendable() {
		_, err = c.send(ctx, r, ob)
	}
	return err
}

// send is one run of the call through the pipeline; refused reports that
// the server refused the credential's header.
func (c *Client) send(ctx context.Context, r *request, ob *observation) (refused bool, err error) {
	st := &callState{
		Context:    ctx,
		api:        r.api,
		repeatable: r.repeatable() && r.rewinds(),
		resendable: r.resendable(),
		once:       !r.rewinds(),
		logger:     c.logger,
		discard:    r.out == nil,
		ob:         ob,
	}
	if c.logger != nil {
		// Only the log lines name it: a call without a logger does not
		// build it (an allocation a call).
		st.template = r.api.template + r.path
	}
	defer st.end()
	req, err := c.newRequest(r, st)
	if err != nil {
		return false, err
	}
	var h []string
	if r.api.cred != nil {
		if h, err = r.api.cred.header(st); err != nil {
			return false, err
		}
		req.Header["Authorization"] = h
	}

	var resp *http.Response
	if off(offRetry) {
		resp, err = c.rc.HTTPClient.Do(req.Request)
		if err == nil {
			st.attempts = 1
			err = c.readBody(st, resp)
		}
	} else {
		resp, err = c.rc.Do(req)
	}
	if st.credErr != nil {
		// A retry's credential step failed (a re-exchange): that is the
		// call's error, not the answer before it, and the retry was not
		// sent.
		if resp != nil {
			resp.Body.Close()
		}
		return false, st.credErr
	}
	if resp == nil {
		return false, c.transportError(ctx, r, st, err)
	}
	// A status arrived: it is the answer, whatever err says (a body that
	// could not be read, the context ending meanwhile). The response
	// handler read and closed the body of the final response; a response
	// passed through after exhausted retries has not been read yet.
	if st.body == nil && st.bodyErr == nil {
		_ = c.readBody(st, resp)
	}
	resp.Body.Close()
	refused, err = c.finish(ctx, r, st, resp)
	// A refused header is worth one repeat only when the credential can
	// give another.
	return refused && r.api.cred != nil && r.api.cred.refused(h), err
}

// newRequest builds the HTTP request of r: the URL from the endpoint, the
// escaped path and the query, the encoded body and the headers, with st
// as its context. It sets st.path, the escaped path that errors name
// (logs name the template). The Authorization is the endpoint's fixed one; send sets a
// credential's.
func (c *Client) newRequest(r *request, st *callState) (*retryablehttp.Request, error) {
	ep := r.api
	if r.rawPath != "" {
		st.path = ep.prefix + r.rawPath
	} else {
		var err error
		if st.path, err = expandPath(ep.prefix, r.path, r.params); err != nil {
			return nil, err
		}
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("convo: %s %s %s: %s%w", ep.provider, r.method, st.path, what, err)
	}
	if err := st.Err(); err != nil {
		// Nothing is sent on a context that is already done.
		return nil, fail("", err)
	}
	var rawQuery string
	if r.query != nil {
		v, ok := r.query.(url.Values) // a raw call's
		if !ok {
			var err error
			if v, err = query.Values(r.query); err != nil {
				return nil, fail("encoding query: ", err)
			}
		}
		rawQuery = v.Encode()
	}
	var body io.Reader // a nil *bytes.Reader in an interface would not be nil
	var stream *streamed
	switch {
	case r.stream != nil:
		sb, err := streamBody(r.stream)
		if err != nil {
			return nil, fail("reading body: ", err)
		}
		stream, body = sb, sb.first
	case r.body != nil || r.encoded.ok:
		b, err := r.encoded.b, r.encoded.err
		if !r.encoded.ok {
			b, err = encodeBody(r.body)
		}
		if err != nil {
			return nil, fail("encoding body: ", err)
		}
		// A *bytes.Reader: net/http knows its length and how to rewind
		// it (GetBody, for a call safe to repeat), and writes it with the
		// headers in one write (a reader it does not know costs a second
		// write, and 2 allocations).
		st.reqBody = b
		st.bodyr.Reset(b)
		body = &st.bodyr
	}
	// The request's context is its first attempt's, started by
	// attemptTransport (a request made with the call's would be copied
	// to give it the attempt's). Not with the deadline switched off, in a
	// benchmark build.
	var ctx context.Context = st
	if !off(offDeadline) {
		st.first = attemptCtx{Context: st, pending: true}
		ctx = &st.first
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, "", body)
	if err != nil {
		return nil, fail("", err)
	}
	// The URL is set from its parts, all known valid: the endpoint's
	// scheme and host, parsed once, and the path that expandPath escaped
	// or checkRawPath checked (net/http would parse the whole URL again
	// on every call).
	*hr.URL = url.URL{Scheme: ep.scheme, Host: ep.hostport, Path: st.path, RawQuery: rawQuery}
	if strings.IndexByte(st.path, '%') >= 0 {
		hr.URL.RawPath = st.path
		if hr.URL.Path, err = url.PathUnescape(st.path); err != nil {
			return nil, fail("", err)
		}
	}
	hr.Host = ep.hostport
	switch {
	case stream != nil:
		// The stream's own length and rewind (none for a stream that
		// cannot be rewound: net/http then sends it again by itself only
		// when it read nothing of it). prepareRetry rewinds it.
		hr.ContentLength, st.rewind = stream.length, stream.getBody
		if st.repeatable {
			hr.GetBody = stream.getBody
		}
	case body != nil && !st.repeatable:
		// A call not safe to repeat has no GetBody (nor has its stream,
		// above): net/http replays on a new connection a request it can
		// rewind when a reused one fails, if it deems it replayable, and
		// an Idempotency-Key header is enough for that, whoever set it
		// (an observer, the caller's transport). prepareRetry rewinds the
		// body from st.
		hr.GetBody = nil
	case body == nil && !st.repeatable:
		// Nor a nil body, which net/http deems replayable too.
		hr.Body = noReplayBody{}
	}
	// The header is a copy of the endpoint's, made once per client: a
	// copy of a small map costs no hashing. Its values are shared slices:
	// http.RoundTripper implementations must not modify the request, and
	// Header.Set and Add replace a slice rather than write into it.
	hr.Header = maps.Clone(ep.headers(c.userAgent, body != nil))
	if stream != nil {
		hr.Header["Content-Type"] = []string{r.contentType}
	}
	st.rreq = retryablehttp.Request{Request: hr}
	st.rreq.SetResponseHandler(c.onResponse)
	return &st.rreq, nil
}

// encodeBody encodes a request body, through its own encoder when it has
// one.
func encodeBody(v any) ([]byte, error) {
	if e, ok := v.(bodyEncoder); ok {
		return e.encodeBody()
	}
	return json.Marshal(v)
}

// finish turns the final response into r.out or an *APIError; refused
// reports an answer that refused the credential. The error matches
// ErrOutcomeUnknown when any attempt may have been applied (but after a
// 2xx, which matches ErrBadResponse), and keeps the context's error when
// the context ended the call.
func (c *Client) finish(ctx context.Context, r *request, st *callState, resp *http.Response) (refused bool, err error) {
	if resp.StatusCode == http.StatusNotFound && r.method == http.MethodDelete && st.attempts > 1 && st.reached {
		// An earlier attempt of this DELETE may have been applied: the
		// resource is gone, which is what the caller asked for.
		return false, nil
	}
	var v verdict
	if st.bodyErr == nil {
		v = r.api.read(resp.StatusCode, st.body)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299 && !v.failed
	if ok {
		if d, custom := r.out.(bodyDecoder); custom {
			err = d.decodeBody(st.body)
		} else if r.out != nil && st.bodyErr == nil {
			err = decodeJSON(st.body, r.out)
		}
		if st.bodyErr == nil && err == nil {
			return false, nil
		}
		if st.bodyErr == nil {
			st.bodyErr = err
		}
	}
	e := &APIError{
		Provider:   r.api.provider,
		Method:     r.method,
		Path:       st.path,
		StatusCode: resp.StatusCode,
		RequestID:  truncate(c.redactString(r.api, requestID(resp.Header)), 200),
		RetryAfter: st.retryAfter,
		Attempts:   st.attempts,
	}
	switch {
	case ok:
		// A decoding error may quote the body, and so what it echoes.
		e.Message = string(c.redact(r.api, []byte(st.bodyErr.Error())))
	case isRedirect(resp.StatusCode):
		// Its Location, and the body that repeats it, may carry a URL
		// with a secret in it: neither is kept.
		e.Message = "redirect not followed"
	default:
		// Redact before cutting: a secret straddling a cut goes whole
		// (readBody reads the longest secret's length past the cap).
		body := c.redact(r.api, st.body)
		e.Body = body[:min(len(body), maxErrorBody)]
		e.Problems = reasonsFromBody(body)
		for i, p := range e.Problems {
			e.Problems[i] = Problem{Field: truncate(c.redactString(r.api, p.Field), 200), Reason: truncate(c.redactString(r.api, p.Reason), 500)}
		}
		e.Message = withReasons(truncate(c.redactString(r.api, v.message), 500), e.Problems)
	}
	e.refused = v.refused
	e.unknown = st.reached && !r.credential
	e.credential = r.credential
	e.cause = ctx.Err()
	// A refusal proves that nothing was applied only when no attempt of
	// the run may have been: an answer that is itself ambiguous (a 5xx,
	// a 408, a redirect of a call that is not safe to repeat) or follows
	// one is never worth the repeat, whatever its body says. A 431 refuses
	// the headers, so the credential's too: a token the server cannot
	// take is dropped.
	refused = v.refused || resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge
	return refused && !st.reached, e
}

// redact hides every configured secret, and every token a credential of
// the client gave at run time (whichever endpoint's answer echoes it), in
// b.
func (c *Client) redact(_ *endpoint, b []byte) []byte {
	b = c.secrets.redact(b)
	for _, cr := range c.creds {
		b = cr.redact(b)
	}
	return b
}

// longestSecret is the length of the longest form of a secret or a
// run-time token: how far past a cut a body is read (see secrets.longest).
func (c *Client) longestSecret() int {
	n := c.secrets.longest()
	for _, cr := range c.creds {
		n = max(n, cr.longest())
	}
	return n
}

// redactString is redact for a string.
func (c *Client) redactString(ep *endpoint, s string) string {
	if r := c.redact(ep, []byte(s)); string(r) != s {
		return string(r)
	}
	return s
}

// isRedirect reports a 3xx status, which the pipeline never follows.
func isRedirect(code int) bool { return code >= 300 && code <= 399 }

// transportError wraps a failure that left no response to read. It
// matches ErrOutcomeUnknown when any attempt may have reached the server
// (a later dial failure or the context ending in the backoff does not
// undo that), and keeps the context's error when the context ended.
// Its text has every secret redacted, and the tokens of the endpoint's
// credential: a transport error may quote what a server sent (a malformed
// status line echoing the Authorization, say).
func (c *Client) transportError(ctx context.Context, r *request, st *callState, err error) error {
	text := err.Error()
	errs := []error{err}
	if safe := c.redactString(r.api, text); safe != text {
		// The cause's own text holds a secret: only the context errors
		// it matched stay in the chain.
		text, errs = safe, nil
		for _, s := range []error{context.Canceled, context.DeadlineExceeded} {
			if errors.Is(err, s) {
				errs = append(errs, s)
			}
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		text = ctxErr.Error() + " (" + text + ")"
		errs = append(errs, ctxErr)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "convo: %s %s %s: ", r.api.provider, r.method, st.path)
	switch {
	case st.attempts > 1:
		fmt.Fprintf(&b, "after %d attempts", st.attempts)
		if st.lastStatus != 0 {
			fmt.Fprintf(&b, " (last status %d)", st.lastStatus)
		}
		b.WriteString(": ")
	case st.lastStatus != 0:
		fmt.Fprintf(&b, "after status %d: ", st.lastStatus)
	}
	b.WriteString(text)
	if st.reached && !r.credential {
		b.WriteString(" (" + ErrOutcomeUnknown.Error() + ")")
		errs = append(errs, ErrOutcomeUnknown)
	}
	return &callError{msg: b.String(), errs: errs}
}

// expandPath gives prefix followed by tmpl, its {name} placeholders
// filled with the escaped params (one allocation for the whole path).
func expandPath(prefix, tmpl string, params []string) (string, error) {
	if len(params) == 0 && strings.IndexByte(tmpl, '{') < 0 {
		return prefix + tmpl, nil
	}
	full := tmpl
	var b strings.Builder
	b.Grow(len(prefix) + len(tmpl) + 16*len(params))
	b.WriteString(prefix)
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
		ps.segment(name, v)
		b.WriteString(url.PathEscape(v))
		tmpl = tmpl[end+1:]
	}
	if err := ps.err(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// headerJSON is one shared header value for every request (see newRequest).
var headerJSON = []string{"application/json"}

// client is the service's client. A service of a zero Client (or a nil
// service) has none: it gets noClient, so that its calls answer
// ErrNotConfigured and send nothing, rather than panic.
func (s *service) client() *Client {
	if s == nil {
		return noClient
	}
	return s.c.orNone()
}

// orNone is c, or noClient for a nil Client or one NewClient did not make
// (NewClient always sets the TalkJS endpoint).
func (c *Client) orNone() *Client {
	if c == nil || c.talkjs == nil {
		return noClient
	}
	return c
}

func (s *SessionsService) client() *Client      { return (*service)(s).client() }
func (s *UsersService) client() *Client         { return (*service)(s).client() }
func (s *ConversationsService) client() *Client { return (*service)(s).client() }
func (s *SelartiService) client() *Client       { return (*service)(s).client() }

// noClient is a client of no provider: the client of the services of a
// Client that NewClient did not make.
var noClient = &Client{talkjs: &endpoint{provider: ProviderTalkJS, err: notConfigured(ProviderTalkJS, "WithTalkJS")}}
