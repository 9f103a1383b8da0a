package otelconvo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/otelconvo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	talkjsSecret = "sk_test_SECRET_otel_5e2d"
	talquiToken  = "tq_tok_SECRET_otel_7f3a"
)

// setup is a client with otelconvo on in-memory exporters, against a
// server that answers each request with the next of answers (the last for
// good) and records each request's traceparent.
type setup struct {
	c        *convo.Client
	obs      convo.Observer
	spans    *tracetest.SpanRecorder
	tp       *sdktrace.TracerProvider
	metrics  *sdkmetric.ManualReader
	port     int
	mu       sync.Mutex
	parents  []string
	requests int
}

func newSetup(t *testing.T, answers ...int) *setup {
	s := &setup{spans: tracetest.NewSpanRecorder(), metrics: sdkmetric.NewManualReader()}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.metrics))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.parents = append(s.parents, r.Header.Get("Traceparent"))
		code := answers[min(s.requests, len(answers)-1)]
		s.requests++
		s.mu.Unlock()
		w.Header().Set("X-Request-Id", "req-"+strconv.Itoa(s.requests))
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"contact":{},"session":{},"message":{}}`))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	s.port, _ = strconv.Atoi(u.Port())
	s.obs = otelconvo.NewObserver(otelconvo.WithTracerProvider(s.tp), otelconvo.WithMeterProvider(mp),
		otelconvo.WithPropagators(propagation.TraceContext{}))
	var err error
	s.c, err = convo.NewClient(
		convo.WithTalkJS("app1", talkjsSecret), convo.WithTalkJSURL(srv.URL),
		convo.WithTalqui("tenant-1", convo.PluginConnection{ID: "pc-wa", Token: talquiToken}), convo.WithTalquiURL(srv.URL),
		convo.WithRetry(convo.RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}),
		convo.WithObserver(s.obs),
	)
	require.NoError(t, err)
	return s
}

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func TestRetriedCallIsOneSpanWithTwoAttempts(t *testing.T) {
	s := newSetup(t, 503, 200)
	ctx, parent := s.tp.Tracer("test").Start(context.Background(), "test")
	require.NoError(t, s.c.Users.Upsert(ctx, "user-4711", convo.UserUpdate{Name: "Alice"}))
	parent.End()

	spans := s.spans.Ended()
	require.Len(t, spans, 4, "two attempts, the call, the test's")
	a1, a2, call := spans[0], spans[1], spans[2]
	port := strconv.Itoa(s.port)

	assert.Equal(t, "talkjs.users.upsert", call.Name())
	assert.Equal(t, trace.SpanKindClient, call.SpanKind())
	assert.Equal(t, parent.SpanContext().SpanID(), call.Parent().SpanID())
	assert.Equal(t, codes.Unset, call.Status().Code)
	assert.Equal(t, map[string]string{
		"convo.provider": "talkjs", "convo.operation": "talkjs.users.upsert", "http.request.method": "PUT",
		"url.template": "/v1/{appID}/users/{userID}", "server.address": "127.0.0.1", "server.port": port,
		"convo.outcome": "ok", "convo.attempts": "2", "http.response.status_code": "200", "convo.request_id": "req-2",
	}, attrs(call.Attributes()))

	for _, a := range []sdktrace.ReadOnlySpan{a1, a2} {
		assert.Equal(t, "PUT /v1/{appID}/users/{userID}", a.Name())
		assert.Equal(t, trace.SpanKindClient, a.SpanKind())
		assert.Equal(t, call.SpanContext().SpanID(), a.Parent().SpanID())
		assert.Equal(t, call.SpanContext().TraceID(), a.SpanContext().TraceID())
	}
	assert.Equal(t, map[string]string{
		"convo.provider": "talkjs", "convo.operation": "talkjs.users.upsert", "http.request.method": "PUT",
		"url.template": "/v1/{appID}/users/{userID}", "server.address": "127.0.0.1", "server.port": port,
		"convo.outcome": "outcome_unknown", "http.response.status_code": "503", "error.type": "503", "convo.request_id": "req-1",
	}, attrs(a1.Attributes()))
	assert.Equal(t, codes.Error, a1.Status().Code)
	assert.Equal(t, map[string]string{
		"convo.provider": "talkjs", "convo.operation": "talkjs.users.upsert", "http.request.method": "PUT",
		"url.template": "/v1/{appID}/users/{userID}", "server.address": "127.0.0.1", "server.port": port,
		"http.request.resend_count": "1", "convo.outcome": "ok", "http.response.status_code": "200", "convo.request_id": "req-2",
	}, attrs(a2.Attributes()))
	assert.Equal(t, codes.Unset, a2.Status().Code)

	// Each attempt sent its own span as the parent to the provider.
	tid := call.SpanContext().TraceID().String()
	assert.Equal(t, []string{
		"00-" + tid + "-" + a1.SpanContext().SpanID().String() + "-01",
		"00-" + tid + "-" + a2.SpanContext().SpanID().String() + "-01",
	}, s.parents)

	// Metrics: one call, two attempts, no outcome unknown.
	rm := collect(t, s)
	op := "convo.operation=talkjs.users.upsert "
	tail := " convo.provider=talkjs http.request.method=PUT"
	assert.Equal(t, map[string]string{
		"convo.client.call.duration " + op + "convo.outcome=ok" + tail:                                                                                                                                "count 1",
		"convo.client.attempts " + op + "convo.outcome=outcome_unknown" + tail + " http.response.status_code=503":                                                                                     "1",
		"convo.client.attempts " + op + "convo.outcome=ok" + tail + " http.response.status_code=200":                                                                                                  "1",
		"http.client.request.duration error.type=503 http.request.method=PUT http.response.status_code=503 server.address=127.0.0.1 server.port=" + port + " url.template=/v1/{appID}/users/{userID}": "count 1",
		"http.client.request.duration http.request.method=PUT http.response.status_code=200 server.address=127.0.0.1 server.port=" + port + " url.template=/v1/{appID}/users/{userID}":                "count 1",
	}, rm)
}

func TestOutcomeUnknownAndValidation(t *testing.T) {
	s := newSetup(t, 500)
	ctx := context.Background()
	_, err := s.c.Sessions.Start(ctx, convo.WhatsAppBusiness{Phone: "+55 27 99999-9999", Text: "Hi"})
	require.ErrorIs(t, err, convo.ErrOutcomeUnknown)
	_, err = s.c.Sessions.Start(ctx, convo.WhatsAppBusiness{Phone: "12", Text: "Hi"})
	require.ErrorIs(t, err, convo.ErrValidation)

	spans := s.spans.Ended()
	require.Len(t, spans, 3, "the send and its one attempt, the refused call")
	assert.Equal(t, "talqui.sessions.start", spans[1].Name())
	a := attrs(spans[1].Attributes())
	assert.Equal(t, "outcome_unknown", a["convo.outcome"])
	assert.Equal(t, "outcome_unknown", a["error.type"])
	assert.Equal(t, "500", a["http.response.status_code"])
	assert.Equal(t, codes.Error, spans[1].Status().Code)
	assert.Equal(t, "POST /tenants/{tenantID}/sessions", spans[0].Name())

	refused := spans[2]
	assert.Equal(t, "talqui.sessions.start", refused.Name())
	assert.Equal(t, map[string]string{
		"convo.provider": "talqui", "convo.operation": "talqui.sessions.start", "http.request.method": "POST",
		"url.template": "/tenants/{tenantID}/sessions", "server.address": "127.0.0.1", "server.port": strconv.Itoa(s.port),
		"convo.outcome": "validation", "convo.attempts": "0", "error.type": "validation",
	}, attrs(refused.Attributes()))
	assert.Equal(t, 1, s.requests, "the refused call sent nothing")

	op := "convo.operation=talqui.sessions.start "
	tail := " convo.provider=talqui http.request.method=POST"
	assert.Equal(t, map[string]string{
		"convo.client.call.duration " + op + "convo.outcome=outcome_unknown" + tail:                               "count 1",
		"convo.client.call.duration " + op + "convo.outcome=validation" + tail:                                    "count 1",
		"convo.client.attempts " + op + "convo.outcome=outcome_unknown" + tail + " http.response.status_code=500": "1",
		"convo.client.outcome_unknown convo.operation=talqui.sessions.start" + tail:                               "1",
		"http.client.request.duration error.type=500 http.request.method=POST http.response.status_code=500 server.address=127.0.0.1 server.port=" + strconv.Itoa(s.port) + " url.template=/tenants/{tenantID}/sessions": "count 1",
	}, collect(t, s))
}

// TestNoSecretNoFilledPath: no span name or attribute, no metric
// attribute holds a credential, an id of the path or a query value.
func TestNoSecretNoFilledPath(t *testing.T) {
	s := newSetup(t, 503, 200, 401)
	ctx := context.Background()
	_ = s.c.Users.Upsert(ctx, "user-4711", convo.UserUpdate{Name: "Alice"})
	for _, err := range s.c.Conversations.Messages(ctx, "conv-0815", &convo.ListOptions{StartingAfter: "cursor-99"}) {
		_ = err
	}
	_, _ = s.c.Sessions.Start(ctx, convo.WhatsAppBusiness{ConnectionID: talquiToken, Phone: "+55 27 99999-9999", Text: "Hi"})

	var all strings.Builder
	for _, sp := range s.spans.Ended() {
		fmt.Fprintln(&all, sp.Name(), attrs(sp.Attributes()), sp.Status())
	}
	for k := range collect(t, s) {
		fmt.Fprintln(&all, k)
	}
	require.Contains(t, all.String(), "/v1/{appID}/conversations/{conversationID}/messages")
	for _, bad := range []string{talkjsSecret, talquiToken, "Bearer", "PluginConnection", "user-4711", "conv-0815", "cursor-99", "app1", "tenant-1"} {
		assert.NotContains(t, all.String(), bad)
	}
}

// collect renders every data point as "<metric> <attrs, sorted>" → "<value>" (for
// a histogram, "count N").
func collect(t *testing.T, s *setup) map[string]string {
	var rm metricdata.ResourceMetrics
	require.NoError(t, s.metrics.Collect(context.Background(), &rm))
	out := map[string]string{}
	key := func(name string, set attribute.Set) string {
		var b strings.Builder
		b.WriteString(name)
		for _, kv := range set.ToSlice() {
			fmt.Fprintf(&b, " %s=%s", kv.Key, kv.Value.String())
		}
		return b.String()
	}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, otelconvo.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				assert.Equal(t, "s", m.Unit)
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = fmt.Sprintf("count %d", p.Count)
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = strconv.FormatInt(p.Value, 10)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = strconv.FormatInt(p.Value, 10)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = strconv.FormatFloat(p.Value, 'g', -1, 64)
				}
			default:
				t.Fatalf("unexpected metric %s %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// TestWebhookDeliveryIsAServerSpan: a delivery is a server span, the child
// of the sender's trace context, and the calls its callback makes are its
// children.
func TestWebhookDeliveryIsAServerSpan(t *testing.T) {
	s := newSetup(t, 200)
	h := convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
		return s.c.Users.Upsert(ctx, "user-4711", convo.UserUpdate{Name: "Alice"})
	}, convo.WithHandlerObserver(s.obs), convo.WithHandlerLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	post := func(body string) int {
		req := httptest.NewRequest(http.MethodPost, "/hooks/selarti", strings.NewReader(body))
		req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	const ev = `{"wh_type":"all_messages","message_id":"m-1","message_type":"bot","message_text":"Hi","external_chat_id":"chat-1"}`
	require.Equal(t, 200, post(ev))
	require.Equal(t, 200, post(ev), "a duplicate")
	require.Equal(t, 400, post(`{`))

	spans := s.spans.Ended()
	require.Len(t, spans, 5, "attempt, call, delivery; the duplicate; the bad body")
	attempt, call, d := spans[0], spans[1], spans[2]
	assert.Equal(t, "selarti.webhook", d.Name())
	assert.Equal(t, trace.SpanKindServer, d.SpanKind())
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", d.SpanContext().TraceID().String())
	assert.Equal(t, "b7ad6b7169203331", d.Parent().SpanID().String())
	assert.True(t, d.Parent().IsRemote())
	assert.Equal(t, map[string]string{
		"convo.provider": "selarti", "http.request.method": "POST", "convo.event_type": "all_messages",
		"http.response.status_code": "200", "convo.duplicate": "false",
	}, attrs(d.Attributes()))
	assert.Equal(t, codes.Unset, d.Status().Code)
	assert.Equal(t, d.SpanContext().SpanID(), call.Parent().SpanID(), "the callback's call is a child of the delivery")
	assert.Equal(t, call.SpanContext().SpanID(), attempt.Parent().SpanID())
	assert.Equal(t, "true", attrs(spans[3].Attributes())["convo.duplicate"])
	assert.Equal(t, map[string]string{
		"convo.provider": "selarti", "http.request.method": "POST", "convo.event_type": "",
		"http.response.status_code": "400", "convo.duplicate": "false",
	}, attrs(spans[4].Attributes()))
	assert.Equal(t, codes.Unset, spans[4].Status().Code, "a 4xx is the sender's fault")

	rm := collect(t, s)
	const dur = "convo.webhook.delivery.duration convo.duplicate=%s convo.event_type=%s convo.provider=selarti http.response.status_code=%d"
	assert.Equal(t, "count 1", rm[fmt.Sprintf(dur, "false", "all_messages", 200)])
	assert.Equal(t, "count 1", rm[fmt.Sprintf(dur, "true", "all_messages", 200)])
	assert.Equal(t, "count 1", rm[fmt.Sprintf(dur, "false", "", 400)])

	failing := convo.NewSelartiHandler(func(context.Context, *convo.SelartiEvent) error { return errors.New("down") },
		convo.WithHandlerObserver(s.obs), convo.WithHandlerLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	rec := httptest.NewRecorder()
	failing.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks/selarti", strings.NewReader(ev)))
	require.Equal(t, 500, rec.Code)
	last := s.spans.Ended()[5]
	assert.Equal(t, codes.Error, last.Status().Code)
	assert.Equal(t, "500", attrs(last.Attributes())["error.type"])
}

// TestInboxRunsAreSpansAndMetrics: a kept delivery marks the delivery's
// span; each run of it is a consumer span, counted by outcome; the
// gauges follow the inbox's queue.
func TestInboxRunsAreSpansAndMetrics(t *testing.T) {
	s := newSetup(t, 200)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := convo.NewMemoryInbox(convo.WithInboxObserver(s.obs), convo.WithInboxLogger(log),
		convo.WithInboxBackoff(time.Millisecond, time.Millisecond))
	done := make(chan struct{})
	h := convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
		d, _ := convo.DeliveryFromContext(ctx)
		if d.Attempt == 1 {
			return errors.New("talkjs: 503")
		}
		defer close(done)
		return s.c.Users.Upsert(ctx, "user-4711", convo.UserUpdate{Name: "Alice"})
	}, convo.WithInbox(in), convo.WithHandlerObserver(s.obs), convo.WithHandlerLogger(log))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks/selarti", strings.NewReader(
		`{"wh_type":"all_messages","message_id":"m-1","message_type":"bot","message_text":"Hi","external_chat_id":"chat-1"}`)))
	require.Equal(t, 200, rec.Code)

	spans := s.spans.Ended()
	require.Len(t, spans, 1)
	require.Len(t, spans[0].Events(), 1)
	assert.Equal(t, "convo.inbox.kept", spans[0].Events()[0].Name)
	rm := collect(t, s)
	assert.Equal(t, "1", rm["convo.inbox.kept convo.provider=selarti"])
	assert.Equal(t, "1", rm["convo.inbox.depth"])
	age, err := strconv.ParseFloat(rm["convo.inbox.oldest.age"], 64)
	require.NoError(t, err)
	assert.Greater(t, age, 0.0)

	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- in.Run(ctx) }()
	<-done
	require.Eventually(t, func() bool { return len(s.spans.Ended()) == 5 }, 10*time.Second, time.Millisecond,
		"the delivery, two runs, the call and its attempt")
	cancel()
	require.NoError(t, <-ran)

	spans = s.spans.Ended()
	run1, attempt, call, run2 := spans[1], spans[2], spans[3], spans[4]
	for i, r := range []sdktrace.ReadOnlySpan{run1, run2} {
		assert.Equal(t, "selarti.inbox.run", r.Name())
		assert.Equal(t, trace.SpanKindConsumer, r.SpanKind())
		assert.False(t, r.Parent().IsValid(), "a run starts a trace of its own")
		assert.Equal(t, strconv.Itoa(i+1), attrs(r.Attributes())["convo.inbox.attempt"])
	}
	assert.Equal(t, map[string]string{"convo.provider": "selarti", "convo.inbox.attempt": "1",
		"convo.inbox.outcome": "retried", "error.type": "retried"}, attrs(run1.Attributes()))
	assert.Equal(t, codes.Error, run1.Status().Code)
	assert.Equal(t, map[string]string{"convo.provider": "selarti", "convo.inbox.attempt": "2",
		"convo.inbox.outcome": "completed"}, attrs(run2.Attributes()))
	assert.Equal(t, codes.Unset, run2.Status().Code)
	assert.Equal(t, run2.SpanContext().SpanID(), call.Parent().SpanID(), "the callback's call is a child of its run")
	assert.Equal(t, call.SpanContext().SpanID(), attempt.Parent().SpanID())

	rm = collect(t, s)
	assert.Equal(t, "1", rm["convo.inbox.runs convo.inbox.outcome=retried convo.provider=selarti"])
	assert.Equal(t, "1", rm["convo.inbox.runs convo.inbox.outcome=completed convo.provider=selarti"])
	assert.Equal(t, "count 1", rm["convo.inbox.run.duration convo.inbox.outcome=completed convo.provider=selarti"])
	assert.Equal(t, "0", rm["convo.inbox.depth"])
	assert.Equal(t, "0", rm["convo.inbox.oldest.age"])
}
