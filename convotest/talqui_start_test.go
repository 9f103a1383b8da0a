package convotest_test

import (
	"net/http"
	"testing"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func officialBody() map[string]any {
	return map[string]any{
		"channel":            "urn:talqui:whatsapp-cloud:0",
		"pluginConnectionID": convotest.DefaultConnectionID,
		"contactFullName":    "Maria",
		"contactExternalID":  "5527999999999",
		"campaignModelID":    "order_update",
		"campaignVariables":  []string{"Maria", "#391"},
		"messageKey":         "text",
		"messageValue":       "Order update notification",
		"sessionKind":        "marketing",
	}
}

func TestTalquiAuth(t *testing.T) {
	srv := newServer(t, convotest.WithConnections(
		convo.PluginConnection{ID: "pc-wa", Token: "token-wa"},
		convo.PluginConnection{ID: "pc-ifood", Token: "token-ifood"},
	))
	body := officialBody()
	body["pluginConnectionID"] = "pc-wa"
	path := "/tenants/" + srv.TenantID() + "/sessions"
	ct := []string{"Content-Type", "application/json"}

	cases := []struct {
		name   string
		path   string
		auth   string
		status int
	}{
		{"no header", path, "", http.StatusUnauthorized},
		{"wrong scheme", path, "Bearer token-wa", http.StatusUnauthorized},
		{"scheme only", path, "PluginConnection ", http.StatusUnauthorized},
		{"unknown token", path, "PluginConnection nope", http.StatusUnauthorized},
		{"token of another connection", path, "PluginConnection token-ifood", http.StatusUnauthorized},
		{"unknown tenant", "/tenants/other-tenant/sessions", "PluginConnection token-wa", http.StatusNotFound},
		{"right token", path, "PluginConnection token-wa", http.StatusCreated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := ct
			if tc.auth != "" {
				h = append([]string{"Authorization", tc.auth}, ct...)
			}
			a := call(t, srv, "POST", tc.path, body, h...)
			assert.Equal(t, tc.status, a.Status, "%s", a.Body)
			if tc.status != http.StatusCreated {
				assert.NotEmpty(t, a.Object(t)["message"])
			}
		})
	}
	assert.Len(t, srv.Sessions(), 1, "only the authorized start opened a session")
}

func TestTalquiContentTypeAndBody(t *testing.T) {
	srv := newServer(t)
	path := "/tenants/" + srv.TenantID() + "/sessions"
	auth := "PluginConnection " + convotest.DefaultConnectionToken

	a := call(t, srv, "POST", path, officialBody(), "Authorization", auth)
	assert.Equal(t, http.StatusUnsupportedMediaType, a.Status)
	a = call(t, srv, "POST", path, officialBody(), "Authorization", auth, "Content-Type", "text/plain")
	assert.Equal(t, http.StatusUnsupportedMediaType, a.Status)
	a = call(t, srv, "POST", path, officialBody(), "Authorization", auth, "Content-Type", "application/json; charset=utf-8")
	assert.Equal(t, http.StatusCreated, a.Status)

	for _, body := range []string{`[]`, `"x"`, `{"channel":`, ``} {
		a = talqui(t, srv, body)
		assert.Equal(t, http.StatusBadRequest, a.Status, "body %q", body)
	}
	a = call(t, srv, "GET", path, nil, "Authorization", auth)
	assert.Equal(t, http.StatusMethodNotAllowed, a.Status)
	assert.Equal(t, "POST", a.Header.Get("Allow"))
	a = call(t, srv, "POST", "/tenants/"+srv.TenantID()+"/contacts", officialBody(), "Authorization", auth)
	assert.Equal(t, http.StatusNotFound, a.Status)
}

func TestTalquiChannelRules(t *testing.T) {
	cases := []struct {
		name    string
		change  map[string]any // nil value deletes the key
		message string         // a part of the 400's message
	}{
		{"no channel", map[string]any{"channel": nil}, "channel is required"},
		{"channel not a URN", map[string]any{"channel": "whatsapp"}, "Talqui URN"},
		{"channel of another namespace", map[string]any{"channel": "urn:other:whatsapp-cloud:0"}, "Talqui URN"},
		{"no contact id", map[string]any{"contactExternalID": nil}, "contactExternalID is required"},
		{"no message value", map[string]any{"messageValue": ""}, "messageValue is required"},
		{"no message key", map[string]any{"messageKey": nil}, "messageKey is required"},
		{"message key not text", map[string]any{"messageKey": "image"}, `messageKey must be "text"`},
		{"official without model", map[string]any{"campaignModelID": nil}, "campaignModelID is required"},
		{"variables not an array", map[string]any{"campaignVariables": map[string]string{"1": "Maria"}}, "campaignVariables must be an array"},
		{"phone with plus", map[string]any{"contactExternalID": "+5527999999999"}, "8 to 15 digits"},
		{"phone with spaces", map[string]any{"contactExternalID": "55 27 99999 9999"}, "8 to 15 digits"},
		{"phone too short", map[string]any{"contactExternalID": "1234567"}, "8 to 15 digits"},
		{"phone too long", map[string]any{"contactExternalID": "1234567890123456"}, "8 to 15 digits"},
		{"business phone", map[string]any{"channel": "urn:talqui:whatsapp-internal:0", "contactExternalID": "abc12345"}, "8 to 15 digits"},
		{"ifood without order code", map[string]any{"channel": "urn:talqui:ifood:0", "contactExternalID": " "}, "iFood order code"},
		{"wrong type", map[string]any{"messageValue": 42}, "messageValue must be a string"},
		{"no connection id", map[string]any{"pluginConnectionID": nil}, "pluginConnectionID is required"},
	}
	srv := newServer(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := officialBody()
			for k, v := range tc.change {
				if v == nil {
					delete(body, k)
				} else {
					body[k] = v
				}
			}
			a := talqui(t, srv, body)
			require.Equal(t, http.StatusBadRequest, a.Status, "%s", a.Body)
			assert.Contains(t, a.Object(t)["message"], tc.message)
		})
	}
	assert.Empty(t, srv.Sessions())
	assert.Empty(t, srv.Contacts())

	t.Run("every problem at once", func(t *testing.T) {
		a := talqui(t, srv, map[string]any{
			"channel": "urn:talqui:whatsapp-cloud:0", "pluginConnectionID": convotest.DefaultConnectionID,
			"contactExternalID": "+55 27", "messageKey": "text",
		})
		require.Equal(t, http.StatusBadRequest, a.Status)
		msg := a.Object(t)["message"].(string)
		for _, want := range []string{"messageValue", "campaignModelID", "8 to 15 digits"} {
			assert.Contains(t, msg, want)
		}
	})
	t.Run("valid on each channel", func(t *testing.T) {
		for _, body := range []map[string]any{
			officialBody(),
			{"channel": "urn:talqui:whatsapp-internal:0", "contactExternalID": "5527999999999", "messageValue": "Your order is ready"},
			{"channel": "urn:talqui:ifood:0", "contactExternalID": "ORDER-1234", "messageValue": "Your order is ready"},
			{"channel": "urn:talqui:instagram:0", "contactExternalID": "maria.ig", "messageValue": "Hi"},
		} {
			body["pluginConnectionID"] = convotest.DefaultConnectionID
			body["messageKey"] = "text"
			a := talqui(t, srv, body)
			assert.Equal(t, http.StatusCreated, a.Status, "%v: %s", body["channel"], a.Body)
		}
	})
}
