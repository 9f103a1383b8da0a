package convo

import (
	"context"
	"net/http"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allEnv are the variables WithEnv reads, each cleared by clearEnv.
var allEnv = []string{
	"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN", "TALQUI_URL",
	"TALKJS_APP_ID", "TALKJS_SECRET_KEY", "TALKJS_URL", "SELARTI_API_KEY", "SELARTI_URL",
}

// setEnv sets the variables of m and clears every other one WithEnv reads.
func setEnv(t *testing.T, m map[string]string) {
	t.Helper()
	for _, k := range allEnv {
		t.Setenv(k, m[k])
	}
}

// envClient builds a client with opts and a mock transport, recording
// what it sends.
func envClient(t *testing.T, opts ...Option) (*Client, *recorder, *httpmock.MockTransport) {
	t.Helper()
	mt := httpmock.NewMockTransport()
	rec := &recorder{rt: mt}
	c, err := NewClient(append([]Option{WithHTTPClient(&http.Client{Transport: rec}), WithRetry(RetryPolicy{MaxRetries: 0})}, opts...)...)
	require.NoError(t, err)
	return c, rec, mt
}

func TestWithEnvConfiguresEveryProviderAndURL(t *testing.T) {
	setEnv(t, map[string]string{
		"TALQUI_TENANT": "tenant-env", "TALQUI_CONNECTION_ID": "pc-env", "TALQUI_TOKEN": "pct_env_token",
		"TALQUI_URL":    "http://127.0.0.1:8089",
		"TALKJS_APP_ID": "app-env", "TALKJS_SECRET_KEY": "sk_env_secret", "TALKJS_URL": "http://localhost:8089/",
		"SELARTI_API_KEY": "selarti_env_key", "SELARTI_URL": "http://[::1]:8089/api/1.1",
	})
	c, rec, mt := envClient(t, WithEnv())
	assert.Equal(t, "http://127.0.0.1:8089", c.BaseURL(ProviderTalqui))
	assert.Equal(t, "http://localhost:8089", c.BaseURL(ProviderTalkJS))
	assert.Equal(t, "http://[::1]:8089/api/1.1", c.BaseURL(ProviderSelarti))

	mt.RegisterResponder("PUT", "http://localhost:8089/v1/app-env/users/u1", httpmock.NewStringResponder(200, `{}`))
	mt.RegisterResponder("POST", "http://127.0.0.1:8089/tenants/tenant-env/sessions", httpmock.NewStringResponder(200, `{}`))
	ctx := context.Background()
	require.NoError(t, c.Users.Upsert(ctx, "u1", UserUpdate{Name: "Ann"}))
	_, err := c.Sessions.Start(ctx, WhatsAppBusiness{Phone: "+55 27 99999-9999", Text: "Hi"})
	require.NoError(t, err)

	calls := rec.all()
	require.Len(t, calls, 2)
	assert.Equal(t, "Bearer sk_env_secret", calls[0].Header.Get("Authorization"))
	assert.Equal(t, "PluginConnection pct_env_token", calls[1].Header.Get("Authorization"))
	assert.JSONEq(t, `{"channel":"urn:talqui:whatsapp-internal:0","pluginConnectionID":"pc-env","contactExternalID":"5527999999999","messageKey":"text","messageValue":"Hi"}`, string(calls[1].Body))
}

func TestWithEnvDefaultsToTheRealHostsWithoutURLs(t *testing.T) {
	setEnv(t, map[string]string{"TALKJS_APP_ID": "app-env", "TALKJS_SECRET_KEY": "sk_env_secret"})
	c, _, _ := envClient(t, WithEnv())
	assert.Equal(t, DefaultTalkJSURL, c.BaseURL(ProviderTalkJS))
	assert.Equal(t, "", c.BaseURL(ProviderTalqui), "Talqui has no credentials: not configured")
	assert.Equal(t, "", c.BaseURL(ProviderSelarti))
	_, err := c.Sessions.Start(context.Background(), WhatsAppBusiness{Phone: "+55 27 99999-9999", Text: "Hi"})
	assert.ErrorIs(t, err, ErrNotConfigured)
}

func TestWithEnvEmptyCountsAsUnset(t *testing.T) {
	setEnv(t, map[string]string{"SELARTI_API_KEY": "selarti_env_key", "TALQUI_TENANT": "", "TALKJS_URL": ""})
	c, _, _ := envClient(t, WithEnv())
	assert.Equal(t, DefaultSelartiURL, c.BaseURL(ProviderSelarti))
	assert.Equal(t, "", c.BaseURL(ProviderTalqui))
	assert.Equal(t, "", c.BaseURL(ProviderTalkJS))
}

func TestWithEnvRefusesSomeCredentialsWithoutTheOthers(t *testing.T) {
	setEnv(t, map[string]string{"TALQUI_TENANT": "tenant-env", "TALKJS_SECRET_KEY": "sk_env_secret"})
	_, err := NewClient(WithEnv())
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []Problem{
		{Field: "TALQUI_CONNECTION_ID, TALQUI_TOKEN", Reason: "must be set with TALQUI_TENANT to configure talqui"},
		{Field: "TALKJS_APP_ID", Reason: "must be set with TALKJS_SECRET_KEY to configure talkjs"},
	}, ve.Problems)
	assert.NotContains(t, err.Error(), "sk_env_secret")
}

func TestWithEnvRefusesBadValuesNamingTheVariable(t *testing.T) {
	setEnv(t, map[string]string{
		"TALKJS_APP_ID": "app-env", "TALKJS_SECRET_KEY": "sk env secret",
		"TALQUI_URL": "http://api.talqui.example", "SELARTI_URL": "ftp://127.0.0.1",
	})
	_, err := NewClient(WithEnv())
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []Problem{
		{Field: "TALQUI_URL", Reason: "plain http is allowed only to a loopback host"},
		{Field: "TALKJS_SECRET_KEY", Reason: "must not hold whitespace or control characters"},
		{Field: "SELARTI_URL", Reason: "must be an absolute http(s) URL"},
	}, ve.Problems)
	assert.NotContains(t, err.Error(), "sk env secret")
}

func TestWithEnvWithNothingSetSaysWhatToSet(t *testing.T) {
	setEnv(t, map[string]string{"TALKJS_URL": "http://127.0.0.1:8089"})
	_, err := NewClient(WithEnv())
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Len(t, ve.Problems, 1)
	assert.Equal(t, "opts", ve.Problems[0].Field)
	assert.Equal(t, "configure at least one provider: WithTalqui, WithTalkJS or WithSelarti; WithEnv found none: "+
		"set TALQUI_TENANT, TALQUI_CONNECTION_ID and TALQUI_TOKEN, or TALKJS_APP_ID and TALKJS_SECRET_KEY, or SELARTI_API_KEY",
		ve.Problems[0].Reason)

	setEnv(t, nil)
	_, err = NewClient()
	require.ErrorAs(t, err, &ve)
	assert.NotContains(t, ve.Problems[0].Reason, "WithEnv", "no hint without WithEnv")
}

// A URL in the environment applies to credentials given by an option: the
// call goes to the fake the environment names, never to the real host.
func TestWithEnvURLAppliesToCredentialsFromAnOption(t *testing.T) {
	setEnv(t, map[string]string{"TALKJS_URL": "http://127.0.0.1:8089"})
	for name, opts := range map[string][]Option{
		"option before": {WithTalkJS("app-opt", "sk_opt_secret"), WithEnv()},
		"option after":  {WithEnv(), WithTalkJS("app-opt", "sk_opt_secret")},
	} {
		c, _, _ := envClient(t, opts...)
		assert.Equal(t, "http://127.0.0.1:8089", c.BaseURL(ProviderTalkJS), name)
		assert.Equal(t, `convo.Client{talkjs: app "app-opt"}`, c.String(), name)
	}
}

// WithEnv acts at its place: a later option overrides it, a variable that
// is set overrides an earlier option, and one that is not keeps it.
func TestWithEnvOrderAmongOptions(t *testing.T) {
	setEnv(t, map[string]string{"TALKJS_APP_ID": "app-env", "TALKJS_SECRET_KEY": "sk_env_secret", "TALKJS_URL": "http://127.0.0.1:8089"})

	c, _, _ := envClient(t, WithEnv(), WithTalkJSURL("https://talkjs.example"), WithTalkJS("app-opt", "sk_opt_secret"))
	assert.Equal(t, "https://talkjs.example", c.BaseURL(ProviderTalkJS))
	assert.Equal(t, `convo.Client{talkjs: app "app-opt"}`, c.String())

	c, _, _ = envClient(t, WithTalkJSURL("https://talkjs.example"), WithTalkJS("app-opt", "sk_opt_secret"), WithEnv())
	assert.Equal(t, "http://127.0.0.1:8089", c.BaseURL(ProviderTalkJS))
	assert.Equal(t, `convo.Client{talkjs: app "app-env"}`, c.String())

	c, _, _ = envClient(t, WithSelartiURL("https://selarti.example/api/1.1"), WithSelarti("selarti_opt_key"), WithEnv())
	assert.Equal(t, "https://selarti.example/api/1.1", c.BaseURL(ProviderSelarti), "SELARTI_URL is unset: the option stays")
}

func TestBaseURLOfAClientWithoutWithEnv(t *testing.T) {
	c, err := NewClient(WithTalqui("t", PluginConnection{ID: "pc", Token: "tok"}))
	require.NoError(t, err)
	assert.Equal(t, DefaultTalquiURL, c.BaseURL(ProviderTalqui))
	assert.Equal(t, "", c.BaseURL(ProviderTalkJS))
	assert.Equal(t, "", c.BaseURL(Provider("other")))
}

// A *_URL holding the path the client adds is refused like the option's
// URL, in WithEnv's own pass, naming the variable (not the option's field)
// along with WithEnv's other problems.
func TestWithEnvRefusesADoubledPrefixNamingTheVariable(t *testing.T) {
	setEnv(t, map[string]string{
		"TALKJS_APP_ID": "app-env", "TALKJS_SECRET_KEY": "sk_env_secret",
		"TALKJS_URL":  "http://127.0.0.1:8089/v1/app-env",
		"TALQUI_URL":  "http://127.0.0.1:8089/tenants/t1",
		"SELARTI_URL": "http://127.0.0.1:8089/api/1.1/wf",
	})
	_, err := NewClient(WithEnv())
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	fields := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		fields[i] = p.Field
	}
	require.Equal(t, []string{"TALQUI_URL", "TALKJS_URL", "SELARTI_URL"}, fields, "%v", ve.Problems)
	assert.Contains(t, ve.Problems[1].Reason, "must not hold /v1/{appId}")
}
