package convo

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// PluginConnection is a Talqui plugin connection: its id (sent as
// pluginConnectionID) and its token (sent as
// "Authorization: PluginConnection <token>"). It never shows the token:
// not in fmt with any verb, slog, nor encoding/json (which cannot
// round-trip it).
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
	return slog.GroupValue(slog.String("id", p.ID), slog.String("token", redacted))
}

// Format prints String for every verb (%d, %x and %q too), so that no verb
// prints the token.
func (p PluginConnection) Format(f fmt.State, verb rune) { formatSafe(f, verb, p.String()) }

// MarshalJSON hides the token from encoding/json, and so from slog's JSON
// handler wherever the connection is nested (say, in a slice, where slog
// does not call LogValue).
func (p PluginConnection) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ ID, Token string }{p.ID, redacted})
}

// RetryPolicy says how often and how long a call is retried; WithRetry
// sets it. Without WithRetry a client makes up to 4 retries, waiting from
// 500 ms to 30 s. A policy given to WithRetry is taken as given:
// MaxRetries 0 means one try. A zero MinWait or MaxWait takes the default
// (500 ms and 30 s). Which failures are retried at all is the package
// documentation's list of rules.
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
	selarti    *selartiSettings
	talquiURL  string
	talkjsURL  string
	selartiURL string
	talkjsVer  string
	tokenAuth  bool // WithTalkJSTokenAuth
	httpClient *http.Client
	timeout    time.Duration
	maxBody    int64
	retry      RetryPolicy
	logger     *slog.Logger
	observer   *Observer
	userAgent  string
	fromEnv    bool   // WithEnv was given
	region     string // WithDefaultCountry
	// given names the provider options given, valid or not, so that a
	// bad one is not also reported as missing.
	given struct{ talqui, talkjs, selarti bool }
}

// give records that an option configuring p was given, valid or not.
func (s *settings) give(p Provider) {
	switch p {
	case ProviderTalqui:
		s.given.talqui = true
	case ProviderTalkJS:
		s.given.talkjs = true
	case ProviderSelarti:
		s.given.selarti = true
	}
}

// talquiConfig is the Talqui configuration: the tenant and its plugin
// connections, each with the endpoint that sends its token.
type talquiConfig struct {
	tenantID string
	conns    []PluginConnection
	apis     []*endpoint // apis[i] sends conns[i].Token; built by NewClient
	region   string      // WithDefaultCountry: national phone numbers are read in it; "" for none
	secrets  secrets     // every credential of the client, never echoed in a problem
}

type talkjsConfig struct {
	appID  string
	secret string
}

// WithTalqui configures Talqui with the tenant id and its plugin
// connections. A session start names its connection by id; with exactly
// one connection it may leave the id empty. The ids and tokens must not
// be empty nor hold whitespace or control characters; a problem names the
// option and the field, never the value.
func WithTalqui(tenantID string, conns ...PluginConnection) Option {
	return func(s *settings) error {
		s.give(ProviderTalqui)
		var ps problems
		ps.credential("WithTalqui(tenantID)", tenantID)
		if len(conns) == 0 {
			ps.add("WithTalqui(conns)", "at least one plugin connection is required")
		}
		seen := make(map[string]int, len(conns))
		for i, c := range conns {
			f := "WithTalqui(conns[" + strconv.Itoa(i) + "]"
			ps.credential(f+".ID)", c.ID)
			if j, dup := seen[c.ID]; dup && c.ID != "" {
				ps.add(f+".ID)", "the same id as conns["+strconv.Itoa(j)+"]")
			} else {
				seen[c.ID] = i
			}
			ps.credential(f+".Token)", c.Token)
		}
		if err := ps.err(); err != nil {
			return err
		}
		s.talqui = &talquiConfig{tenantID: tenantID, conns: append([]PluginConnection(nil), conns...)}
		return nil
	}
}

// WithTalkJS configures TalkJS with the app id and a secret key, sent as
// "Authorization: Bearer <secretKey>". Neither may be empty nor hold
// whitespace or control characters; a problem names the option and the
// field, never the value.
func WithTalkJS(appID, secretKey string) Option {
	return func(s *settings) error {
		s.give(ProviderTalkJS)
		var ps problems
		ps.credential("WithTalkJS(appID)", appID)
		ps.credential("WithTalkJS(secretKey)", secretKey)
		if err := ps.err(); err != nil {
			return err
		}
		s.talkjs = &talkjsConfig{appID: appID, secret: secretKey}
		return nil
	}
}

// credential checks a credential or an id given to an option: not empty,
// and no whitespace or control character, which a header or a path would
// not carry intact. The problem never echoes the value.
func (ps *problems) credential(field, v string) {
	switch {
	case strings.TrimSpace(v) == "":
		ps.add(field, "must not be empty")
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		ps.add(field, "must not hold whitespace or control characters")
	}
}

// selartiSettings are Selarti's API key and workflow names.
type selartiSettings struct {
	apiKey    string
	workflows SelartiWorkflows
}

// WithSelarti configures Selarti with an API key (in Selarti's panel: your
// avatar, then "get api key"). The key is exchanged for a bearer token on
// the first call; see SelartiService.
func WithSelarti(apiKey string) Option {
	return func(s *settings) error {
		s.give(ProviderSelarti)
		var ps problems
		ps.credential("WithSelarti(apiKey)", apiKey)
		if err := ps.err(); err != nil {
			return err
		}
		s.selartiSettings().apiKey = apiKey
		return nil
	}
}

// WithDefaultCountry makes session starts read a phone number without '+'
// or "00" first as a national number of country, an ISO 3166-1 alpha-2
// code such as "BR" (in any case), and as an international one only when it
// is not a valid national number: with WithDefaultCountry("BR"),
// WhatsAppBusiness{Phone: "27 99999-9999"} is sent as 5527999999999, while
// "5527999999999", "+1 415 555 0100" and "0044 20 7946 0958" keep their
// own country. Without it a number without '+' or "00" is read as
// international only when it is valid as such, and refused otherwise.
// NormalizePhoneIn(phone, country) gives what is sent. A country
// libphonenumber does not know makes NewClient fail.
func WithDefaultCountry(country string) Option {
	return func(s *settings) (err error) {
		s.region, err = checkRegion("WithDefaultCountry(country)", country)
		return err
	}
}

// WithTalkJSTokenAuth makes every TalkJS call carry a short-lived
// app-scoped token instead of the secret key itself, which then never goes
// on the wire: a JWT signed HS256 with the secret key, with the claims
// tokenType "app", iss the app id, iat, and an exp 30 seconds ahead. As
// TalkJS recommends ("generate a new token for each REST API request"),
// every request gets a token minted for it: each call, and each retry of
// a call, never a token another request used (two minted in the same
// second have the same bytes: TalkJS's claims have no nonce). Minting
// costs about a microsecond and 3 allocations a request (bench/README.md);
// a client without this option pays nothing for it. It needs WithTalkJS.
func WithTalkJSTokenAuth() Option {
	return func(s *settings) error {
		s.tokenAuth = true
		return nil
	}
}

// WithSelartiURL sets the Selarti base URL (default
// https://selarti.com/api/1.1); the workflows are under /wf/. It must be
// absolute https, or http to a loopback host. The client adds
// /wf/{workflow}: a base URL holding a "wf" segment, or "/api/1.1" twice,
// is refused.
func WithSelartiURL(u string) Option {
	return func(s *settings) (err error) {
		s.selartiURL, err = checkBaseURL(ProviderSelarti, "selartiURL", u)
		return err
	}
}

// WithSelartiWorkflows overrides the names of Selarti's workflows and the
// keys of their bodies, which Selarti does not publish (see
// SelartiWorkflows). A zero field keeps its default (or the value of an
// earlier WithSelartiWorkflows). It configures nothing without WithSelarti.
func WithSelartiWorkflows(w SelartiWorkflows) Option {
	return func(s *settings) error {
		merged, err := s.selartiSettings().workflows.override(w)
		if err != nil {
			return err
		}
		s.selartiSettings().workflows = merged
		return nil
	}
}

// selartiSettings gives the Selarti settings, made with the default
// workflows on first use. NewClient configures Selarti only when an API
// key was given.
func (s *settings) selartiSettings() *selartiSettings {
	if s.selarti == nil {
		s.selarti = &selartiSettings{workflows: DefaultSelartiWorkflows}
	}
	return s.selarti
}

// WithTalquiURL sets the Talqui base URL (default https://api.talqui.chat).
// It must be absolute https, or http to a loopback host. The client adds
// /tenants/{tenantID}/…: a base URL holding a "tenants" segment is refused.
func WithTalquiURL(u string) Option {
	return func(s *settings) (err error) {
		s.talquiURL, err = checkBaseURL(ProviderTalqui, "talquiURL", u)
		return err
	}
}

// WithTalkJSURL sets the TalkJS base URL (default https://api.talkjs.com).
// It must be absolute https, or http to a loopback host. The client adds
// /v1/{appId}: a base URL holding a "v1" segment is refused, since the
// calls would go to /v1/{appId}/v1/{appId}/….
func WithTalkJSURL(u string) Option {
	return func(s *settings) (err error) {
		s.talkjsURL, err = checkBaseURL(ProviderTalkJS, "talkjsURL", u)
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
// timeouts apply. The client sends through a copy of hc that never follows
// a redirect; hc itself is not changed. The client never closes hc's idle
// connections. Without it, the client has a transport of its own, with the
// proxy from the environment and up to 64 idle connections per host (the
// standard transport keeps 2). A nil hc makes NewClient fail.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return &ValidationError{Problems: []Problem{{Field: "httpClient", Reason: "must not be nil"}}}
		}
		s.httpClient = hc
		return nil
	}
}

// WithTimeout bounds one attempt of a call as a whole: connecting, sending,
// waiting for the response headers and reading the body. The default is
// DefaultTimeout (30 s); zero or less is refused. A body that trickles in
// past it ends the attempt like any failure after sending (see the retry
// rules). A call may take several attempts and the waits between them:
// bound the whole call with its context. With WithHTTPClient, a shorter
// http.Client.Timeout of the caller's client wins.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return &ValidationError{Problems: []Problem{{Field: "WithTimeout(d)", Reason: "must be more than zero"}}}
		}
		s.timeout = d
		return nil
	}
}

// WithMaxResponseBytes sets the largest success body a call reads,
// DefaultMaxResponseBytes (16 MiB) by default; zero or less is refused. A
// larger body fails the call with an *APIError matching ErrBadResponse
// (retry rule 1), after holding at most about n bytes; a body within it
// costs about twice its size at most (once when its Content-Length is
// given). Error bodies are kept up to 64 KiB whatever n is.
func WithMaxResponseBytes(n int64) Option {
	return func(s *settings) error {
		if n <= 0 {
			return &ValidationError{Problems: []Problem{{Field: "WithMaxResponseBytes(n)", Reason: "must be more than zero"}}}
		}
		s.maxBody = n
		return nil
	}
}

// WithRetry sets the retry policy (default: 4 retries, waits from 500 ms
// to 30 s). See RetryPolicy for the zero values. Negative values, or a
// MinWait above MaxWait, make NewClient fail.
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

// WithLogger makes the client log each attempt (debug), each retry (info)
// and the end of each call (debug: "convo: call done" with the provider,
// operation, method, path template, status, attempts, duration, request id
// and outcome) to l. No log line holds a token, a secret or a header.
// Without it (or with nil) the client logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) error {
		s.logger = l
		return nil
	}
}

// WithObserver makes the client report every call and every attempt to o
// (see Observer). A later WithObserver replaces an earlier one. A client
// without one pays nothing for it.
func WithObserver(o Observer) Option {
	return func(s *settings) error {
		s.observer = &o
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

// checkBaseURL checks raw as p's base URL, with problems naming field
// (the option's, or WithEnv's variable).
func checkBaseURL(p Provider, field, raw string) (string, error) {
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
	if reason := doubledPrefix(p, u.Path); reason != "" {
		return bad(reason)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// doubledPrefix refuses a base URL's path that holds a part of the paths
// the client adds itself, which every call would then send twice: TalkJS's
// /v1/{appId}, Talqui's /tenants/{tenantID}, Selarti's /wf/{workflow} (and
// its /api/1.1 given twice). It gives the reason, or "".
func doubledPrefix(p Provider, path string) string {
	has := func(seg string) bool { return slices.Contains(strings.Split(path, "/"), seg) }
	switch p {
	case ProviderTalkJS:
		if has("v1") {
			return "must not hold /v1/{appId}, which the client adds from WithTalkJS: give the host, such as " + DefaultTalkJSURL
		}
	case ProviderTalqui:
		if has("tenants") {
			return "must not hold /tenants/{tenantID}, which the client adds from WithTalqui: give the host, such as " + DefaultTalquiURL
		}
	case ProviderSelarti:
		if has("wf") {
			return "must not hold /wf/, which the client adds before each workflow: give the API's root, such as " + DefaultSelartiURL
		}
		if strings.Count(path, "/api/1.1") > 1 {
			return "holds /api/1.1 twice: give the API's root once, such as " + DefaultSelartiURL
		}
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// newSettings applies opts over the defaults and checks the rules that
// span options; every problem comes back at once.
func newSettings(opts []Option) (*settings, error) {
	s := &settings{
		talquiURL:  DefaultTalquiURL,
		talkjsURL:  DefaultTalkJSURL,
		selartiURL: DefaultSelartiURL,
		talkjsVer:  DefaultTalkJSVersion,
		timeout:    DefaultTimeout,
		maxBody:    DefaultMaxResponseBytes,
		retry:      RetryPolicy{MaxRetries: defaultMaxRetries, MinWait: defaultMinWait, MaxWait: defaultMaxWait},
	}
	var ps problems
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := ps.merge(o(s)); err != nil {
			return nil, err
		}
	}
	// A provider option that was given but refused (WithEnv's partial
	// credentials included) has its own problem: saying "configure at
	// least one" too would only mislead.
	if !s.given.talqui && !s.given.talkjs && !s.given.selarti {
		reason := "configure at least one provider: WithTalqui, WithTalkJS or WithSelarti"
		if s.fromEnv {
			reason += envHint
		}
		ps.add("opts", reason)
	}
	if s.tokenAuth && !s.given.talkjs {
		ps.add("tokenAuth", "WithTalkJSTokenAuth needs WithTalkJS")
	}
	return s, ps.err()
}
