package convo

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of the second hostile review (issue 20).

// newSelartiTokenEnv is a Selarti harness whose /wf/auth answers the
// token tok, JSON-encoded.
func newSelartiTokenEnv(t *testing.T, tok string, opts ...Option) *TestEnv {
	t.Helper()
	env := NewTestEnv(t, append([]Option{WithSelarti(testSelartiKey)}, opts...)...)
	body := fmt.Sprintf(`{"status":"success","response":{"token":%q}}`, tok)
	env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", httpmock.NewStringResponder(200, body))
	return env
}

// jsonForms are the forms a server echoes s in: as is, by encoding/json
// (HTML escapes), by PHP (a slash as "\/", "<" left raw), URL-escaped.
func jsonForms(s string) []string {
	goForm := strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`).Replace(s)
	return []string{s, goForm, strings.ReplaceAll(s, "/", `\/`), url.QueryEscape(s)}
}

// assertRedactedForms fails when err, its Body or Message holds any form
// of secret, or the body holds no [redacted].
func assertRedactedForms(t *testing.T, err error, secret string) {
	t.Helper()
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Contains(t, string(ae.Body), "[redacted]")
	for _, f := range jsonForms(secret) {
		for what, s := range map[string]string{"Body": string(ae.Body), "Message": ae.Message,
			"Error": err.Error(), "%+v": fmt.Sprintf("%+v", err)} {
			assert.NotContains(t, s, f, "%s holds the form %q", what, f)
		}
	}
}

// An exchanged Selarti token echoed escaped, as Go, PHP and a URL escape
// it, is redacted in the body, the message and the error's text.
func TestExchangedTokenRedactedInEscapedForms(t *testing.T) {
	const tok = "sel/tok<SE>&CRET+9"
	forms := jsonForms(tok)
	for i, f := range forms {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			env := newSelartiTokenEnv(t, tok)
			body := `{"statusCode":400,"body":{"status":"INVALID_DATA","message":"bad token ` + strings.ReplaceAll(f, `\`, `\\`) +
				`"},"echo":"` + f + `","url":"https://x.example/?t=` + forms[3] + `"}`
			env.mt.RegisterResponder(http.MethodPost, selartiBase+"send_external_message", httpmock.NewStringResponder(400, body))
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			assertRedactedForms(t, err, tok)
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "INVALID_DATA: bad token [redacted]", ae.Message)
		})
	}
}

// A configured secret echoed PHP-style ("\/", with "<" left raw) is
// redacted.
func TestSecretRedactedPHPStyle(t *testing.T) {
	const secret = "sk_live/Se<cr>et"
	env := NewTestEnv(t, WithTalkJS(testAppID, secret))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(400, `{"message":"bad key sk_live\/Se<cr>et","key":"sk_live\/Se<cr>et"}`))
	err := safeCall(context.Background(), env.c)
	assertRedactedForms(t, err, secret)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, `{"message":"bad key [redacted]","key":"[redacted]"}`, string(ae.Body))
}

// No prefix of a run-time token survives the 64 KiB cut of an error body:
// the body is read as far past the cut as the longest token's form.
func TestRunTimeTokenPrefixNotLeftAtTheCut(t *testing.T) {
	t.Run("Selarti token", func(t *testing.T) {
		tok := "sel_tok_" + strings.Repeat("S", 192)
		env := newSelartiTokenEnv(t, tok)
		env.mt.RegisterResponder(http.MethodPost, selartiBase+"send_external_message",
			httpmock.NewStringResponder(400, strings.Repeat("x", maxErrorBody-40)+tok+strings.Repeat("y", 300)))
		_, err := env.c.Selarti.Send(context.Background(), sendMsg())
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, strings.Repeat("x", maxErrorBody-40)+"[redacted]"+strings.Repeat("y", 30), string(ae.Body))
	})
	t.Run("TalkJS app token", func(t *testing.T) {
		env := NewTestEnv(t, WithTalkJSTokenAuth())
		env.mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			// Past the mark, which is found wherever it stands.
			cut := len(env.c.talkjs.cred.(*appTokens).mark) + 10
			return httpmock.NewStringResponse(400, strings.Repeat("x", maxErrorBody-cut)+tok+strings.Repeat("y", 300)), nil
		})
		err := safeCall(context.Background(), env.c)
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		cut := len(env.c.talkjs.cred.(*appTokens).mark) + 10
		assert.Equal(t, strings.Repeat("x", maxErrorBody-cut)+"[redacted]"+strings.Repeat("y", cut-10), string(ae.Body))
	})
}

// A secret shorter than 8 bytes (a test key such as "k") is redacted only
// where it stands as a whole token, never inside a word.
func TestShortSecretRedactedOnlyAsAWholeToken(t *testing.T) {
	env := NewTestEnv(t, WithTalkJS(testAppID, "k"))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(400, `{"message":"token k is unknown","key":"k","url":"/?key=k&x=1"}`))
	err := safeCall(context.Background(), env.c)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, `{"message":"token [redacted] is unknown","key":"[redacted]","url":"/?key=[redacted]&x=1"}`, string(ae.Body))
	assert.Equal(t, "token [redacted] is unknown", ae.Message)
}
