package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/convokit/convo"
)

const (
	manyUsers  = 10_000
	naiveUsers = 2_000 // the naive loop upserts this many and is scaled to manyUsers
	addLatency = 5 * time.Millisecond
)

func makeUsers(n int) map[string]convo.UserUpdate {
	users := make(map[string]convo.UserUpdate, n)
	for i := range n {
		id := "user_" + strconv.Itoa(i)
		users[id] = convo.UserUpdate{Name: "User " + strconv.Itoa(i), Email: []string{id + "@example.com"}, Role: "buyer"}
	}
	return users
}

// BenchmarkUpsertMany writes 10,000 users through a server that takes
// 5 ms for every request: the SDK's UpsertMany (PUT /users, 100 users a
// request, a few requests at once) against a naive loop of single
// Upserts. The naive loop writes 2,000 users (10 s) and its time is
// scaled ×5; both report ms/10kusers.
func BenchmarkUpsertMany(b *testing.B) {
	api := &fakeAPI{latency: addLatency}
	srv := newServer(b, api)
	c := newSDK(b, srv.URL)
	ctx := context.Background()

	b.Run("client=sdk/users="+strconv.Itoa(manyUsers), func(b *testing.B) {
		users := makeUsers(manyUsers)
		b.ReportAllocs()
		start := api.requests.Load()
		for b.Loop() {
			if err := c.Users.UpsertMany(ctx, users); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10kusers")
		b.ReportMetric(float64(api.requests.Load()-start)/float64(b.N), "requests/op")
	})

	b.Run("client=naive/users="+strconv.Itoa(naiveUsers), func(b *testing.B) {
		users := makeUsers(naiveUsers)
		b.ReportAllocs()
		start := api.requests.Load()
		for b.Loop() {
			for id, u := range users {
				if err := c.Users.Upsert(ctx, id, u); err != nil {
					b.Fatal(err)
				}
			}
		}
		scale := float64(manyUsers) / float64(naiveUsers)
		b.ReportMetric(scale*float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10kusers")
		b.ReportMetric(float64(api.requests.Load()-start)/float64(b.N), "requests/op")
	})
}
