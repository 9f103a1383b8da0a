package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/convokit/convo/convotest"
)

// shutdownGrace is how long a stopping server waits for requests in flight.
const shutdownGrace = 5 * time.Second

// envBlock is one provider's part of what "convo fake" prints: a comment
// line naming it, then NAME=value lines a test in any language can read.
type envBlock struct {
	provider string
	vars     [][2]string
}

// fakeBlocks are the blocks printed for srv served at base. A provider
// added to convotest adds one block here.
func fakeBlocks(srv *convotest.Server, base string) []envBlock {
	conn := srv.Connections()[0]
	return []envBlock{
		{"talqui", [][2]string{
			{"TALQUI_URL", base},
			{"TALQUI_TENANT", srv.TenantID()},
			{"TALQUI_CONNECTION_ID", conn.ID},
			{"TALQUI_TOKEN", conn.Token},
		}},
		{"talkjs", [][2]string{
			{"TALKJS_URL", base},
			{"TALKJS_APP_ID", srv.AppID()},
			{"TALKJS_SECRET_KEY", srv.SecretKey()},
		}},
		{"selarti", [][2]string{
			{"SELARTI_URL", base + "/api/1.1"},
			{"SELARTI_API_KEY", srv.SelartiKey()},
			{"SELARTI_TASK_ID", srv.SelartiTaskID()},
		}},
	}
}

// printBlocks writes the blocks as NAME=value lines, or with export as
// "export NAME='value'" lines that a POSIX shell can source.
func printBlocks(w io.Writer, blocks []envBlock, export bool) {
	for _, b := range blocks {
		fmt.Fprintf(w, "# %s\n", b.provider)
		for _, kv := range b.vars {
			if export {
				fmt.Fprintf(w, "export %s=%s\n", kv[0], shellQuote(kv[1]))
			} else {
				fmt.Fprintf(w, "%s=%s\n", kv[0], kv[1])
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "# ready: stop with SIGINT or SIGTERM")
}

// shellQuote quotes v for a POSIX shell: as is when it holds only
// characters no shell reads specially, else in single quotes.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@+,=%") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

func runFake(c cmdIO, args []string) int {
	const name = "fake"
	fs := newFlagSet(name, "fake [-addr 127.0.0.1:0] [-env] [-selarti-webhook URL]\n\n"+
		"Serves the convotest fake of Talqui, TalkJS and Selarti on -addr and prints, as NAME=value\n"+
		"lines (with -env, as export lines a shell can source), the base URLs and credentials to use:\n"+
		"the variables convo.WithEnv and the other commands read. Then \"# ready\". Its first line\n"+
		"on stderr says what it serves and which host it calls: none, or with -selarti-webhook the\n"+
		"URL its Selarti AI posts each answer to (the \"All messages\" webhook). Stops on SIGINT or SIGTERM.\n\n"+
		"  convo fake -env > fake.env &   # then, after its \"# ready\" line: . ./fake.env")
	addr := fs.String("addr", "127.0.0.1:0", "`host:port` to listen on (port 0: any free port)")
	export := fs.Bool("env", false, "print export NAME='value' lines, to source in a shell")
	webhook := fs.String("selarti-webhook", "", "`URL` the fake's Selarti AI posts its answers to, as Selarti's \"All messages\" webhook\n(such as convo listen -selarti's)")
	if code := parseFlags(c, fs, args); code >= 0 {
		return code
	}
	if *webhook != "" {
		u, err := url.Parse(*webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.errorf(name, "-selarti-webhook must be an absolute http or https URL, got %q", *webhook)
			return exitUsage
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		c.errorf(name, "%v", err)
		return exitUsage
	}
	srv := convotest.NewServer(convotest.WithListener(ln))
	calls := "calls no host"
	if *webhook != "" {
		srv.SetSelartiWebhook(*webhook)
		calls = "calls " + *webhook + " (Selarti's \"All messages\" webhook)"
	}
	c.errorf(name, "serves Talqui, TalkJS and Selarti at %s; %s", srv.URL, calls)
	printBlocks(c.stdout, fakeBlocks(srv, srv.URL), *export)
	<-c.ctx.Done()
	srv.Close()
	return exitOK
}

// endpoint is one server of a command: a listener and its handler.
type endpoint struct {
	ln net.Listener
	h  http.Handler
}

// newHTTPServer is the server of a command's handler, with every timeout
// set: a handler's own read deadline (408 within its read timeout) is
// shorter than ReadTimeout, and an idle keep-alive is closed after
// IdleTimeout.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 10 * time.Second}
}

// serveUntilDone serves every endpoint until c.ctx ends or one of them
// fails, then shuts them all down, letting requests in flight finish for
// up to shutdownGrace.
func serveUntilDone(c cmdIO, name string, eps ...endpoint) int {
	done := make(chan error, len(eps))
	servers := make([]*http.Server, len(eps))
	for i, ep := range eps {
		hs := newHTTPServer(ep.h)
		servers[i] = hs
		go func() { done <- hs.Serve(ep.ln) }()
	}
	code, pending := exitOK, len(eps)
	select {
	case err := <-done:
		c.errorf(name, "%v", err)
		code, pending = exitAPI, pending-1
	case <-c.ctx.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			c.errorf(name, "shutdown: %v", err)
			code = exitAPI
		}
	}
	for range pending {
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.errorf(name, "%v", err)
			code = exitAPI
		}
	}
	return code
}
