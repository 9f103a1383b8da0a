package convotest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecording(t *testing.T) {
	srv := newServer(t)
	before := time.Now()
	a := talqui(t, srv, sessionBody())
	require.Equal(t, http.StatusCreated, a.Status)
	talkjs(t, srv, "GET", "/users?limit=5&startingAfter=x", nil)
	talkjs(t, srv, "GET", "/users/a%2Fb", nil)

	reqs := srv.Requests()
	require.Len(t, reqs, 3)
	r := reqs[0]
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "/tenants/"+convotest.DefaultTenantID+"/sessions", r.Path)
	assert.Equal(t, "PluginConnection "+convotest.DefaultConnectionToken, r.Header.Get("Authorization"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"channel":"urn:talqui:whatsapp-internal:0","pluginConnectionID":"pc-convotest",
		"contactFullName":"Maria","contactExternalID":"5527999999999","messageKey":"text","messageValue":"Your order is ready"}`, string(r.Body))
	assert.False(t, r.Time.Before(before))
	assert.Equal(t, http.StatusCreated, r.Status)

	assert.Equal(t, "5", reqs[1].Query.Get("limit"))
	assert.Equal(t, "x", reqs[1].Query.Get("startingAfter"))
	assert.Equal(t, http.StatusBadRequest, reqs[1].Status)
	assert.Equal(t, "/v1/"+convotest.DefaultAppID+"/users/a%2Fb", reqs[2].Path)

	// Requests returns copies.
	reqs[0].Body[0] = 'X'
	reqs[0].Header.Set("Authorization", "changed")
	assert.Equal(t, byte('{'), srv.Requests()[0].Body[0])
	assert.Equal(t, "PluginConnection "+convotest.DefaultConnectionToken, srv.Requests()[0].Header.Get("Authorization"))

	assert.Equal(t, 1, srv.RequestCount("POST", "/tenants/"+convotest.DefaultTenantID+"/sessions"))
	assert.Equal(t, 2, srv.RequestCount("GET", "/v1/*"))
	assert.Equal(t, 3, srv.RequestCount("", "*"))
	assert.Equal(t, 0, srv.RequestCount("PUT", "/v1/*"))
	assert.Equal(t, 1, srv.RequestCount("get", "/v1/"+convotest.DefaultAppID+"/users"), "exact path, query apart")

	srv.ClearRequests()
	assert.Empty(t, srv.Requests())
	assert.Len(t, srv.Sessions(), 1, "ClearRequests keeps the state")

	srv.Inject(convotest.Fault{Status: 500})
	srv.Reset()
	assert.Empty(t, srv.Sessions())
	assert.Empty(t, srv.Contacts())
	assert.Zero(t, srv.PendingFaults())
	assert.Equal(t, convotest.Stats{}, srv.Stats())
	assert.Equal(t, http.StatusCreated, talqui(t, srv, sessionBody()).Status, "credentials survive Reset")
}
