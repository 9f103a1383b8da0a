package convo

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// printVerbs are the fmt verbs the canary prints every value with.
var printVerbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X"}

// leakForms gives the forms in which a printed secret, or its first 8
// bytes, shows: as text, in hex (%x, %X), as decimal bytes (%d, %v of a
// []byte) and as Go-syntax bytes (%#v of a []byte).
func leakForms(secret string) []string {
	var forms []string
	for _, s := range []string{secret, secret[:8]} {
		b := []byte(s)
		dec := strings.Trim(fmt.Sprint(b), "[]")
		goSyntax := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", b), "[]byte{"), "}")
		forms = append(forms, s, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)), dec, goSyntax)
	}
	return forms
}

// requireNoLeak fails when out shows any configured secret in any form.
func requireNoLeak(t *testing.T, what, out string) {
	t.Helper()
	for _, sec := range testSecrets {
		for _, form := range leakForms(sec) {
			if strings.Contains(out, form) {
				t.Fatalf("%s shows the secret %q as %q:\n%s", what, sec[:8]+"…", form, out)
			}
		}
	}
}

// printEverywhere prints v with every verb, both slog handlers (alone and
// nested in a slice) and encoding/json, and requires no secret in any.
func printEverywhere(t *testing.T, what string, v any) {
	t.Helper()
	for _, verb := range printVerbs {
		requireNoLeak(t, what+" "+verb, fmt.Sprintf(verb, v))
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("print", "v", v, "nested", []any{v}, slog.Group("g", "v", v))
	}
	requireNoLeak(t, what+" in slog", buf.String())
	out, err := json.Marshal(v)
	requireNoLeak(t, what+" in encoding/json", string(out))
	if err != nil {
		requireNoLeak(t, what+" encoding/json error", err.Error())
	}
}

// echoAll is a JSON error body that echoes every secret and the
// Authorization values built from them.
func echoAll() string {
	var b strings.Builder
	b.WriteString(`{"message":"`)
	for _, s := range testSecrets {
		b.WriteString("token " + s + " Bearer " + s + " PluginConnection " + s + "; ")
	}
	b.WriteString(`"}`)
	return b.String()
}

// quotingDecoder is a success body whose decoding error quotes the body.
type quotingDecoder struct{}

func (quotingDecoder) decodeBody(b []byte) error { return fmt.Errorf("cannot decode %q", b) }

// TestSecretCanary prints the client, its services and option values and
// the error of every path that ends a call, each with every fmt verb,
// both slog handlers and encoding/json, while the servers echo every
// configured secret wherever they can: no secret shows, nor its first 8
// bytes.
func TestSecretCanary(t *testing.T) {
	env := NewTestEnv(t, WithSelarti(testSelartiKey))
	c := env.c
	printEverywhere(t, "*Client", c)
	printEverywhere(t, "Client", *c)
	printEverywhere(t, "Sessions", c.Sessions)
	printEverywhere(t, "Users", c.Users)
	printEverywhere(t, "Conversations", c.Conversations)
	printEverywhere(t, "Selarti", c.Selarti)
	conns := []PluginConnection{{ID: "pc-wa", Token: testTokenWA}, {ID: "pc-food", Token: testTokenFood}}
	printEverywhere(t, "PluginConnection", conns[0])
	printEverywhere(t, "[]PluginConnection", conns)
	printEverywhere(t, "*PluginConnection", &conns[1])
	printEverywhere(t, "map of PluginConnection", map[string]PluginConnection{"a": conns[0]})
	opts := []Option{WithTalqui(testTenant, conns...), WithTalkJS(testAppID, testTalkJSToken), WithSelarti(testSelartiKey)}
	printEverywhere(t, "options", opts)
	printEverywhere(t, "RetryPolicy", fastRetry)

	echo := echoAll()
	header := http.Header{"X-Request-Id": {"req-" + testTalkJSToken + "-" + testTokenWA}}
	straddle := func(at int) httpmock.Responder { // a secret that begins 20 bytes before the cut at
		return httpmock.NewStringResponder(400, strings.Repeat("x", at-20)+testTokenWA+strings.Repeat("y", 100))
	}
	paths := map[string]struct {
		responder httpmock.Responder
		call      func(ctx context.Context, c *Client) error
	}{
		"4xx echoing every secret":                   {httpmock.NewStringResponder(403, echo).HeaderSet(header), safeCall},
		"5xx until retries run out":                  {httpmock.NewStringResponder(503, echo).HeaderSet(header), safeCall},
		"5xx on a session start":                     {httpmock.NewStringResponder(502, echo).HeaderSet(header), startCall},
		"a secret straddling the 64 KiB cut of Body": {straddle(maxErrorBody), safeCall},
		"a secret straddling the 500-byte cut of Message": {httpmock.NewStringResponder(400,
			`{"message":"`+strings.Repeat("m", 480)+testTalkJSToken+`"}`), safeCall},
		"a request id holding a secret past 200 bytes": {httpmock.NewStringResponder(404, `{}`).HeaderSet(
			http.Header{"X-Request-Id": {strings.Repeat("r", 190) + testTalkJSToken}}), safeCall},
		"a 2xx that fails to decode": {httpmock.NewStringResponder(200, `{"id": "`+testTalkJSToken+`", `).HeaderSet(header), safeCall},
		"a decoding error quoting the body": {httpmock.NewStringResponder(200, echo), func(ctx context.Context, c *Client) error {
			return c.do(ctx, &request{api: c.talkjs, method: http.MethodGet, path: "/users", out: quotingDecoder{}})
		}},
		"a redirect to a URL holding the token": {httpmock.NewStringResponder(307, echo).HeaderSet(
			http.Header{"Location": {"https://evil.example.com/?t=" + testTokenWA}}), startCall},
		"a transport error quoting what the server sent": {httpmock.NewErrorResponder(
			fmt.Errorf("malformed HTTP response %q", "HTTP/1.1 200 "+testTalkJSToken)), safeCall},
		"a transport error on a session start": {httpmock.NewErrorResponder(
			fmt.Errorf("malformed HTTP status code %q", testTokenWA)), startCall},
		"a body cut short by the context": {func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 201, Header: header, ContentLength: -1, Body: io.NopCloser(
				readerFunc(func([]byte) (int, error) { return 0, fmt.Errorf("%w: %s", context.Canceled, testTokenWA) }))}, nil
		}, startCall},
	}
	for name, p := range paths {
		t.Run(name, func(t *testing.T) {
			env := NewTestEnv(t, WithSelarti(testSelartiKey))
			env.mt.RegisterNoResponder(p.responder)
			err := p.call(context.Background(), env.c)
			require.Error(t, err)
			printEverywhere(t, "error", err)
			var ae *APIError
			if errors.As(err, &ae) {
				printEverywhere(t, "*APIError", *ae)
				requireNoLeak(t, "APIError.Body", string(ae.Body))
			}
			requireNoLeak(t, "the log", env.logs.String())
		})
	}

	t.Run("the context ends in the backoff", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		logs := &logBuffer{}
		h := slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
		env := NewTestEnv(t, WithRetry(RetryPolicy{MaxRetries: 2, MinWait: time.Hour, MaxWait: time.Hour}),
			WithLogger(CancelOnRetry(cancel, h)))
		env.mt.RegisterNoResponder(httpmock.NewErrorResponder(fmt.Errorf("read: %s", testTalkJSToken)))
		err := safeCall(ctx, env.c)
		assert.ErrorIs(t, err, ErrOutcomeUnknown)
		assert.ErrorIs(t, err, context.Canceled)
		printEverywhere(t, "error", err)
		requireNoLeak(t, "the log", logs.String())
	})

	t.Run("a credential or an id holding whitespace or a control character", func(t *testing.T) {
		for _, opt := range []Option{
			WithTalqui(testTenant, PluginConnection{ID: "pc", Token: testTokenWA + "\n"}),
			WithTalqui(testTenant, PluginConnection{ID: "pc", Token: " " + testTokenWA}),
			WithTalqui(testTenant, PluginConnection{ID: testTokenFood + " x", Token: "t"}),
			WithTalkJS(testAppID, testTalkJSToken+"\x00"),
			WithTalkJS(testTalkJSToken+"\t", "sk"),
		} {
			_, err := NewClient(opt)
			require.ErrorIs(t, err, ErrValidation)
			assert.Contains(t, err.Error(), "must not hold whitespace or control characters")
			assert.Regexp(t, `With(Talqui|TalkJS)\(`, err.Error(), "the problem names the option")
			printEverywhere(t, "option error", err)
		}
	})
}

func TestSecretsRedactedBeforeCutting(t *testing.T) {
	// A secret that begins 20 bytes before the 64 KiB cut of Body.
	env := NewTestEnv(t)
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(400, strings.Repeat("x", maxErrorBody-20)+testTokenWA+strings.Repeat("y", 100)))
	err := safeCall(context.Background(), env.c)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, strings.Repeat("x", maxErrorBody-20)+"[redacted]"+strings.Repeat("y", 10), string(ae.Body))

	// A request id echoing the secret key.
	env = NewTestEnv(t)
	env.mt.RegisterNoResponder(statusResponder(404, "X-Request-Id", "rid-"+testTalkJSToken))
	err = safeCall(context.Background(), env.c)
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "rid-[redacted]", ae.RequestID)
	assert.NotContains(t, err.Error(), testTalkJSToken)
}

func TestClientPrintedForms(t *testing.T) {
	env := NewTestEnv(t)
	want := `convo.Client{talqui: tenant "tenant-1", connections ["pc-wa" "pc-food"]; talkjs: app "app1"}`
	assert.Equal(t, want, fmt.Sprintf("%+v", env.c))
	assert.Equal(t, want, fmt.Sprint(*env.c))
	out, err := json.Marshal(env.c)
	require.NoError(t, err)
	assert.JSONEq(t, `{"talqui":{"tenantID":"tenant-1","connections":["pc-wa","pc-food"]},"talkjs":{"appID":"app1"}}`, string(out))
	out, err = json.Marshal(PluginConnection{ID: "pc-wa", Token: testTokenWA})
	require.NoError(t, err)
	assert.JSONEq(t, `{"ID":"pc-wa","Token":"[redacted]"}`, string(out))
}

// A server may echo a secret escaped: in a JSON string (by encoding/json's
// HTML escapes, or with "\/" as other encoders write a slash) or in a URL
// query. Every such form is redacted too.
func TestSecretRedactedInEscapedForms(t *testing.T) {
	const secret = "sk_live/Se<cr>et&1+"
	body := `{"message":"bad key", "echo":["sk_live/Se\u003ccr\u003eet\u00261+", "sk_live\/Se\u003ccr\u003eet\u00261+"], "url":"https://x.example/?k=sk_live%2FSe%3Ccr%3Eet%261%2B"}`
	env := NewTestEnv(t, WithTalkJS(testAppID, secret))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(400, body))
	err := safeCall(context.Background(), env.c)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, `{"message":"bad key", "echo":["[redacted]", "[redacted]"], "url":"https://x.example/?k=[redacted]"}`, string(ae.Body))
	for _, form := range []string{"Se<cr>", `Se\u003ccr`, "Se%3Ccr"} {
		assert.NotContains(t, fmt.Sprintf("%+v %s", ae, err), form)
	}
}
