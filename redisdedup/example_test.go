package redisdedup_test

import (
	"context"
	"net/http"
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
