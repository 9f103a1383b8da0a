package convo

import (
	"context"
	"time"
)

// This file holds the inbox's contract: Delivery, the Inbox interface and
// the context a callback run by an inbox gets. WithInbox and the in-process
// MemoryInbox build on it; redisdedup.Inbox implements it on Redis.

// Delivery is one webhook delivery as an Inbox keeps it: verified, decoded
// far enough to know its id and ordering key, and with its body exactly as
// received, so that a run on any replica decodes the same event.
type Delivery struct {
	// Provider is the handler that received it: ProviderSelarti or
	// ProviderTalkJS.
	Provider Provider
	// ID is what the handler dedups on: Selarti's message_id, TalkJS's
	// event id. An inbox keeps one delivery per Provider and ID.
	ID string
	// Key orders deliveries: those with the same Key run one at a time, in
	// the order they were added. It is Selarti's external_chat_id or the
	// TalkJS conversation id; "" (TalkJS user.* events) orders nothing.
	Key string
	// Body is the verified request body, exactly as received.
	Body []byte
	// Received is when the handler received it.
	Received time.Time
	// Attempt is set by the inbox when it runs the delivery: 1 on the
	// first run, counting up on each repeat (and on a Replay).
	Attempt int
}

// Inbox keeps webhook deliveries durably and runs each until one run
// succeeds. A handler built WithInbox answers a delivery once Add has
// returned, and the inbox runs the callback from there, again after a
// failure, in order per Key. Its methods may be called concurrently.
type Inbox interface {
	// Add keeps d durably; added is false when the same Provider and ID
	// were kept before (a redelivery), in which case nothing changes.
	Add(ctx context.Context, d Delivery) (added bool, err error)
	// Handle sets how kept deliveries of provider p run; WithInbox calls
	// it when the handler is built. A run that returns nil completes the
	// delivery; an error makes it run again later, and one matching
	// ErrPermanent makes it a dead letter at once.
	Handle(p Provider, fn func(ctx context.Context, d Delivery) error)
}

type inboxDeliveryKey struct{}

// DeliveryFromContext gives the Delivery a callback run by an Inbox is
// running, Attempt included. ok is false in a callback the handler runs
// inline: without an inbox, for a delivery without an id, and for one it
// handles fail-open because the inbox's Add failed.
func DeliveryFromContext(ctx context.Context) (d Delivery, ok bool) {
	d, ok = ctx.Value(inboxDeliveryKey{}).(Delivery)
	return d, ok
}

// contextWithDelivery is the context a callback run for d gets.
func contextWithDelivery(ctx context.Context, d Delivery) context.Context {
	return context.WithValue(ctx, inboxDeliveryKey{}, d)
}
