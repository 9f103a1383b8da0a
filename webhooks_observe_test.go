package convo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deliveryWatcher records what a handler's Observer gets.
type deliveryWatcher struct {
	mu        sync.Mutex
	starts    []DeliveryInfo
	results   []DeliveryResult
	ctxOK     []bool // DeliveryDone got DeliveryStart's context
	durations []time.Duration
}

type deliveryKey struct{}

func (w *deliveryWatcher) observer() Observer {
	return Observer{
		DeliveryStart: func(ctx context.Context, d DeliveryInfo) context.Context {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.starts = append(w.starts, d)
			return context.WithValue(ctx, deliveryKey{}, len(w.starts))
		},
		DeliveryDone: func(ctx context.Context, d DeliveryResult) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.durations = append(w.durations, d.Duration)
			w.ctxOK = append(w.ctxOK, ctx.Value(deliveryKey{}) == len(w.starts))
			d.Duration = 0
			w.results = append(w.results, d)
		},
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestHandlerObserverSelarti(t *testing.T) {
	w := &deliveryWatcher{}
	var fromStart []any
	fail := false
	h := NewSelartiHandler(func(ctx context.Context, ev *SelartiEvent) error {
		fromStart = append(fromStart, ctx.Value(deliveryKey{}))
		if fail {
			return errors.New("relay down")
		}
		return nil
	}, WithHandlerObserver(w.observer()), WithHandlerLogger(discardLogger()))
	post := func(method string, body []byte) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, "/hooks/selarti?secret=query-SECRET", bytes.NewReader(body))
		req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	ok := readSelartiFixture(t)
	assert.Equal(t, 200, post(http.MethodPost, ok))
	assert.Equal(t, 200, post(http.MethodPost, ok), "a duplicate")
	assert.Equal(t, 200, post(http.MethodPost, selartiBody(t, map[string]any{"wh_type": "anything-at-all"})))
	assert.Equal(t, 400, post(http.MethodPost, []byte(`{"wh_type":`)))
	assert.Equal(t, 405, post(http.MethodGet, nil))
	fail = true
	assert.Equal(t, 500, post(http.MethodPost, selartiBody(t, map[string]any{"message_id": "m-2"})))

	assert.Equal(t, []DeliveryResult{
		{Provider: ProviderSelarti, EventType: "all_messages", Status: 200},
		{Provider: ProviderSelarti, EventType: "all_messages", Status: 200, Duplicate: true},
		{Provider: ProviderSelarti, EventType: "other", Status: 200},
		{Provider: ProviderSelarti, Status: 400},
		{Provider: ProviderSelarti, Status: 405},
		{Provider: ProviderSelarti, EventType: "all_messages", Status: 500},
	}, w.results)
	assert.Equal(t, []bool{true, true, true, true, true, true}, w.ctxOK)
	for _, d := range w.durations {
		assert.Positive(t, d)
	}
	assert.Equal(t, []any{1, 6}, fromStart, "the callback gets DeliveryStart's context")
	require.Len(t, w.starts, 6)
	assert.Equal(t, ProviderSelarti, w.starts[0].Provider)
	assert.Equal(t, http.MethodPost, w.starts[0].Method)
	assert.Equal(t, http.MethodGet, w.starts[4].Method)
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", w.starts[0].Header.Get("traceparent"))
	assert.NotContains(t, fmt.Sprintf("%#v %+v", w.starts, w.results), "SECRET")
}

func TestHandlerObserverTalkJS(t *testing.T) {
	const secret = "whsec_SECRET_1"
	w := &deliveryWatcher{}
	h := NewTalkJSHandler(secret, func(context.Context, *TalkJSEvent) error { return nil },
		WithHandlerObserver(w.observer()), WithHandlerLogger(discardLogger()))
	post := func(sig string) int {
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		body := []byte(talkjsMessageSent)
		if sig == "" {
			sig = SignTalkJSWebhook(secret, ts, body)
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks/talkjs", bytes.NewReader(body))
		req.Header.Set("X-TalkJS-Timestamp", ts)
		req.Header.Set("X-TalkJS-Signature", sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	assert.Equal(t, 200, post(""))
	assert.Equal(t, 401, post("00ff"))
	assert.Equal(t, []DeliveryResult{
		{Provider: ProviderTalkJS, EventType: "message.sent", Status: 200},
		{Provider: ProviderTalkJS, Status: 401},
	}, w.results)
	require.Len(t, w.starts, 2)
	// The signature is not a trace header: the observer cannot read it.
	assert.Empty(t, w.starts[0].Header.Get("X-TalkJS-Signature"))
	assert.Empty(t, w.starts[0].Header.Keys())
}

func TestDeliveryHeaderReadsTraceHeadersOnly(t *testing.T) {
	h := DeliveryHeader{http.Header{
		"Traceparent":   {"00-abc-def-01"},
		"Baggage":       {"k=v"},
		"Authorization": {"Bearer SECRET"},
		"X-Secret":      {"SECRET"},
	}}
	assert.Equal(t, "00-abc-def-01", h.Get("traceparent"))
	assert.Equal(t, "k=v", h.Get("BAGGAGE"))
	assert.Empty(t, h.Get("Authorization"))
	assert.Empty(t, h.Get("X-Secret"))
	assert.Equal(t, []string{"Traceparent", "Baggage"}, h.Keys())
	h.Set("Traceparent", "x") // read-only
	assert.Equal(t, "00-abc-def-01", h.Get("traceparent"))
}

// TestObserverHooksApartForClientsAndHandlers: a client uses only the call
// hooks, a handler only the delivery hooks.
func TestObserverHooksApartForClientsAndHandlers(t *testing.T) {
	deliveriesOnly := Observer{DeliveryDone: func(context.Context, DeliveryResult) {}}
	c, err := NewClient(WithTalkJS("app", "sk_x"), WithObserver(deliveriesOnly))
	require.NoError(t, err)
	assert.Nil(t, c.observer)

	callsOnly := Observer{CallDone: func(context.Context, CallResult) {}}
	h := NewSelartiHandler(func(context.Context, *SelartiEvent) error { return nil }, WithHandlerObserver(callsOnly))
	assert.Nil(t, h.(*webhookHandler).observer)
}
