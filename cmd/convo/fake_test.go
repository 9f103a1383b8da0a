package main

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// TestFakeAnswersARealClient starts "convo fake", reads what it prints and
// makes real convo calls with it, then stops it as SIGINT would.
func TestFakeAnswersARealClient(t *testing.T) {
	cmd := startCmd(t, nil, "fake", "-addr", "127.0.0.1:0")
	await(t, cmd.stdout, `(?m)^# ready`)
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)=(.*)$`).FindAllStringSubmatch(cmd.stdout.String(), -1) {
		vars[m[1]] = m[2]
	}
	require.Regexp(t, `^http://127\.0\.0\.1:\d+$`, vars["TALQUI_URL"])
	assert.Equal(t, convotest.DefaultTenantID, vars["TALQUI_TENANT"])
	assert.Equal(t, convotest.DefaultSecretKey, vars["TALKJS_SECRET_KEY"])

	c, err := convo.NewClient(
		convo.WithTalqui(vars["TALQUI_TENANT"], convo.PluginConnection{ID: vars["TALQUI_CONNECTION_ID"], Token: vars["TALQUI_TOKEN"]}),
		convo.WithTalquiURL(vars["TALQUI_URL"]),
		convo.WithTalkJS(vars["TALKJS_APP_ID"], vars["TALKJS_SECRET_KEY"]),
		convo.WithTalkJSURL(vars["TALKJS_URL"]),
	)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	ctx := context.Background()
	started, err := c.Sessions.Start(ctx, convo.WhatsAppBusiness{Phone: "+55 27 99999-9999", Text: "Hello"})
	require.NoError(t, err)
	assert.NotEmpty(t, started.Session.SessionID)
	require.NoError(t, c.Users.Upsert(ctx, "u1", convo.UserUpdate{Name: "Alice"}))
	require.NoError(t, c.Conversations.Upsert(ctx, "c1", convo.ConversationUpdate{Participants: []string{"u1"}}))
	ids, err := c.Conversations.SendMessages(ctx, "c1", convo.UserMessage("u1", "Hi"))
	require.NoError(t, err)
	assert.Len(t, ids, 1)

	sc, err := convo.NewClient(convo.WithSelarti(vars["SELARTI_API_KEY"]), convo.WithSelartiURL(vars["SELARTI_URL"]))
	require.NoError(t, err)
	defer sc.CloseIdleConnections()
	_, err = sc.Selarti.Send(ctx, convo.SelartiMessage{TaskID: vars["SELARTI_TASK_ID"], ChatID: "tg-1", Text: "Hi"})
	require.NoError(t, err)
	sc.CloseIdleConnections()

	c.CloseIdleConnections()
	assert.Equal(t, exitOK, cmd.wait(t))
	assert.Equal(t, "convo fake: serves Talqui, TalkJS and Selarti at "+vars["TALQUI_URL"]+"; calls no host\n", cmd.stderr.String())
}

func TestFakeCannotListen(t *testing.T) {
	r := runCmd(t, nil, "fake", "-addr", "not-an-address")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "convo fake:")
}
