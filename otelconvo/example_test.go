package otelconvo_test

import (
	"context"
	"fmt"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
	"github.com/convokit/convo/otelconvo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func ExampleNewObserver() {
	// Your program sets its providers and propagator once, usually as the
	// globals (otel.SetTracerProvider, …), which NewObserver takes by
	// default. Here the spans go to memory, to print them.
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	srv := convotest.NewServer()
	defer srv.Close()
	srv.Inject(convotest.Fault{Status: 503}) // the first try fails, the retry succeeds
	c, _ := srv.Client(convo.WithObserver(otelconvo.NewObserver(
		otelconvo.WithTracerProvider(tp),
		otelconvo.WithPropagators(propagation.TraceContext{}),
	)))

	err := c.Users.Upsert(context.Background(), "12081", convo.UserUpdate{Name: "Alice"})
	fmt.Println("upsert:", err)
	for _, s := range spans.Ended() {
		fmt.Println(s.Name(), s.Status().Code)
	}
	// Output:
	// upsert: <nil>
	// PUT /v1/{appID}/users/{userID} Error
	// PUT /v1/{appID}/users/{userID} Unset
	// talkjs.users.upsert Unset
}
