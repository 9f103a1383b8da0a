package convotest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawPost sends a Talqui session start on a connection of its own and
// returns the transport error, if any.
func rawPost(t *testing.T, srv *convotest.Server, ctx context.Context) (*http.Response, error) {
	t.Helper()
	return rawDo(newRawPost(t, srv, ctx))
}

// newRawPost is rawPost's request.
func newRawPost(t *testing.T, srv *convotest.Server, ctx context.Context) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/tenants/"+srv.TenantID()+"/sessions",
		bytes.NewReader([]byte(`{"channel":"urn:talqui:whatsapp-internal:0","pluginConnectionID":"pc-convotest",`+
			`"contactExternalID":"5527999999999","messageKey":"text","messageValue":"hi"}`)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "PluginConnection "+convotest.DefaultConnectionToken)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// rawDo sends req on a connection of its own, reads the answer's body and
// returns the transport error, if any. It may run on any goroutine.
func rawDo(req *http.Request) (*http.Response, error) {
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestFaultStatusThenNormal(t *testing.T) {
	srv := newServer(t)
	putConversation(t, srv, "c1", map[string]any{})
	srv.Inject(convotest.Fault{Method: "POST", Path: "/v1/" + srv.AppID() + "/conversations/*", Times: 2,
		Status: http.StatusTooManyRequests, RetryAfter: "1"})
	assert.Equal(t, 2, srv.PendingFaults())

	msg := []any{map[string]any{"text": "hi", "type": "SystemMessage"}}
	for range 2 {
		a := talkjs(t, srv, "POST", "/conversations/c1/messages", msg)
		assert.Equal(t, http.StatusTooManyRequests, a.Status)
		assert.Equal(t, "1", a.Header.Get("Retry-After"))
		assert.Equal(t, "Too Many Requests", a.Object(t)["message"])
	}
	assert.Empty(t, srv.Messages("c1"), "failed before acting: nothing stored")
	assert.Equal(t, http.StatusOK, talkjs(t, srv, "GET", "/conversations/c1", nil).Status, "another path: no fault")
	assert.Equal(t, http.StatusOK, talkjs(t, srv, "POST", "/conversations/c1/messages", msg).Status, "then normal")
	assert.Len(t, srv.Messages("c1"), 1)
	assert.Zero(t, srv.PendingFaults())
	assert.Equal(t, 2, srv.Stats().FaultsApplied)

	reqs := srv.Requests()
	var statuses []int
	for _, r := range reqs[1:] {
		statuses = append(statuses, r.Status)
	}
	assert.Equal(t, []int{429, 429, 200, 200}, statuses)
	require.NotNil(t, reqs[1].Fault)
	assert.Equal(t, http.StatusTooManyRequests, reqs[1].Fault.Status)
	assert.Nil(t, reqs[4].Fault)
}

func TestFaultsInOrderWithBodyAndMethod(t *testing.T) {
	srv := newServer(t)
	srv.Inject(
		convotest.Fault{Method: "GET", Path: "/v1/*", Status: 503, Body: `{"message":"maintenance"}`},
		convotest.Fault{Path: "/v1/*", Status: 500},
	)
	a := talkjs(t, srv, "PUT", "/users/alice", map[string]any{"name": "Alice"})
	assert.Equal(t, 500, a.Status, "the PUT skips the GET-only fault and takes the next")
	a = talkjs(t, srv, "GET", "/users/alice", nil)
	assert.Equal(t, 503, a.Status)
	assert.JSONEq(t, `{"message":"maintenance"}`, string(a.Body))
	assert.Equal(t, 404, talkjs(t, srv, "GET", "/users/alice", nil).Status, "the faulted PUT stored nothing")

	srv.Inject(convotest.Fault{Status: 500, Times: 5})
	srv.ClearFaults()
	assert.Zero(t, srv.PendingFaults())
	assert.Equal(t, 404, talkjs(t, srv, "GET", "/users/alice", nil).Status)
}

func TestFaultActThenFail(t *testing.T) {
	srv := newServer(t)
	putConversation(t, srv, "c1", map[string]any{})
	srv.Inject(convotest.Fault{Method: "POST", Status: http.StatusInternalServerError, AfterApply: true})
	a := talkjs(t, srv, "POST", "/conversations/c1/messages", []any{map[string]any{"text": "hi", "type": "SystemMessage", "idempotencyKey": "k"}})
	assert.Equal(t, http.StatusInternalServerError, a.Status)
	require.Len(t, srv.Messages("c1"), 1, "the server acted before failing")

	a = talkjs(t, srv, "POST", "/conversations/c1/messages", []any{map[string]any{"text": "hi", "type": "SystemMessage", "idempotencyKey": "k"}})
	require.Equal(t, http.StatusOK, a.Status)
	assert.Contains(t, string(a.Body), srv.Messages("c1")[0].ID, "a retry with the key answers the stored id")
	assert.Len(t, srv.Messages("c1"), 1)
	assert.Equal(t, 1, srv.Stats().TalkJSMessages)
}

func TestFaultDropBeforeActing(t *testing.T) {
	srv := newServer(t)
	srv.Inject(convotest.Fault{Path: "/tenants/*", Drop: true})
	_, err := rawPost(t, srv, context.Background())
	require.Error(t, err, "the client sees a dropped connection")
	assert.Empty(t, srv.Sessions(), "nothing done")
	assert.Zero(t, srv.Stats().TalquiSessions)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Zero(t, reqs[0].Status)

	resp, err := rawPost(t, srv, context.Background())
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Len(t, srv.Sessions(), 1)
}

func TestFaultActThenDrop(t *testing.T) {
	srv := newServer(t)
	srv.Inject(convotest.Fault{Path: "/tenants/*", Drop: true, AfterApply: true})
	_, err := rawPost(t, srv, context.Background())
	require.Error(t, err, "the client sees a dropped connection")
	assert.Len(t, srv.Sessions(), 1, "but the session was opened")
	assert.Equal(t, 1, srv.Stats().TalquiSessions)
	assert.Zero(t, srv.Requests()[0].Status)
}

func TestFaultDelay(t *testing.T) {
	srv := newServer(t)
	srv.Inject(convotest.Fault{Delay: 80 * time.Millisecond})
	start := time.Now()
	resp, err := rawPost(t, srv, context.Background())
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode, "a delay alone: handled normally")
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)

	// The client gives up during the delay; the server still acts. The
	// client's deadline passes once the server has recorded the request
	// (its delay has begun), not after a fixed time that a slow machine
	// can spend before the request even arrives.
	srv.Inject(convotest.Fault{Delay: time.Second})
	ctx := newExpiring()
	errc := make(chan error, 1)
	go func() { _, err := rawDo(newRawPost(t, srv, ctx)); errc <- err }()
	require.Eventually(t, func() bool { return len(srv.Requests()) == 2 }, 10*time.Second, time.Millisecond)
	ctx.expire()
	require.ErrorIs(t, <-errc, context.DeadlineExceeded)
	assert.Equal(t, 1, srv.Stats().TalquiSessions, "given up during the delay, before the server acted")
	require.Eventually(t, func() bool { return srv.Stats().TalquiSessions == 2 }, 10*time.Second, 5*time.Millisecond)

	// A delay then a status: nothing done.
	srv.Inject(convotest.Fault{Delay: 10 * time.Millisecond, Status: 502})
	resp, err = rawPost(t, srv, context.Background())
	require.NoError(t, err)
	assert.Equal(t, 502, resp.StatusCode)
	assert.Equal(t, 2, srv.Stats().TalquiSessions)
}

func TestCloseCutsDelayShort(t *testing.T) {
	srv := convotest.NewServer()
	srv.Inject(convotest.Fault{Delay: time.Minute, Status: 500})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = rawPost(t, srv, context.Background())
	}()
	require.Eventually(t, func() bool { return len(srv.Requests()) == 1 }, 10*time.Second, time.Millisecond)
	start := time.Now()
	srv.Close()
	<-done
	assert.Less(t, time.Since(start), 10*time.Second)
}

// expiring is a context whose deadline passes when expire is called: a
// client timeout that runs out at a chosen point of the exchange.
type expiring struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiring() *expiring {
	return &expiring{Context: context.Background(), done: make(chan struct{})}
}

func (c *expiring) Done() <-chan struct{} { return c.done }

func (c *expiring) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *expiring) expire() { c.once.Do(func() { close(c.done) }) }
