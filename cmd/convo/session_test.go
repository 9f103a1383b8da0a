package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

var officialArgs = []string{"session", "start", "-channel", "whatsapp-official",
	"-phone", "+55 27 99999-9999", "-name", "Maria", "-model", "order_update", "-var", "Maria", "-var", "#391"}

// dryRunBody is the body printed by -dry-run: what follows the blank line.
func dryRunBody(t *testing.T, out string) string {
	t.Helper()
	_, body, ok := strings.Cut(out, "\n\n")
	require.True(t, ok, "no blank line in %q", out)
	return strings.TrimSpace(body)
}

// TestSessionStartDryRunSendsNothing checks that -dry-run sends nothing
// and prints the very bytes a real start then sends.
func TestSessionStartDryRunSendsNothing(t *testing.T) {
	srv, env := newFake(t)
	r := runCmd(t, env, append(officialArgs, "-dry-run")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, srv.Requests(), "a dry run sent a request")
	assert.Zero(t, srv.Stats().TalquiSessions)
	assert.Contains(t, r.stdout, "POST "+srv.URL+"/tenants/"+srv.TenantID()+"/sessions\n")
	assert.Contains(t, r.stdout, "Authorization: PluginConnection [redacted]\n")
	assert.Contains(t, r.stdout, "Content-Type: application/json\n")
	assert.Contains(t, r.stderr, "nothing was sent")

	r2 := runCmd(t, env, officialArgs...)
	require.Equal(t, exitOK, r2.code, r2.stderr)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, string(reqs[0].Body), dryRunBody(t, r.stdout), "the dry run printed other bytes than were sent")
}

func TestSessionStartPrintsTalquiAnswer(t *testing.T) {
	srv, env := newFake(t)
	r := runCmd(t, env, "session", "start", "-channel", "generic", "-urn", "urn:talqui:telegram:0",
		"-contact", "@maria", "-text", "Hello", "-extra", "topic=orders")
	require.Equal(t, exitOK, r.code, r.stderr)
	var started convo.StartedSession
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &started))
	assert.Equal(t, "urn:talqui:telegram:0", started.Session.SessionChannel)
	require.Len(t, srv.Sessions(), 1)
	assert.JSONEq(t, `"orders"`, string(srv.Sessions()[0].Extra["topic"]))
}

func TestSessionStartEveryChannel(t *testing.T) {
	srv, env := newFake(t)
	for _, args := range [][]string{
		officialArgs,
		{"session", "start", "-channel", "whatsapp-business", "-phone", "5527999999999", "-text", "Hi"},
		{"session", "start", "-channel", "ifood", "-order", "ORD-1", "-text", "Your order left"},
		{"session", "start", "-channel", "generic", "-urn", "urn:talqui:instagram:0", "-contact", "maria", "-text", "Hi", "-connection", "pc-test"},
	} {
		r := runCmd(t, env, args...)
		assert.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
	}
	assert.Equal(t, 4, srv.Stats().TalquiSessions)
}

func TestSessionStartValidationIsExit2AndSendsNothing(t *testing.T) {
	srv, env := newFake(t)
	for _, dry := range []bool{false, true} {
		args := []string{"session", "start", "-channel", "whatsapp-official", "-phone", "12"}
		if dry {
			args = append(args, "-dry-run")
		}
		r := runCmd(t, env, args...)
		assert.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "Phone: must have 8 to 15 digits")
		assert.Contains(t, r.stderr, "ModelID: required")
		assert.Empty(t, r.stdout)
	}
	assert.Empty(t, srv.Requests())
}

func TestSessionStartUsage(t *testing.T) {
	_, env := newFake(t)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{env, []string{"-channel", "sms"}, "-channel must be one of"},
		{env, []string{"-channel", "whatsapp-business", "-model", "m", "-phone", "5527999999999", "-text", "x"}, "-model not used by -channel whatsapp-business"},
		{nil, []string{"-channel", "ifood", "-order", "1", "-text", "x"}, "TALQUI_TENANT, TALQUI_CONNECTION_ID, TALQUI_TOKEN"},
		{env, []string{"-channel", "ifood", "-extra", "novalue"}, "want key=value"},
		{map[string]string{"TALQUI_TENANT": "t", "TALQUI_CONNECTION_ID": "c", "TALQUI_TOKEN": testToken, "TALQUI_URL": "http://example.com"},
			[]string{"-channel", "ifood", "-order", "1", "-text", "x"}, "talquiURL"},
	} {
		r := runCmd(t, tc.env, append([]string{"session", "start"}, tc.args...)...)
		assert.Equal(t, exitUsage, r.code, "%v", tc.args)
		assert.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
}

// TestSessionStartOutcomeUnknown: Talqui opened the session, then the
// answer was lost. The command says so and exits 1.
func TestSessionStartOutcomeUnknown(t *testing.T) {
	srv, env := newFake(t)
	srv.Inject(convotest.Fault{Method: "POST", Path: "/tenants/*", Status: 502, AfterApply: true})
	r := runCmd(t, env, officialArgs...)
	assert.Equal(t, exitAPI, r.code)
	assert.Contains(t, r.stderr, "the request may have been applied; do not resend blindly")
	assert.Empty(t, r.stdout)
	assert.Equal(t, 1, srv.Stats().TalquiSessions, "never repeated")
}

func TestSessionStartAPIError(t *testing.T) {
	_, env := newFake(t)
	env["TALQUI_TOKEN"] = testToken + "-wrong"
	r := runCmd(t, env, officialArgs...)
	assert.Equal(t, exitAPI, r.code)
	assert.Contains(t, r.stderr, "401")
	assert.NotContains(t, r.stderr, "may have been applied")
}
