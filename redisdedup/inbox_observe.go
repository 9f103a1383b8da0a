package redisdedup

import (
	"context"
	"time"

	"github.com/convokit/convo"
)

// WithInboxObserver sets the observer of an Inbox: its InboxKept,
// InboxRunStart and InboxRunDone hooks see each delivery kept and each
// run, with the inbox's depth (deliveries kept and not completed, dead
// letters left out) and the time its oldest was received, as Redis counts
// them (on every replica). otelconvo turns them into spans and metrics. A
// Store ignores it.
func WithInboxObserver(o convo.Observer) Option {
	return inboxOption(func(io *inboxOptions) { io.observer = &o })
}

// observeKept reports a delivery Add kept.
func (in *Inbox) observeKept(ctx context.Context, d convo.Delivery, recv time.Time, depth, oldest int64) {
	if o := in.opt.observer; o != nil && o.InboxKept != nil {
		o.InboxKept(ctx, convo.InboxInfo{
			Provider: d.Provider, Received: recv, Depth: int(depth), Oldest: unixMilli(oldest),
		})
	}
}

// observeRunStart reports a run about to start; the context it returns is
// the callback's.
func (in *Inbox) observeRunStart(ctx context.Context, d convo.Delivery, depth, oldest int64) context.Context {
	if o := in.opt.observer; o != nil && o.InboxRunStart != nil {
		if c := o.InboxRunStart(ctx, convo.InboxInfo{
			Provider: d.Provider, Attempt: d.Attempt, Received: d.Received,
			Depth: int(depth), Oldest: unixMilli(oldest),
		}); c != nil {
			return c
		}
	}
	return ctx
}

// observeRunDone reports a run that ended.
func (in *Inbox) observeRunDone(ctx context.Context, d convo.Delivery, o convo.InboxOutcome, took, retry time.Duration, depth, oldest int64) {
	if ob := in.opt.observer; ob != nil && ob.InboxRunDone != nil {
		ob.InboxRunDone(ctx, convo.InboxRunResult{
			Provider: d.Provider, Attempt: d.Attempt, Received: d.Received, Outcome: o,
			Duration: took, Retry: retry, Depth: int(depth), Oldest: unixMilli(oldest),
		})
	}
}

// unixMilli is the time of ms milliseconds since the epoch; zero for 0.
func unixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
