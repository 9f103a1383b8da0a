package convotest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answer is a response with its body read.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (a answer) JSON(t *testing.T) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(a.Body, &v), "body: %s", a.Body)
	return v
}

// Object decodes the body as a JSON object.
func (a answer) Object(t *testing.T) map[string]any {
	t.Helper()
	v, ok := a.JSON(t).(map[string]any)
	require.True(t, ok, "body is not an object: %s", a.Body)
	return v
}

// call sends a raw request. body may be nil, a []byte or string (sent as
// is) or anything else (sent as JSON). headers are pairs of name, value.
func call(t *testing.T, srv *convotest.Server, method, path string, body any, headers ...string) answer {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// talkjs sends an authenticated TalkJS request to /v1/{appId}+path with a
// JSON body (when body is not nil).
func talkjs(t *testing.T, srv *convotest.Server, method, path string, body any) answer {
	t.Helper()
	h := []string{"Authorization", "Bearer " + srv.SecretKey()}
	if body != nil {
		h = append(h, "Content-Type", "application/json")
	}
	return call(t, srv, method, "/v1/"+srv.AppID()+path, body, h...)
}

// talqui starts a session with the default connection's token.
func talqui(t *testing.T, srv *convotest.Server, body any) answer {
	t.Helper()
	return call(t, srv, "POST", "/tenants/"+srv.TenantID()+"/sessions", body,
		"Authorization", "PluginConnection "+srv.Connections()[0].Token,
		"Content-Type", "application/json")
}

func newServer(t *testing.T, opts ...convotest.ServerOption) *convotest.Server {
	t.Helper()
	srv := convotest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// sessionBody is a valid Talqui session start on WhatsApp Business.
func sessionBody() map[string]any {
	return map[string]any{
		"channel": "urn:talqui:whatsapp-internal:0", "pluginConnectionID": convotest.DefaultConnectionID,
		"contactFullName": "Maria", "contactExternalID": "5527999999999",
		"messageKey": "text", "messageValue": "Your order is ready",
	}
}

// putUser upserts a TalkJS user and requires 200 {}.
func putUser(t *testing.T, srv *convotest.Server, id string, body any) {
	t.Helper()
	a := talkjs(t, srv, "PUT", "/users/"+url.PathEscape(id), body)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.JSONEq(t, `{}`, string(a.Body))
}

// putConversation upserts a TalkJS conversation and requires 200.
func putConversation(t *testing.T, srv *convotest.Server, id string, body any) {
	t.Helper()
	a := talkjs(t, srv, "PUT", "/conversations/"+url.PathEscape(id), body)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
}

// ids reads the ids of a {"data": [...]} list.
func ids(t *testing.T, a answer) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var v struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(a.Body, &v))
	require.NotNil(t, v.Data, "data must be an array: %s", a.Body)
	out := make([]string, len(v.Data))
	for i, d := range v.Data {
		out[i] = d.ID
	}
	return out
}
