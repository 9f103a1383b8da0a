// Package otelconvo traces and measures the calls of a convo.Client with
// OpenTelemetry. It is a module of its own, so that the SDK does not
// depend on OpenTelemetry.
//
//	c, err := convo.NewClient(
//		convo.WithTalkJS(appID, secretKey),
//		convo.WithObserver(otelconvo.NewObserver()), // the global providers and propagator
//	)
//
// Every call is a span of kind client named after its operation
// ("talkjs.conversations.send_messages"), with one child span per attempt
// (each HTTP request sent) named "<method> <url.template>". The
// attempts carry the OpenTelemetry HTTP client attributes
// (http.request.method, url.template, server.address, server.port,
// http.response.status_code, http.request.resend_count, error.type) and
// the trace context, injected into each attempt's headers by the
// configured propagator. Both carry convo.provider, convo.operation and
// convo.outcome, a convo.Outcome: one vocabulary for calls and attempts
// (an attempt answered 503 is outcome_unknown, as is a call ending on it). No attribute holds a credential, a filled-in path or a
// query value.
//
// Metrics: convo.client.call.duration (histogram, seconds),
// convo.client.attempts (counter), convo.client.outcome_unknown (counter
// of calls that ended with convo.ErrOutcomeUnknown), and the HTTP client
// conventions' http.client.request.duration (histogram, seconds, one
// record per attempt, with http.request.method, url.template,
// server.address, server.port, http.response.status_code and error.type).
//
// Given to a webhook handler with convo.WithHandlerObserver, the same
// Observer makes each delivery a span of kind server ("talkjs.webhook"),
// the child of the trace context in the request's headers, with
// convo.event_type, http.response.status_code and convo.duplicate, and
// records convo.webhook.delivery.duration.
//
// Given to an inbox (convo.WithInboxObserver, or redisdedup's), it marks
// the delivery's span with a "convo.inbox.kept" event, makes each run of a
// kept delivery a span of kind consumer ("selarti.inbox.run", under the
// context of the inbox's Run: a trace of its own) with convo.provider,
// convo.inbox.attempt and convo.inbox.outcome (status Error when retried
// or dead-lettered), and records convo.inbox.kept (counter),
// convo.inbox.runs (counter by outcome), convo.inbox.run.duration, and
// the gauges convo.inbox.depth (deliveries kept and not completed) and
// convo.inbox.oldest.age (seconds since the oldest of them was received),
// as the inbox last reported them: give each inbox its own Observer.
package otelconvo

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/convokit/convo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/convokit/convo/otelconvo"

// The attributes of convo's own.
const (
	ProviderKey  = attribute.Key("convo.provider")   // "talkjs", "talqui", "selarti"
	OperationKey = attribute.Key("convo.operation")  // "talkjs.users.upsert"
	OutcomeKey   = attribute.Key("convo.outcome")    // a convo.Outcome
	AttemptsKey  = attribute.Key("convo.attempts")   // the attempts of a call
	RequestIDKey = attribute.Key("convo.request_id") // the provider's request id
	EventTypeKey = attribute.Key("convo.event_type") // a webhook event's type: "message.sent"
	DuplicateKey = attribute.Key("convo.duplicate")  // a webhook delivery handled before
	// InboxAttemptKey is the attempt of an inbox's run: 1 on the first.
	InboxAttemptKey = attribute.Key("convo.inbox.attempt")
	// InboxOutcomeKey is how an inbox's run ended: a convo.InboxOutcome.
	InboxOutcomeKey = attribute.Key("convo.inbox.outcome")
)

// Option configures NewObserver.
type Option func(*config)

type config struct {
	tp    trace.TracerProvider
	mp    metric.MeterProvider
	props propagation.TextMapPropagator
}

// WithTracerProvider sets the tracer provider (default: the global one).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider sets the meter provider (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithPropagators sets the propagator that writes the trace context into
// each attempt's headers (default: the global one, otel.GetTextMapPropagator).
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.props = p }
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		o(c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.props == nil {
		c.props = otel.GetTextMapPropagator()
	}
	return c
}

// durationBuckets are the boundaries OpenTelemetry recommends for HTTP
// durations, in seconds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

type observer struct {
	tracer   trace.Tracer
	props    propagation.TextMapPropagator
	duration metric.Float64Histogram
	request  metric.Float64Histogram // http.client.request.duration, one per attempt
	attempts metric.Int64Counter
	unknown  metric.Int64Counter
	delivery metric.Float64Histogram
	kept     metric.Int64Counter
	runs     metric.Int64Counter
	runTime  metric.Float64Histogram

	mu       sync.Mutex // guards the inbox's queue as last reported
	reported bool       // an inbox reported its queue
	depth    int64
	oldest   time.Time
}

// NewObserver gives the convo.Observer that traces and measures every
// call, every webhook delivery and every run of an inbox; pass it to
// convo.WithObserver, convo.WithHandlerObserver and convo.WithInboxObserver
// (or redisdedup's). The inbox gauges report the last inbox that spoke:
// give each inbox an observer of its own.
func NewObserver(opts ...Option) convo.Observer {
	cfg := newConfig(opts)
	meter := cfg.mp.Meter(ScopeName)
	o := &observer{
		tracer: cfg.tp.Tracer(ScopeName),
		props:  cfg.props,
	}
	var err error
	if o.duration, err = meter.Float64Histogram("convo.client.call.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...),
		metric.WithDescription("Duration of convo client calls, every attempt and wait included.")); err != nil {
		otel.Handle(err)
	}
	if o.request, err = meter.Float64Histogram("http.client.request.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...),
		metric.WithDescription("Duration of HTTP client requests: each attempt of a convo call.")); err != nil {
		otel.Handle(err)
	}
	if o.attempts, err = meter.Int64Counter("convo.client.attempts", metric.WithUnit("{attempt}"),
		metric.WithDescription("HTTP requests sent by convo client calls, retries included.")); err != nil {
		otel.Handle(err)
	}
	if o.unknown, err = meter.Int64Counter("convo.client.outcome_unknown", metric.WithUnit("{call}"),
		metric.WithDescription("convo client calls that ended with an outcome unknown: the provider may have acted.")); err != nil {
		otel.Handle(err)
	}
	if o.delivery, err = meter.Float64Histogram("convo.webhook.delivery.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...),
		metric.WithDescription("Duration of convo webhook deliveries, the callback included.")); err != nil {
		otel.Handle(err)
	}
	if o.kept, err = meter.Int64Counter("convo.inbox.kept", metric.WithUnit("{delivery}"),
		metric.WithDescription("Webhook deliveries an inbox kept (duplicates left out).")); err != nil {
		otel.Handle(err)
	}
	if o.runs, err = meter.Int64Counter("convo.inbox.runs", metric.WithUnit("{run}"),
		metric.WithDescription("Runs of kept webhook deliveries, by outcome.")); err != nil {
		otel.Handle(err)
	}
	if o.runTime, err = meter.Float64Histogram("convo.inbox.run.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...),
		metric.WithDescription("Duration of the runs of kept webhook deliveries.")); err != nil {
		otel.Handle(err)
	}
	depth, err := meter.Int64ObservableGauge("convo.inbox.depth", metric.WithUnit("{delivery}"),
		metric.WithDescription("Deliveries an inbox keeps and has not completed, dead letters left out."))
	if err != nil {
		otel.Handle(err)
	}
	age, err := meter.Float64ObservableGauge("convo.inbox.oldest.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest delivery an inbox keeps and has not completed; 0 when none."))
	if err != nil {
		otel.Handle(err)
	}
	if depth != nil && age != nil {
		if _, err := meter.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
			o.mu.Lock()
			defer o.mu.Unlock()
			if !o.reported {
				return nil
			}
			ob.ObserveInt64(depth, o.depth)
			a := 0.0
			if !o.oldest.IsZero() {
				a = max(0, time.Since(o.oldest).Seconds())
			}
			ob.ObserveFloat64(age, a)
			return nil
		}, depth, age); err != nil {
			otel.Handle(err)
		}
	}
	return convo.Observer{
		InboxKept:     o.inboxKept,
		InboxRunStart: o.inboxRunStart,
		InboxRunDone:  o.inboxRunDone,
		CallStart:     o.callStart,
		AttemptStart:  o.attemptStart,
		AttemptDone:   o.attemptDone,
		CallDone:      o.callDone,
		DeliveryStart: o.deliveryStart,
		DeliveryDone:  o.deliveryDone,
	}
}

// common are the attributes of both the call and its attempts.
func common(c convo.CallInfo) []attribute.KeyValue {
	return []attribute.KeyValue{
		ProviderKey.String(string(c.Provider)),
		OperationKey.String(c.Operation),
		semconv.HTTPRequestMethodKey.String(c.Method),
		semconv.URLTemplate(c.PathTemplate),
		semconv.ServerAddress(c.ServerAddress),
		semconv.ServerPort(c.ServerPort),
	}
}

func (o *observer) callStart(ctx context.Context, c convo.CallInfo) context.Context {
	ctx, _ = o.tracer.Start(ctx, c.Operation, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(common(c)...))
	return ctx
}

func (o *observer) attemptStart(ctx context.Context, a convo.AttemptInfo) context.Context {
	name := a.Call.Method + " " + a.Call.PathTemplate
	attrs := common(a.Call)
	if a.Attempt > 1 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(a.Attempt-1))
	}
	ctx, _ = o.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	o.props.Inject(ctx, headerCarrier{a.Header})
	return ctx
}

func (o *observer) attemptDone(ctx context.Context, a convo.AttemptResult) {
	span := trace.SpanFromContext(ctx)
	attrs := []attribute.KeyValue{OutcomeKey.String(string(a.Outcome))}
	if a.Status > 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(a.Status))
	}
	if a.RequestID != "" {
		attrs = append(attrs, RequestIDKey.String(a.RequestID))
	}
	if et := errorType(a.Status, a.Outcome); et != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(et))
		span.SetStatus(codes.Error, string(a.Outcome))
	}
	span.SetAttributes(attrs...)
	span.End()

	m := append(common(a.Call)[:3:3], OutcomeKey.String(string(a.Outcome)))
	if a.Status > 0 {
		m = append(m, semconv.HTTPResponseStatusCode(a.Status))
	}
	o.attempts.Add(ctx, 1, metric.WithAttributes(m...))

	// The HTTP client semantic conventions' own metric, with their
	// attributes (url.template is low in cardinality: it holds no id).
	r := common(a.Call)[2:6:6] // method, url.template, server.address, server.port
	if a.Status > 0 {
		r = append(r, semconv.HTTPResponseStatusCode(a.Status))
	}
	if et := errorType(a.Status, a.Outcome); et != "" {
		r = append(r, semconv.ErrorTypeKey.String(et))
	}
	o.request.Record(ctx, a.Duration.Seconds(), metric.WithAttributes(r...))
}

func (o *observer) callDone(ctx context.Context, c convo.CallResult) {
	span := trace.SpanFromContext(ctx)
	attrs := []attribute.KeyValue{OutcomeKey.String(string(c.Outcome)), AttemptsKey.Int(c.Attempts)}
	if c.Status > 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(c.Status))
	}
	if c.RequestID != "" {
		attrs = append(attrs, RequestIDKey.String(c.RequestID))
	}
	if c.Outcome != convo.OutcomeOK {
		attrs = append(attrs, semconv.ErrorTypeKey.String(string(c.Outcome)))
		span.SetStatus(codes.Error, string(c.Outcome))
	}
	span.SetAttributes(attrs...)
	span.End()

	m := append(common(c.Call)[:3:3], OutcomeKey.String(string(c.Outcome)))
	o.duration.Record(ctx, c.Duration.Seconds(), metric.WithAttributes(m...))
	if c.Outcome == convo.OutcomeUnknown {
		o.unknown.Add(ctx, 1, metric.WithAttributes(m[:3]...))
	}
}

// deliveryStart starts the server span of a webhook delivery, the child
// of a trace context the sender put in the headers, if any.
func (o *observer) deliveryStart(ctx context.Context, d convo.DeliveryInfo) context.Context {
	ctx = o.props.Extract(ctx, d.Header)
	ctx, _ = o.tracer.Start(ctx, string(d.Provider)+".webhook", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(ProviderKey.String(string(d.Provider)), semconv.HTTPRequestMethodKey.String(d.Method)))
	return ctx
}

func (o *observer) deliveryDone(ctx context.Context, d convo.DeliveryResult) {
	m := []attribute.KeyValue{
		ProviderKey.String(string(d.Provider)),
		EventTypeKey.String(d.EventType),
		semconv.HTTPResponseStatusCode(d.Status),
		DuplicateKey.Bool(d.Duplicate),
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(m[1:]...)
	if d.Status >= 500 {
		// A server span is an error only for a 5xx: a 4xx is the
		// sender's fault.
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(d.Status)))
		span.SetStatus(codes.Error, strconv.Itoa(d.Status))
	}
	span.End()
	o.delivery.Record(ctx, d.Duration.Seconds(), metric.WithAttributes(m...))
}

// queue keeps the inbox's queue as last reported, for the gauges.
func (o *observer) queue(depth int, oldest time.Time) {
	if depth < 0 {
		return // the inbox does not know it
	}
	o.mu.Lock()
	o.reported, o.depth, o.oldest = true, int64(depth), oldest
	o.mu.Unlock()
}

// inboxKept marks the delivery's span (the handler's) and counts it.
func (o *observer) inboxKept(ctx context.Context, k convo.InboxInfo) {
	p := ProviderKey.String(string(k.Provider))
	trace.SpanFromContext(ctx).AddEvent("convo.inbox.kept")
	o.kept.Add(ctx, 1, metric.WithAttributes(p))
	o.queue(k.Depth, k.Oldest)
}

// inboxRunStart starts the span of a run of a kept delivery: a consumer
// span under the context of the inbox's Run (a new trace unless Run's
// context has a span).
func (o *observer) inboxRunStart(ctx context.Context, r convo.InboxInfo) context.Context {
	ctx, _ = o.tracer.Start(ctx, string(r.Provider)+".inbox.run", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(ProviderKey.String(string(r.Provider)), InboxAttemptKey.Int(r.Attempt)))
	o.queue(r.Depth, r.Oldest)
	return ctx
}

func (o *observer) inboxRunDone(ctx context.Context, r convo.InboxRunResult) {
	m := []attribute.KeyValue{ProviderKey.String(string(r.Provider)), InboxOutcomeKey.String(string(r.Outcome))}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(m[1])
	if r.Outcome == convo.InboxRetried || r.Outcome == convo.InboxDeadLettered {
		span.SetAttributes(semconv.ErrorTypeKey.String(string(r.Outcome)))
		span.SetStatus(codes.Error, string(r.Outcome))
	}
	span.End()
	o.runs.Add(ctx, 1, metric.WithAttributes(m...))
	o.runTime.Record(ctx, r.Duration.Seconds(), metric.WithAttributes(m...))
	o.queue(r.Depth, r.Oldest)
}

// errorType is an attempt's error.type as the HTTP conventions have it:
// the status code for a status that is not a success (the client follows
// no redirect), the outcome when no
// response came or a 2xx could not be read; "" for a success.
func errorType(status int, out convo.Outcome) string {
	switch {
	case status >= 300:
		return strconv.Itoa(status)
	case out != convo.OutcomeOK:
		return string(out)
	}
	return ""
}

// headerCarrier lets a propagator write into an attempt's headers; it
// reads nothing.
type headerCarrier struct{ h convo.AttemptHeader }

func (c headerCarrier) Get(string) string     { return "" }
func (c headerCarrier) Set(key, value string) { c.h.Set(key, value) }
func (c headerCarrier) Keys() []string        { return nil }
