package convo

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bubbleUnauthorized is Bubble's bad-token body as a Bubble forum thread
// quotes it ("Inconsistent API Error Response Formats in Backend
// Workflows"), verbatim. The thread does not give its status.
func bubbleUnauthorized(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/bubble-unauthorized.json")
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

const bubbleReason = "Unauthorized: Invalid or expired token: bus|1747016926616x321975835076789400|1747296216638x617151649234425400"

func TestSelartiBubbleErrorClassRefusesTheToken(t *testing.T) {
	body := bubbleUnauthorized(t)
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			env := newSelartiEnv(t)
			env.answer("send_external_message", func(r *http.Request) (*http.Response, error) {
				if r.Header.Get("Authorization") == "Bearer "+testSelartiToken(1) {
					return httpmock.NewStringResponse(status, body), nil
				}
				return httpmock.NewStringResponse(200, okAnswer), nil
			})
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			require.NoError(t, err)
			assert.EqualValues(t, 2, env.exchanges.Load(), "one exchange more")
			assert.Equal(t, 2, env.count("send_external_message"), "one repeat")
		})
		t.Run(http.StatusText(status)+"/refused again", func(t *testing.T) {
			env := newSelartiEnv(t)
			env.answer("add_target", httpmock.NewStringResponder(status, body))
			err := env.c.Selarti.AddTarget(context.Background(), testTask, "@maria")
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, status, ae.StatusCode)
			assert.Equal(t, bubbleReason, ae.Message)
			assert.ErrorIs(t, err, ErrUnauthorized, "a refused token, whatever the status")
			assert.NotErrorIs(t, err, ErrOutcomeUnknown)
			assert.EqualValues(t, 2, env.exchanges.Load(), "one re-exchange only")
			assert.Equal(t, 2, env.count("add_target"), "one repeat only")
		})
	}

	t.Run("another status is not a refused token", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("add_target", httpmock.NewStringResponder(http.StatusNotFound, body))
		err := env.c.Selarti.AddTarget(context.Background(), testTask, "@maria")
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, bubbleReason, ae.Message)
		assert.NotErrorIs(t, err, ErrUnauthorized)
		assert.Equal(t, 1, env.count("add_target"))
		assert.EqualValues(t, 1, env.exchanges.Load())
	})

	t.Run("the token echoed in the translation is redacted", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("add_target", func(r *http.Request) (*http.Response, error) {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			return httpmock.NewStringResponse(401, `{"error_class":"Unauthorized","args":{"code":"1x2"},"message":null,`+
				`"translation":"Invalid or expired token: bus|1747016926616x321975835076789400|`+tok+`"}`), nil
		})
		err := env.c.Selarti.AddTarget(context.Background(), testTask, "@maria")
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "Unauthorized: Invalid or expired token: bus|1747016926616x321975835076789400|[redacted]", ae.Message)
		assertNoSelartiSecret(t, "error", err.Error())
		assertNoSelartiSecret(t, "body", string(ae.Body))
	})
}

// A refusal that follows an attempt which may have been applied (a 503
// of a call safe to repeat) is not worth the repeat: the first attempt
// may have been applied with the token since refused.
func TestSelartiBubbleRefusalAfterAnAmbiguousAttempt(t *testing.T) {
	env := newSelartiEnv(t)
	env.mt.RegisterResponder(http.MethodGet, selartiBase+"report", seq(
		httpmock.NewStringResponder(503, `{}`),
		httpmock.NewStringResponder(401, bubbleUnauthorized(t)),
		httpmock.NewStringResponder(200, okAnswer),
	))
	err := env.c.Raw(context.Background(), RawRequest{Provider: ProviderSelarti, Method: http.MethodGet, Path: "/wf/report"}, nil)
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.ErrorIs(t, err, ErrOutcomeUnknown)
	assert.Equal(t, 2, env.mt.GetCallCountInfo()["GET "+selartiBase+"report"], "retried after the 503, not repeated after the refusal")
	assert.EqualValues(t, 1, env.exchanges.Load(), "no second exchange")
}
