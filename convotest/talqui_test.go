package convotest_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	uuidRE  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	isoMSRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
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

func TestTalquiStartResponseShape(t *testing.T) {
	srv := newServer(t)
	a := talqui(t, srv, officialBody())
	require.Equal(t, http.StatusCreated, a.Status, "%s", a.Body)
	assert.Contains(t, a.Header.Get("Content-Type"), "application/json")

	var got struct {
		Contact map[string]any `json:"contact"`
		Session map[string]any `json:"session"`
		Message map[string]any `json:"message"`
	}
	require.NoError(t, json.Unmarshal(a.Body, &got))

	c := got.Contact
	assert.Regexp(t, uuidRE, c["contactID"])
	assert.Equal(t, "Maria", c["contactFullName"])
	assert.Equal(t, "5527999999999", c["contactExternalID"])
	assert.Regexp(t, isoMSRE, c["createdAt"])

	s := got.Session
	assert.Regexp(t, uuidRE, s["sessionID"])
	assert.Equal(t, c["contactID"], s["contactID"])
	assert.Equal(t, convotest.DefaultTenantID, s["tenantID"])
	assert.Equal(t, "urn:talqui:whatsapp-cloud:0", s["sessionChannel"])
	assert.Equal(t, true, s["sessionActive"])
	assert.Equal(t, "marketing", s["sessionKind"])
	assert.Equal(t, "auto", s["sessionType"])
	assert.Equal(t, float64(0), s["sessionStatus"])
	assert.Regexp(t, isoMSRE, s["createdAt"])
	assert.Regexp(t, isoMSRE, s["updatedAt"])

	m := got.Message
	assert.Regexp(t, uuidRE, m["messageID"])
	assert.Equal(t, s["sessionID"], m["sessionID"])
	assert.Equal(t, "text", m["messageKey"])
	assert.Equal(t, "Order update notification", m["messageValue"])
	assert.Regexp(t, isoMSRE, m["createdAt"])
	assert.Equal(t, m["messageID"], s["sessionLastMessageID"])

	ts, err := time.Parse(time.RFC3339, m["createdAt"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), ts, time.Minute)

	sessions := srv.Sessions()
	require.Len(t, sessions, 1)
	assert.Equal(t, s["sessionID"], sessions[0].ID)
	assert.Equal(t, convotest.DefaultConnectionID, sessions[0].ConnectionID)
	assert.Equal(t, "order_update", sessions[0].CampaignModelID)
	assert.JSONEq(t, `["Maria","#391"]`, string(sessions[0].CampaignVariables))
	assert.Equal(t, "Order update notification", sessions[0].Message.Value)
}

func TestTalquiDefaultsAndExtraFields(t *testing.T) {
	srv := newServer(t)
	a := talqui(t, srv, map[string]any{
		"channel":            "urn:talqui:telegram:0",
		"pluginConnectionID": convotest.DefaultConnectionID,
		"contactExternalID":  "@maria",
		"messageKey":         "text",
		"messageValue":       "Hello!",
		"pluginThreadTopic":  "orders",
	})
	require.Equal(t, http.StatusCreated, a.Status, "%s", a.Body)
	s := a.Object(t)["session"].(map[string]any)
	assert.Equal(t, "transactional", s["sessionKind"])
	assert.Nil(t, a.Object(t)["contact"].(map[string]any)["contactFullName"])

	sessions := srv.Sessions()
	require.Len(t, sessions, 1)
	assert.Equal(t, map[string]json.RawMessage{"pluginThreadTopic": json.RawMessage(`"orders"`)}, sessions[0].Extra)
}

func TestTalquiContactCreatedOncePerChannelAndExternalID(t *testing.T) {
	srv := newServer(t)
	start := func(channel, id, name string) map[string]any {
		body := map[string]any{
			"channel": channel, "pluginConnectionID": convotest.DefaultConnectionID,
			"contactExternalID": id, "messageKey": "text", "messageValue": "hi",
		}
		if name != "" {
			body["contactFullName"] = name
		}
		a := talqui(t, srv, body)
		require.Equal(t, http.StatusCreated, a.Status, "%s", a.Body)
		return a.Object(t)
	}
	first := start("urn:talqui:whatsapp-internal:0", "5527999999999", "Maria")
	second := start("urn:talqui:whatsapp-internal:0", "5527999999999", "Maria Silva")
	third := start("urn:talqui:whatsapp-internal:0", "5527999999999", "")
	other := start("urn:talqui:telegram:0", "5527999999999", "Maria")

	cid := func(m map[string]any) any { return m["contact"].(map[string]any)["contactID"] }
	sid := func(m map[string]any) any { return m["session"].(map[string]any)["sessionID"] }
	assert.Equal(t, cid(first), cid(second), "same channel and id: same contact")
	assert.Equal(t, cid(first), cid(third))
	assert.NotEqual(t, cid(first), cid(other), "another channel: another contact")
	assert.NotEqual(t, sid(first), sid(second), "every start opens a session")
	assert.Equal(t, "Maria Silva", third["contact"].(map[string]any)["contactFullName"], "a start without a name keeps it")

	contacts := srv.Contacts()
	require.Len(t, contacts, 2)
	assert.Equal(t, "Maria Silva", contacts[0].FullName)
	assert.Len(t, srv.Sessions(), 4)
	assert.Equal(t, 4, srv.Stats().TalquiSessions)
	assert.Equal(t, 2, srv.Stats().TalquiContacts)
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
