package convo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// verifyAppToken checks a TalkJS app token the way TalkJS does, with the
// secret key, and returns its header and claims.
func verifyAppToken(t *testing.T, authorization, secret string) (header, claims map[string]any) {
	t.Helper()
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	require.True(t, ok, "a bearer token: %q", authorization)
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	require.True(t, hmac.Equal(mac.Sum(nil), sig), "HS256 signature with the secret key")
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, dst))
	}
	return header, claims
}

// fakeClock is a settable clock for appTokens.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestTalkJSTokenAuth(t *testing.T) {
	env := NewTestEnv(t, WithTalkJSTokenAuth())
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	env.c.talkjs.cred.(*appTokens).now = clock.Now
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, `{}`))
	ctx := context.Background()
	call := func() string {
		t.Helper()
		require.NoError(t, env.c.Users.Upsert(ctx, "u1", UserUpdate{Name: "U"}))
		calls := env.Calls()
		return calls[len(calls)-1].Header.Get("Authorization")
	}

	first := call()
	header, claims := verifyAppToken(t, first, testTalkJSToken)
	assert.Equal(t, map[string]any{"alg": "HS256", "typ": "JWT"}, header)
	assert.Equal(t, map[string]any{"tokenType": "app", "iss": testAppID, "iat": 1_700_000_000.0, "exp": 1_700_000_030.0}, claims)
	assert.NotContains(t, first, testTalkJSToken, "the secret key never goes on the wire")

	clock.Advance(time.Second)
	second := call()
	assert.NotEqual(t, first, second, "a token of its own for each request, never the last one's")
	_, claims = verifyAppToken(t, second, testTalkJSToken)
	assert.Equal(t, map[string]any{"tokenType": "app", "iss": testAppID, "iat": 1_700_000_001.0, "exp": 1_700_000_031.0}, claims)

	for _, c := range env.Calls() {
		for k, vs := range c.Header {
			for _, v := range vs {
				assert.NotContains(t, v, testTalkJSToken, "header %s", k)
			}
		}
	}
	assert.Empty(t, env.c.talkjs.auth, "no fixed header holds the secret key")
}

// The app id is any string: one that JSON escapes is escaped in the
// claims, and the token still verifies.
func TestTalkJSTokenAuthEscapedAppID(t *testing.T) {
	tokens := newAppTokens(`app"<\>/é`, testTalkJSToken)
	_, claims := verifyAppToken(t, tokens.mint(1_700_000_000, 1_700_000_030), testTalkJSToken)
	assert.Equal(t, map[string]any{"tokenType": "app", "iss": `app"<\>/é`, "iat": 1_700_000_000.0, "exp": 1_700_000_030.0}, claims)
	assert.True(t, strings.HasPrefix(tokens.mint(1, 2), "Bearer "+string(tokens.mark)), "the mark that redaction looks for")
}

func TestTalkJSTokenAuthRetryMintsEachAttempt(t *testing.T) {
	env := NewTestEnv(t, WithTalkJSTokenAuth())
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	env.c.talkjs.cred.(*appTokens).now = clock.Now
	env.mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		clock.Advance(time.Second) // the next attempt's token is minted a second later
		return httpmock.NewStringResponse(503, `{}`), nil
	})
	err := safeCall(context.Background(), env.c)
	require.ErrorIs(t, err, ErrServer)
	calls := env.Calls()
	require.Len(t, calls, 4)
	for i, c := range calls {
		_, claims := verifyAppToken(t, c.Header.Get("Authorization"), testTalkJSToken)
		assert.Equal(t, 1_700_000_000.0+float64(i), claims["iat"], "attempt %d has a token of its own", i+1)
	}
}

func TestTalkJSTokenAuthConcurrent(t *testing.T) {
	env := NewTestEnv(t, WithTalkJSTokenAuth())
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	env.c.talkjs.cred.(*appTokens).now = func() time.Time {
		clock.Advance(time.Second) // each token is minted in a second of its own
		return clock.Now()
	}
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, `{}`))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, env.c.Users.Upsert(context.Background(), "u1", UserUpdate{Name: "U"}))
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, c := range env.Calls() {
		verifyAppToken(t, c.Header.Get("Authorization"), testTalkJSToken)
		seen[c.Header.Get("Authorization")] = true
	}
	assert.Len(t, seen, 8, "a token for each call, none shared")
}

func TestTalkJSTokenAuthNeedsTalkJS(t *testing.T) {
	_, err := NewClient(WithTalqui(testTenant, PluginConnection{ID: "pc-wa", Token: testTokenWA}), WithTalkJSTokenAuth())
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []Problem{{Field: "tokenAuth", Reason: "WithTalkJSTokenAuth needs WithTalkJS"}}, ve.Problems)
}

// A refused app token is not minted anew and the call is not repeated
// (only a credential that can give another header, such as Selarti's
// exchanged token, earns the one repeat); an echo of the token in the
// error body is redacted.
func TestTalkJSTokenAuthRefusedOnce(t *testing.T) {
	env := NewTestEnv(t, WithTalkJSTokenAuth())
	env.mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
		return httpmock.NewStringResponse(401, `{"message":"bad token `+r.Header.Get("Authorization")+`"}`), nil
	})
	err := safeCall(context.Background(), env.c)
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Len(t, env.Calls(), 1, "not repeated")
	jwt := strings.TrimPrefix(env.Calls()[0].Header.Get("Authorization"), "Bearer ")
	require.NotEmpty(t, jwt)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "bad token Bearer [redacted]", ae.Message)
	assert.NotContains(t, string(ae.Body), jwt)
}
