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
	r := runCmd(t, env, "session", "start", "-channel", "telegram",
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
		{"session", "start", "-channel", "urn:talqui:instagram:0", "-contact", "maria", "-text", "Hi", "-connection", "pc-test"},
		{"session", "start", "-channel", "telegram", "-contact", "42", "-text", "Hi"},
	} {
		r := runCmd(t, env, args...)
		assert.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
		first, _, _ := strings.Cut(r.stderr, "\n")
		assert.Equal(t, "convo session start: calls talqui "+srv.URL, first)
	}
	assert.Equal(t, 5, srv.Stats().TalquiSessions)
	var channels []string
	for _, s := range srv.Sessions() {
		channels = append(channels, s.Channel)
	}
	assert.Equal(t, []string{"urn:talqui:whatsapp-cloud:0", "urn:talqui:whatsapp-internal:0", "urn:talqui:ifood:0",
		"urn:talqui:instagram:0", "urn:talqui:telegram:0"}, channels)
	assertNoDial(t)
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
		assert.Contains(t, r.stderr, "\n  -phone: must have 8 to 15 digits, has 2\n")
		assert.Contains(t, r.stderr, "\n  -model is required: WhatsApp API Official opens a conversation only with an approved model\n")
		assert.NotContains(t, r.stderr, "Phone")
		assert.NotContains(t, r.stderr, "ModelID")
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
		{env, []string{"-channel", "sms"}, "-channel must be whatsapp-official, whatsapp-business, ifood, telegram or a channel URN (urn:talqui:…); got \"sms\""},
		{env, []string{"-channel", "generic", "-contact", "c", "-text", "x"}, "got \"generic\""},
		{env, []string{"-channel", "telegram", "-phone", "5527999999999", "-text", "x"}, "-phone not used by -channel telegram (it takes -contact, -name, -text, -extra)"},
		{env, []string{"-channel", "ifood", "-order", "1", "-text", "x", "-timeout", "0s"}, "-timeout must be more than zero"},
		{env, []string{"-channel", "whatsapp-business", "-model", "m", "-phone", "5527999999999", "-text", "x"}, "-model not used by -channel whatsapp-business"},
		{nil, []string{"-channel", "ifood", "-order", "1", "-text", "x"}, "convo session start: set TALQUI_TENANT, TALQUI_CONNECTION_ID and TALQUI_TOKEN in the environment (-dry-run needs none)\n"},
		{map[string]string{"TALQUI_TENANT": "t"}, []string{"-channel", "ifood", "-order", "1", "-text", "x"}, "  TALQUI_CONNECTION_ID, TALQUI_TOKEN: must be set with TALQUI_TENANT to configure talqui\n"},
		{env, []string{"-channel", "ifood", "-extra", "novalue"}, "want key=value"},
		{map[string]string{"TALQUI_TENANT": "t", "TALQUI_CONNECTION_ID": "c", "TALQUI_TOKEN": testToken, "TALQUI_URL": "http://example.com"},
			[]string{"-channel", "ifood", "-order", "1", "-text", "x"}, "  TALQUI_URL: plain http is allowed only to a loopback host\n"},
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

// -dry-run needs no credentials: their places show $NAME, and the host is
// the real one, which is not dialled.
func TestSessionStartDryRunWithoutCredentials(t *testing.T) {
	trap.Reset()
	r := runCmd(t, nil, append(officialArgs, "-dry-run")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "POST https://api.talqui.chat/tenants/$TALQUI_TENANT/sessions\n"), r.stdout)
	assert.Contains(t, r.stdout, `"pluginConnectionID":"$TALQUI_CONNECTION_ID"`)
	assert.Equal(t, "convo session start: dry run: calls no host (would call talqui https://api.talqui.chat)\n"+
		"convo session start: dry run: nothing was sent\n", r.stderr)
	assertNoDial(t)
}

// Real credentials (no TALQUI_URL) and -dry-run: nothing dialled; without
// -dry-run the real host is dialled (the trap in its place).
func TestSessionStartRealCredentials(t *testing.T) {
	trap.Reset()
	real := map[string]string{"TALQUI_TENANT": "tenant-real", "TALQUI_CONNECTION_ID": "pc-real", "TALQUI_TOKEN": testToken}
	r := runCmd(t, real, append(officialArgs, "-dry-run")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "POST https://api.talqui.chat/tenants/tenant-real/sessions\n")
	assertNoDial(t)

	r = runCmd(t, real, officialArgs...)
	assert.Equal(t, exitAPI, r.code)
	assert.True(t, strings.HasPrefix(r.stderr, "convo session start: calls talqui https://api.talqui.chat\n"), r.stderr)
	got := trap.Requests()
	require.NotEmpty(t, got)
	assert.Equal(t, "CONNECT api.talqui.chat:443 HTTP/1.1", got[0])
	assert.NotContains(t, r.stderr, "convo: ", "no double prefix")
}
