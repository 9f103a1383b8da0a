package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/convokit/convo"
)

// forwardTimeout bounds one forward of a delivery.
const forwardTimeout = 10 * time.Second

// readTimeout bounds the wait for a delivery's body: the handlers answer
// 408 past it (the SDK's default).
const readTimeout = 10 * time.Second

// forwardedHeaders are the delivery headers passed on with -forward: the
// ones a receiver needs to check the body as the provider sent it.
var forwardedHeaders = []string{"Content-Type", "X-Talkjs-Signature", "X-Talkjs-Timestamp"}

// delivery is one accepted webhook, printed as one JSON line.
type delivery struct {
	Provider string          `json:"provider"`
	Received time.Time       `json:"received"`
	ID       string          `json:"id,omitempty"`
	Type     string          `json:"type,omitempty"`
	Author   string          `json:"author,omitempty"` // Selarti's message_type
	Event    json.RawMessage `json:"event"`            // the body as received
}

// listener prints deliveries and forwards them.
type listener struct {
	c           cmdIO
	mu          sync.Mutex // one line at a time on stdout
	forward     string
	shown       string // forward as printed: its password, if any, redacted
	hc          *http.Client
	readTimeout time.Duration // the handlers' WithReadTimeout
}

func runListen(c cmdIO, args []string) int {
	const name = "listen"
	fs := newFlagSet(name, "listen -selarti ADDR -talkjs ADDR [-forward URL]\n\n"+
		"Serves the Selarti and TalkJS webhook handlers (any path) and prints each accepted\n"+
		"delivery as one JSON line. TalkJS signatures are checked with TALKJS_SECRET_KEY.\n"+
		"Refused deliveries are reported on stderr. As the SDK's handlers do by default, Selarti\n"+
		"user messages and other wh_types are answered 200 and not printed, and a redelivered\n"+
		"id is not printed twice. A failed -forward answers 500, so the provider delivers again.\n"+
		"Stops on SIGINT or SIGTERM.")
	selartiAddr := fs.String("selarti", "", "`host:port` for Selarti webhooks")
	talkjsAddr := fs.String("talkjs", "", "`host:port` for TalkJS webhooks (needs TALKJS_SECRET_KEY)")
	forward := fs.String("forward", "", "`URL` to POST each accepted body to, with its signature headers")
	if code := parseFlags(c, fs, args); code >= 0 {
		return code
	}
	l, secret, err := newListener(c, *selartiAddr, *talkjsAddr, *forward)
	if err != nil {
		c.errorf(name, "%v", err)
		return exitUsage
	}
	if *forward != "" {
		c.errorf(name, "calls %s (-forward)", l.shown)
	} else {
		c.errorf(name, "calls no host")
	}
	var eps []endpoint
	for _, p := range []struct{ provider, addr string }{{"selarti", *selartiAddr}, {"talkjs", *talkjsAddr}} {
		if p.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			closeAll(eps)
			c.errorf(name, "%v", err)
			return exitUsage
		}
		eps = append(eps, endpoint{ln, l.handler(p.provider, secret)})
		c.errorf(name, "%s webhooks: http://%s/", p.provider, ln.Addr())
	}
	return serveUntilDone(c, name, eps...)
}

// newListener checks the flags and the environment.
func newListener(c cmdIO, selartiAddr, talkjsAddr, forward string) (*listener, string, error) {
	if selartiAddr == "" && talkjsAddr == "" {
		return nil, "", fmt.Errorf("give -selarti ADDR, -talkjs ADDR or both")
	}
	secret := c.env("TALKJS_SECRET_KEY")
	if talkjsAddr != "" && secret == "" {
		return nil, "", fmt.Errorf("-talkjs needs TALKJS_SECRET_KEY in the environment to check signatures")
	}
	var shown string
	if forward != "" {
		u, err := url.Parse(forward)
		if err != nil {
			// Not quoted: it may hold a password.
			return nil, "", fmt.Errorf("-forward must be an absolute http or https URL: %s", "it does not parse")
		}
		// A password in the URL (sent as basic auth) is never printed.
		shown = u.Redacted()
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "", fmt.Errorf("-forward must be an absolute http or https URL, got %q", shown)
		}
	}
	return &listener{c: c, forward: forward, shown: shown, hc: &http.Client{Timeout: forwardTimeout, CheckRedirect: noRedirect},
		readTimeout: readTimeout}, secret, nil
}

// noRedirect keeps a forward from being re-posted elsewhere: a 3xx is a
// failed forward.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func closeAll(eps []endpoint) {
	for _, ep := range eps {
		ep.ln.Close()
	}
}

// handler is the SDK's handler for provider, wrapped to report refusals
// and to keep the request headers for -forward.
func (l *listener) handler(provider, secret string) http.Handler {
	// The handlers' own log lines would say again what the command reports
	// (each refusal, each failed forward) on stderr: they are discarded.
	quiet := convo.WithHandlerLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var h http.Handler
	if provider == "talkjs" {
		h = convo.NewTalkJSHandler(secret, func(ctx context.Context, ev *convo.TalkJSEvent) error {
			return l.accept(ctx, delivery{Provider: provider, ID: ev.ID, Type: string(ev.Type), Event: ev.Raw})
		}, quiet, convo.WithReadTimeout(l.readTimeout))
	} else {
		h = convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
			return l.accept(ctx, delivery{Provider: provider, ID: ev.MessageID, Type: string(ev.Type),
				Author: string(ev.MessageType), Event: ev.Raw})
		}, quiet, convo.WithReadTimeout(l.readTimeout))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), headersKey{}, r.Header)))
		if rec.status != http.StatusOK {
			l.c.errorf("listen", "%s delivery refused: %d %s", provider, rec.status, strings.TrimSpace(rec.body.String()))
		}
	})
}

// accept prints d as one JSON line, then forwards it. A failed forward is
// an error, so the handler answers 500 and the provider delivers again.
func (l *listener) accept(ctx context.Context, d delivery) error {
	d.Received = time.Now().UTC()
	line, err := json.Marshal(d)
	if err != nil {
		return err
	}
	// The event is the body as received, whose strings may hold bytes
	// that are not UTF-8: a JSON line holds none.
	line = bytes.ToValidUTF8(line, []byte("\uFFFD"))
	l.mu.Lock()
	fmt.Fprintf(l.c.stdout, "%s\n", line)
	l.mu.Unlock()
	if l.forward == "" {
		return nil
	}
	if err := l.forwardBody(ctx, d.Provider, d.Event); err != nil {
		l.c.errorf("listen", "forward of %s delivery %q failed: %v", d.Provider, d.ID, err)
		return err
	}
	return nil
}

type headersKey struct{}

// forwardBody posts body to -forward with the delivery's signature headers
// and X-Convo-Provider.
func (l *listener) forwardBody(ctx context.Context, provider string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.forward, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if in, ok := ctx.Value(headersKey{}).(http.Header); ok {
		for _, k := range forwardedHeaders {
			if v := in.Values(k); len(v) > 0 {
				req.Header[k] = v
			}
		}
	}
	req.Header.Set("X-Convo-Provider", provider)
	resp, err := l.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", l.shown, resp.Status)
	}
	return nil
}

// statusRecorder keeps the status and the start of the body of an answer.
type statusRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

// Unwrap gives the server's ResponseWriter to http.ResponseController, so
// that the handler's read deadline (408 within its read timeout) works.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.body.Len() < 512 {
		r.body.Write(p[:min(len(p), 512-r.body.Len())])
	}
	return r.ResponseWriter.Write(p)
}
