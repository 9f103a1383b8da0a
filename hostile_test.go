package convo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Bubble body that says UNAUTHORIZED earns the one repeat only when the
// answer itself leaves no doubt that nothing was applied: on a 5xx, a 408
// or a redirect (which may come after the send was applied), the send is
// not repeated and the error stays ambiguous.
func TestSelartiRefusalOnAnAmbiguousAnswerNotRepeated(t *testing.T) {
	const unauthorized = `{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"token expired"}}`
	for _, status := range []int{500, 502, 503, 408, 307} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			env := newSelartiEnv(t)
			env.answer("send_external_message", httpmock.NewStringResponder(status, unauthorized))
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			require.ErrorIs(t, err, ErrOutcomeUnknown)
			assert.Equal(t, 1, env.count("send_external_message"), "never sent twice")
			assert.EqualValues(t, 1, env.exchanges.Load())
		})
	}
}

// A transport error that quotes what the server sent back (a malformed
// status line echoing the Authorization it got) holds no token minted or
// exchanged at run time: not in the error, not in the retry log.
func TestRunTimeTokensRedactedFromTransportErrors(t *testing.T) {
	echo := httpmock.Responder(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("malformed HTTP status code %q", r.Header.Get("Authorization"))
	})
	check := func(t *testing.T, env *TestEnv, err error, token string) {
		t.Helper()
		require.NotEmpty(t, token)
		require.ErrorIs(t, err, ErrOutcomeUnknown)
		for _, verb := range []string{"%v", "%+v", "%#v", "%q"} {
			assert.NotContains(t, fmt.Sprintf(verb, err), token, verb)
		}
		assert.Contains(t, err.Error(), "[redacted]")
		assert.NotContains(t, env.logs.String(), token)
	}

	t.Run("TalkJS app token, retried", func(t *testing.T) {
		env := NewTestEnv(t, WithTalkJSTokenAuth())
		env.mt.RegisterNoResponder(echo)
		err := safeCall(context.Background(), env.c)
		require.Len(t, env.Calls(), fastRetry.MaxRetries+1)
		assert.Contains(t, env.logs.String(), "convo: retrying")
		check(t, env, err, strings.TrimPrefix(env.Calls()[0].Header.Get("Authorization"), "Bearer "))
	})
	t.Run("Selarti token", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("send_external_message", echo)
		_, err := env.c.Selarti.Send(context.Background(), sendMsg())
		assert.Equal(t, 1, env.count("send_external_message"))
		check(t, env.TestEnv, err, testSelartiToken(1))
	})
}
