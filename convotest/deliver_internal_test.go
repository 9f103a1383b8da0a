package convotest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
)

// stuckHook is a webhook handler that never answers until the test ends;
// started gets a value when a delivery reaches it.
func stuckHook(t *testing.T) (hook *httptest.Server, started chan struct{}) {
	release := make(chan struct{})
	started = make(chan struct{}, 1)
	hook = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
	}))
	t.Cleanup(func() { close(release); hook.Close() })
	return hook, started
}

// DeliverSelarti to a handler that never answers ends after its own
// timeout, even with a context that never ends.
func TestDeliverSelartiTimesOut(t *testing.T) {
	defer func(d time.Duration) { selartiWebhookTimeout = d }(selartiWebhookTimeout)
	selartiWebhookTimeout = 100 * time.Millisecond
	hook, _ := stuckHook(t)
	srv := NewServer()
	defer srv.Close()
	_, err := srv.DeliverSelarti(context.Background(), hook.URL, convo.SelartiEvent{Type: convo.SelartiAllMessages, MessageID: "m-1"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// Close ends a DeliverSelarti under way.
func TestCloseEndsDeliverSelarti(t *testing.T) {
	hook, started := stuckHook(t)
	srv := NewServer()
	got := make(chan error, 1)
	go func() {
		_, err := srv.DeliverSelarti(context.Background(), hook.URL, convo.SelartiEvent{Type: convo.SelartiAllMessages, MessageID: "m-1"})
		got <- err
	}()
	<-started // Close once the delivery has reached the handler
	srv.Close()
	select {
	case err := <-got:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the delivery")
	}
}
