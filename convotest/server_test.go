package convotest_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClient(t *testing.T) {
	srv := newServer(t)
	c, err := srv.Client()
	require.NoError(t, err)
	require.NotNil(t, c)
	c, err = srv.Client(convo.WithRetry(convo.RetryPolicy{MaxRetries: 0}), convo.WithUserAgent("my-tests/1"))
	require.NoError(t, err, "caller options apply after the fake's")
	require.NotNil(t, c)

	custom := newServer(t, convotest.WithTenant("t-1"), convotest.WithTalkJSApp("app-x", "sk_x"),
		convotest.WithConnections(convo.PluginConnection{ID: "a", Token: "ta"}, convo.PluginConnection{ID: "b", Token: "tb"}))
	assert.Equal(t, "t-1", custom.TenantID())
	assert.Equal(t, "app-x", custom.AppID())
	assert.Equal(t, "sk_x", custom.SecretKey())
	assert.Len(t, custom.Connections(), 2)
	_, err = custom.Client()
	require.NoError(t, err)
}

func TestConcurrentSends(t *testing.T) {
	srv := newServer(t)
	putConversation(t, srv, "c1", map[string]any{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`[{"text":"m%d","type":"SystemMessage","idempotencyKey":"k%d"}]`, i, i%5)
			req, _ := http.NewRequest("POST", srv.URL+"/v1/"+srv.AppID()+"/conversations/c1/messages", bytes.NewReader([]byte(body)))
			req.Header.Set("Authorization", "Bearer "+srv.SecretKey())
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if assert.NoError(t, err) {
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				resp.Body.Close()
			}
			_ = srv.Requests()
			_ = srv.Stats()
		}()
	}
	wg.Wait()
	assert.Len(t, srv.Messages("c1"), 5, "one message per idempotency key")
	assert.Equal(t, convotest.Stats{TalkJSMessages: 5, TalkJSReplays: 15}, srv.Stats())
}

func TestWithListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newServer(t, convotest.WithListener(ln))
	assert.Equal(t, "http://"+ln.Addr().String(), srv.URL, "the fake serves on the given listener")
	c, err := srv.Client()
	require.NoError(t, err)
	require.NoError(t, c.Users.Upsert(context.Background(), "u1", convo.UserUpdate{Name: "Ana"}))
	assert.Equal(t, 1, srv.RequestCount(http.MethodPut, "/v1/"+srv.AppID()+"/users/u1"))
}
