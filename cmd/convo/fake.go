package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

func printBlocks(w io.Writer, blocks []envBlock) {
	for _, b := range blocks {
		fmt.Fprintf(w, "# %s\n", b.provider)
		for _, kv := range b.vars {
			fmt.Fprintf(w, "%s=%s\n", kv[0], kv[1])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "# ready: stop with SIGINT or SIGTERM")
}

func runFake(c cmdIO, args []string) int {
	const name = "fake"
	fs := newFlagSet(name, "fake [-addr 127.0.0.1:0]\n\n"+
		"Serves the convotest fake of Talqui, TalkJS and Selarti on -addr and prints, as NAME=value\n"+
		"lines, the base URLs and credentials to use (the same environment variables the\n"+
		"other commands read), then \"# ready\". Stops on SIGINT or SIGTERM.")
	addr := fs.String("addr", "127.0.0.1:0", "`host:port` to listen on (port 0: any free port)")
	if code := parseFlags(c, fs, args); code >= 0 {
		return code
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		c.errorf(name, "%v", err)
		return exitUsage
	}
	srv := convotest.NewServer(convotest.WithListener(ln))
	printBlocks(c.stdout, fakeBlocks(srv, srv.URL))
	<-c.ctx.Done()
	srv.Close()
	return exitOK
}

// endpoint is one server of a command: a listener and its handler.
type endpoint struct {
	ln net.Listener
	h  http.Handler
}

// serveUntilDone serves every endpoint until c.ctx ends or one of them
// fails, then shuts them all down, letting requests in flight finish for
// up to shutdownGrace.
func serveUntilDone(c cmdIO, name string, eps ...endpoint) int {
	done := make(chan error, len(eps))
	servers := make([]*http.Server, len(eps))
	for i, ep := range eps {
		hs := &http.Server{Handler: ep.h, ReadHeaderTimeout: 10 * time.Second}
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
