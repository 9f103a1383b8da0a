package redisdedup_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/redisdedup"
	"github.com/redis/go-redis/v9"
)

// Every replica of the receiver builds its handler on the same Redis: a
// redelivery that lands on another replica is then answered 200 (or 409
// while the first delivery runs) without a second call. Building the store
// and the handler sends nothing to Redis; the first delivery does.
func Example() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"redis:6379"}})
	defer rdb.Close()
	store := redisdedup.New(rdb,
		redisdedup.WithLease(time.Minute), // longer than the callback can take
	)
	mux := http.NewServeMux()
	mux.Handle("/hooks/selarti", convo.NewSelartiHandler(func(ctx context.Context, ev *convo.SelartiEvent) error {
		return relay(ctx, ev)
	}, convo.WithDedupStore(store)))
	_ = mux // http.ListenAndServe(":8080", mux)

	// Output:
}

func relay(context.Context, *convo.SelartiEvent) error { return nil }

// The Selarti side of a bridge to TalkJS on a Redis inbox: each answer of
// Selarti's AI (delivered once, never retried) is kept in Redis and
// answered 200; every replica runs the inbox, which posts each answer into
// its TalkJS conversation until TalkJS takes it, one at a time and in
// order per conversation, over TalkJS outages and replica restarts.
//
// A run can start twice only when the replica running it died mid-run
// (its lease ends and another replica runs it again): the message's
// idempotency key, Selarti's message id, makes TalkJS drop the second
// send. This example needs a Redis and TalkJS credentials, so it is only
// compiled.
func ExampleNewInbox() {
	ctx := context.Background() // in a program: ended by SIGTERM
	c, err := convo.NewClient(convo.WithTalkJS(os.Getenv("TALKJS_APP_ID"), os.Getenv("TALKJS_SECRET_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"redis:6379"}})
	defer rdb.Close()
	inbox := redisdedup.NewInbox(rdb,
		redisdedup.WithLease(30*time.Second),                  // a dead replica's runs wait this long
		redisdedup.WithInboxBackoff(time.Second, time.Minute), // TalkJS down: retried up to every minute
		redisdedup.WithInboxAttempts(20),                      // then a dead letter: convo-inbox replays it
	)

	relay := func(ctx context.Context, ev *convo.SelartiEvent) error {
		if ev.ExternalChatID == "" {
			return fmt.Errorf("an answer without external_chat_id: %w", convo.ErrPermanent)
		}
		m := convo.UserMessage("selarti-bot", ev.MessageText)
		if ev.MessageID != "" { // always, for a delivery the inbox kept
			m.IdempotencyKey = "selarti-" + ev.MessageID // a second run sends nothing twice
		}
		_, err := c.Conversations.SendMessages(ctx, ev.ExternalChatID, m)
		if errors.Is(err, convo.ErrValidation) || errors.Is(err, convo.ErrNotFound) {
			return fmt.Errorf("TalkJS refuses it: %w (%w)", err, convo.ErrPermanent)
		}
		return err // anything else: run again after the backoff
	}
	http.Handle("/hooks/selarti", convo.NewSelartiHandler(relay, convo.WithInbox(inbox)))

	go func() {
		if err := inbox.Run(ctx); err != nil { // until ctx ends; then it gives its runs back
			log.Print(err)
		}
	}()
	// log.Fatal(http.ListenAndServe(":8080", nil))
}
