package convo

import (
	"context"
	"fmt"
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
