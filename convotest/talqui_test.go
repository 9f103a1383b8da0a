package convotest_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/convokit/convo/convotest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	uuidRE  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	isoMSRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
)

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
	assert.Equal(t, s["sessionID"], sessions[0].SessionID)
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
