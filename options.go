package convo

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
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
	selarti    *selartiSettings
	talquiURL  string
	talkjsURL  string
	selartiURL string
	talkjsVer  string
	tokenAuth  bool // WithTalkJSTokenAuth
	httpClient *http.Client
	retry      RetryPolicy
	logger     *slog.Logger
	userAgent  string
}

// talquiConfig is the Talqui configuration: the tenant and its plugin
// connections, each with the endpoint that sends its token.
type talquiConfig struct {
	tenantID string
	conns    []PluginConnection
	apis     []*endpoint // apis[i] sends conns[i].Token; built by NewClient
	secrets  secrets     // every credential of the client, never echoed in a problem
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
		s.talqui = &talquiConfig{tenantID: tenantID, conns: append([]PluginConnection(nil), conns...)}
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
		if blank(apiKey) {
			return &ValidationError{Problems: []Problem{{Field: "apiKey", Reason: "must not be empty"}}}
		}
		s.selartiSettings().apiKey = apiKey
		return nil
	}
}

// WithTalkJSTokenAuth makes every TalkJS call carry a short-lived
// app-scoped token, as TalkJS recommends, instead of the secret key
// itself, which then never goes on the wire: a JWT signed HS256 with the
// secret key, with the claims tokenType "app", iss the app id, iat, and an
// exp 30 seconds ahead. One token serves every call until 5 seconds before
// it expires; the next call (or retry) mints a new one. It needs
// WithTalkJS.
func WithTalkJSTokenAuth() Option {
	return func(s *settings) error {
		s.tokenAuth = true
		return nil
	}
}

// WithSelartiURL sets the Selarti base URL (default
// https://selarti.com/api/1.1); the workflows are under /wf/. It must be
// absolute https, or http to a loopback host.
func WithSelartiURL(u string) Option {
	return func(s *settings) (err error) {
		s.selartiURL, err = checkBaseURL("selartiURL", u)
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
