package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/convokit/convo/convotest"
)

// envVars are the variables the example reads.
var envVars = []string{
	"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN", "TALQUI_URL",
	"TALKJS_APP_ID", "TALKJS_SECRET_KEY", "TALKJS_URL", "SELARTI_API_KEY", "SELARTI_URL",
}

func setEnv(t *testing.T, m map[string]string) {
	for _, k := range envVars {
		t.Setenv(k, m[k])
	}
}

var realEnv = map[string]string{"TALQUI_TENANT": "tenant-real", "TALQUI_CONNECTION_ID": "pc-real", "TALQUI_TOKEN": "pct_real_token"}

func TestEveryChannelOffline(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv) // ignored without -live
	want := map[string]string{
		"whatsapp-official": `value "order_update"`,
		"whatsapp-business": `value "Hi Maria, your order #391 has shipped."`,
		"ifood":             "external id ORDER-1234-5678",
		"telegram":          "on urn:talqui:telegram:0",
		"invalid":           "ModelID: required",
	}
	for name, line := range want {
		var out bytes.Buffer
		if err := run(context.Background(), &out, name, "", false); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Contains(out.Bytes(), []byte(line)) {
			t.Errorf("%s: output lacks %q:\n%s", name, line, out.String())
		}
		if !strings.HasPrefix(out.String(), "channels: offline: calls only a convotest fake in this process, at http://127.0.0.1:") {
			t.Errorf("%s: first line of %q", name, out.String())
		}
	}
	if err := run(context.Background(), &bytes.Buffer{}, "fax", "", false); err == nil {
		t.Error("an unknown channel must fail")
	}
	assertNoDial(t)
}

// With -live and the variables "convo fake" exports, the start goes to
// that fake.
func TestLiveOnTheFakesVariables(t *testing.T) {
	trap.Reset()
	srv := convotest.NewServer()
	defer srv.Close()
	conn := srv.Connections()[0]
	setEnv(t, map[string]string{"TALQUI_URL": srv.URL, "TALQUI_TENANT": srv.TenantID(), "TALQUI_CONNECTION_ID": conn.ID, "TALQUI_TOKEN": conn.Token})
	var out bytes.Buffer
	if code := realMain([]string{"-live", "-channel", "telegram", "-to", "42"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if first, _, _ := strings.Cut(out.String(), "\n"); first != "channels: live: calls talqui "+srv.URL {
		t.Errorf("first line %q", first)
	}
	if n := srv.Stats().TalquiSessions; n != 1 {
		t.Errorf("the fake opened %d sessions, want 1", n)
	}
	assertNoDial(t)
}

// With -live and real credentials it dials Talqui (the trap in its place).
func TestLiveWithRealCredentialsDialsTalqui(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, io.Discard, "telegram", "42", true) }()
	select {
	case <-trap.Hit():
	case err := <-done:
		t.Fatalf("run ended without dialling: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("nothing dialled")
	}
	cancel()
	<-done
	if got := trap.Requests(); len(got) == 0 || got[0] != "CONNECT api.talqui.chat:443 HTTP/1.1" {
		t.Errorf("dialled %q, want api.talqui.chat", got)
	}
	if err := run(context.Background(), io.Discard, "telegram", "", true); err == nil || !strings.Contains(err.Error(), "-to is required") {
		t.Errorf("-live without -to: %v", err)
	}
}

func TestHelp(t *testing.T) {
	trap.Reset()
	setEnv(t, realEnv)
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-h"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "usage: channels") || stderr.Len() != 0 {
		t.Errorf("-h: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	assertNoDial(t)
}
