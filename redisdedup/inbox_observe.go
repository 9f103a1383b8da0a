package redisdedup

import (
	"context"
	"time"

	"github.com/convokit/convo"
)

// TODO(inboxcore): replaced by convo.Observer's inbox events once they land.
type observerStub struct{}

type runOutcome string

const (
	inboxCompleted    runOutcome = "completed"
	inboxRetried      runOutcome = "retried"
	inboxDeadLettered runOutcome = "dead_lettered"
	inboxInterrupted  runOutcome = "interrupted"
)

func (in *Inbox) observeKept(ctx context.Context, d convo.Delivery, recv time.Time, depth, oldest int64) {
}

func (in *Inbox) observeRunStart(ctx context.Context, d convo.Delivery) context.Context { return ctx }

func (in *Inbox) observeRunDone(ctx context.Context, d convo.Delivery, o runOutcome, took, retry time.Duration, depth, oldest int64) {
}
