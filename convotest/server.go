package convotest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
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

// Server is an in-memory fake of the Talqui, TalkJS and Selarti HTTP APIs,
// served over HTTP on 127.0.0.1. The APIs share its URL: Talqui under
// /tenants/..., TalkJS under /v1/..., Selarti under /api/1.1/wf/....
//
// All its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the fake, such as http://127.0.0.1:41234,
	// without a trailing slash. Give it to convo.WithTalquiURL and
	// convo.WithTalkJSURL (and SelartiURL to convo.WithSelartiURL), or use
	// Client.
	URL string

	hs       *httptest.Server
	listener net.Listener // WithListener's, or nil
	// hooks delivers the webhooks, on connections of its own, which Close
	// closes (not http.DefaultClient's, which are the program's).
	hooks   *http.Client
	closing chan struct{}
	once    sync.Once
	// ctx ends when the server closes: the AI and the webhook deliveries
	// run under it.
	ctx    context.Context
	cancel context.CancelFunc

	// Credentials, fixed once NewServer returns.
	tenantID string
	conns    []convo.PluginConnection
	appID    string
	secret   string
	// Selarti's API key and tasks, and its AI.
	selartiKey   string
	selartiTasks []string
	selartiAI    SelartiAI
	// selartiBadToken is the answer to a bad Selarti token.
	selartiBadToken selartiBadToken

	mu       sync.Mutex
	requests []RecordedRequest
	faults   []*Fault
	stats    Stats
	talqui   talquiState
	talkjs   talkjsState
	selarti  selartiState
	// selartiHook is the "All messages" webhook URL, "" when none.
	selartiHook string
	// replying counts the AI answers under way; repliesIdle is closed
	// when it falls back to 0 (nil while it is 0). closed stops new ones.
	replying    int
	repliesIdle chan struct{}
	closed      bool
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

// WithListener serves the fake on l instead of a new listener on a free
// 127.0.0.1 port: how `convo fake -addr` serves it on a port of your
// choice. The fake closes l when it closes.
func WithListener(l net.Listener) ServerOption {
	return func(s *Server) { s.listener = l }
}

// NewServer starts a fake on 127.0.0.1 (or on WithListener's listener).
// Close it when done, typically with t.Cleanup(srv.Close).
func NewServer(opts ...ServerOption) *Server {
	s := &Server{
		closing:  make(chan struct{}),
		tenantID: DefaultTenantID,
		conns:    []convo.PluginConnection{{ID: DefaultConnectionID, Token: DefaultConnectionToken}},
		appID:    DefaultAppID,
		secret:   DefaultSecretKey,

		selartiKey:   DefaultSelartiKey,
		selartiTasks: []string{DefaultSelartiTaskID},
		selartiAI:    DefaultSelartiAI,

		hooks: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	s.talqui.init()
	s.talkjs.init()
	s.selarti.init()
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if s.listener != nil {
		s.hs.Listener.Close()
		s.hs.Listener = s.listener
	}
	s.hs.Start()
	s.URL = s.hs.URL
	return s
}

// Close stops the server. A fault's Delay still running is cut short, and
// so are the Selarti AI answers and webhook deliveries under way (their
// context ends); Close waits for them to return.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.once.Do(func() { close(s.closing) })
	s.hs.Close()
	_ = s.WaitSelartiReplies(context.Background())
	s.hooks.CloseIdleConnections()
}

// Client returns a convo client wired to the fake: the three providers
// configured with the fake's credentials and URLs, and a fast retry policy
// (3 retries, waits between 1 ms and 10 ms). opts are applied after these,
// so they override them.
func (s *Server) Client(opts ...convo.Option) (*convo.Client, error) {
	base := []convo.Option{
		convo.WithTalqui(s.tenantID, s.conns...),
		convo.WithTalkJS(s.appID, s.secret),
		convo.WithTalquiURL(s.URL),
		convo.WithTalkJSURL(s.URL),
		convo.WithSelarti(s.selartiKey),
		convo.WithSelartiURL(s.SelartiURL()),
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
	// SelartiTokens is how many Selarti tokens were exchanged for the API
	// key.
	SelartiTokens int
	// SelartiMessages is how many users' messages Selarti received, that
	// is, how many times its AI was asked to answer.
	SelartiMessages int
	// SelartiReplies is how many answers (the AI's and operators') were
	// made.
	SelartiReplies int
	// SelartiWebhooks is how many "All messages" webhooks were posted.
	SelartiWebhooks int
	// SelartiTargets is how many targets were added to Selarti tasks.
	SelartiTargets int
	// TalkJSImported is how many of the TalkJS messages stored were
	// imported (POST /import/...): they count in TalkJSMessages too.
	TalkJSImported int
	// TalkJSNotifications is how many notification triggers TalkJS took
	// (POST .../notifications).
	TalkJSNotifications int
	// TalkJSFiles is how many files were uploaded to TalkJS (POST /files).
	TalkJSFiles int
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
// messages, idempotency keys, Selarti tokens, dialogs and targets), the
// recorded requests, the pending faults and the stats. The credentials,
// the URL, the Selarti AI and webhook URL stay; AI answers under way
// still complete.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.faults = nil
	s.stats = Stats{}
	s.talqui.init()
	s.talkjs.init()
	s.selarti.init()
}

// copyOne copies a stored item out for a caller; false when there is none.
func copyOne[T, Out any](item *T, clone func(*T) Out) (Out, bool) {
	if item == nil {
		var zero Out
		return zero, false
	}
	return clone(item), true
}

// copyAll copies stored items out for a caller, in order.
func copyAll[T, Out any](items []*T, clone func(*T) Out) []Out {
	out := make([]Out, len(items))
	for i, it := range items {
		out[i] = clone(it)
	}
	return out
}
