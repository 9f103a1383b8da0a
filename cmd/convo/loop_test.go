package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeVars reads the NAME=value (or export NAME=value) lines of "convo fake".
func fakeVars(out string) map[string]string {
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(?:export )?([A-Z_]+)=(.*)$`).FindAllStringSubmatch(out, -1) {
		vars[m[1]] = m[2]
	}
	return vars
}

// "convo fake -env" prints lines a POSIX shell sources.
func TestFakeEnvIsSourceable(t *testing.T) {
	cmd := startCmd(t, nil, "fake", "-env")
	await(t, cmd.stdout, `(?m)^# ready`)
	out := cmd.stdout.String()
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.Regexp(t, `^(export [A-Z_]+=\S+|# .*|)$`, l)
	}
	file := filepath.Join(t.TempDir(), "fake.env")
	require.NoError(t, os.WriteFile(file, []byte(out), 0o600))
	sh := exec.Command("sh", "-c", `. "$1" && env`, "sh", file)
	sh.Env = []string{"PATH=" + os.Getenv("PATH")}
	got, err := sh.Output()
	require.NoError(t, err)
	vars := fakeVars(out)
	require.Len(t, vars, 10)
	for k, v := range vars {
		assert.Contains(t, "\n"+string(got), "\n"+k+"="+v+"\n")
	}
	assert.Equal(t, exitOK, cmd.wait(t))
}

func TestShellQuote(t *testing.T) {
	assert.Equal(t, "http://127.0.0.1:8089/api/1.1", shellQuote("http://127.0.0.1:8089/api/1.1"))
	assert.Equal(t, `'it'\''s $HOME'`, shellQuote("it's $HOME"))
	assert.Equal(t, "''", shellQuote(""))
}

// The Selarti loop from the terminal: "convo listen" receives, "convo fake
// -selarti-webhook" posts its AI's answers there, "convo selarti send"
// asks; every command is configured by the fake's variables and dials
// nothing but loopback.
func TestSelartiLoopFromTheCommandLine(t *testing.T) {
	trap.Reset()
	listen := startCmd(t, nil, "listen", "-selarti", "127.0.0.1:0")
	hook := await(t, listen.stderr, `selarti webhooks: (http://\S+)`)

	fake := startCmd(t, nil, "fake", "-selarti-webhook", hook)
	await(t, fake.stdout, `(?m)^# ready`)
	assert.Contains(t, fake.stderr.String(), "; calls "+hook+` (Selarti's "All messages" webhook)`)
	vars := fakeVars(fake.stdout.String())

	r := runCmd(t, vars, "selarti", "send", "-chat", "chat-9", "-text", "Where is my order?")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "convo selarti send: calls selarti "+vars["SELARTI_URL"]+"\n", r.stderr)
	assert.Contains(t, r.stdout, `"status":"success"`)

	line := await(t, listen.stdout, `(?m)^(.*"author":"bot".*)$`)
	assert.Contains(t, line, `"provider":"selarti"`)
	assert.Contains(t, line, `"external_chat_id":"chat-9"`)
	assert.Equal(t, exitOK, fake.wait(t))
	assert.Equal(t, exitOK, listen.wait(t))
	assertNoDial(t)
}

func TestSelartiSendDryRunWithoutCredentials(t *testing.T) {
	trap.Reset()
	r := runCmd(t, nil, "selarti", "send", "-task", "t-1", "-chat", "chat-9", "-text", "Hi", "-dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	auth, send, ok := strings.Cut(r.stdout, "POST https://selarti.com/api/1.1/wf/send_external_message\n")
	require.True(t, ok, r.stdout)
	assert.True(t, strings.HasPrefix(auth, "POST https://selarti.com/api/1.1/wf/auth\n"), auth)
	assert.Contains(t, send, "Authorization: Bearer [redacted]\n")
	assert.Contains(t, send, `"chat_id":"chat-9"`)
	assert.Equal(t, "convo selarti send: dry run: calls no host (would call selarti https://selarti.com/api/1.1)\n"+
		"convo selarti send: dry run: nothing was sent\n", r.stderr)
	assertNoDial(t)
}

func TestSelartiSendSpeaksFlags(t *testing.T) {
	_, env := newFake(t)
	delete(env, "SELARTI_TASK_ID")
	r := runCmd(t, env, "selarti", "send", "-dry-run")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "validation failed, nothing was sent:\n  -task is required\n  -chat is required\n  -text is required\n")

	r = runCmd(t, nil, "selarti", "send", "-chat", "c", "-text", "x")
	assert.Equal(t, exitUsage, r.code)
	assert.Equal(t, "convo selarti send: set SELARTI_API_KEY in the environment (-dry-run needs none)\n", r.stderr)
}

func TestFakeRefusesABadWebhookURL(t *testing.T) {
	r := runCmd(t, nil, "fake", "-selarti-webhook", "ftp://x")
	assert.Equal(t, exitUsage, r.code)
	assert.Equal(t, "convo fake: -selarti-webhook must be an absolute http or https URL, got \"ftp://x\"\n", r.stderr)
}
