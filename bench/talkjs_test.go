package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/convokit/convo"
)

var aliceEmail = []string{"alice@example.com"}

// BenchmarkUpsert: PUT /v1/{app}/users/{id} with a UserUpsert body
// (talkjs.md §3.1), answered {}.
func BenchmarkUpsert(b *testing.B) {
	srv := newServer(b, &fakeAPI{})
	runClients(b, upsertOps(newTrio(b, srv.URL)))
}

func TestAgreeUpsert(t *testing.T) { agree(t, upsertOps) }

func upsertOps(t *trio) []clientOp {
	return []clientOp{
		{"nethttp", func(ctx context.Context) error {
			return t.nh.upsertUser(ctx, userID, &nhUser{Name: "Alice", Email: aliceEmail, Role: "buyer"})
		}},
		{"sdk", func(ctx context.Context) error {
			return t.sdk.Users.Upsert(ctx, userID, convo.UserUpdate{Name: "Alice", Email: aliceEmail, Role: "buyer"})
		}},
		{"resty", func(ctx context.Context) error {
			return t.rs.upsertUser(ctx, userID, &nhUser{Name: "Alice", Email: aliceEmail, Role: "buyer"})
		}},
	}
}

const hello = "Hello Alice!"

// BenchmarkSendMessage: POST /v1/{app}/conversations/{id}/messages with
// [{"text","sender","type":"UserMessage","idempotencyKey"}], answered
// [{"id":"msg_…"}].
func BenchmarkSendMessage(b *testing.B) {
	srv := newServer(b, &fakeAPI{})
	runClients(b, sendMessageOps(newTrio(b, srv.URL)))
}

func TestAgreeSendMessage(t *testing.T) { agree(t, sendMessageOps) }

func sendMessageOps(t *trio) []clientOp {
	return []clientOp{
		{"nethttp", func(ctx context.Context) error {
			ids, err := t.nh.sendMessage(ctx, convID, senderID, hello)
			return checkIDs(ids, err)
		}},
		{"sdk", func(ctx context.Context) error {
			ids, err := t.sdk.Conversations.SendMessages(ctx, convID, convo.UserMessage(senderID, hello))
			return checkIDs(ids, err)
		}},
		{"resty", func(ctx context.Context) error {
			ids, err := t.rs.sendMessage(ctx, convID, senderID, hello)
			return checkIDs(ids, err)
		}},
	}
}

func checkIDs(ids []string, err error) error {
	if err == nil && (len(ids) != 1 || ids[0] == "") {
		err = errBadAnswer
	}
	return err
}

// BenchmarkListPage: GET /v1/{app}/conversations/{id}/messages?limit=100,
// answered {"data":[…100 messages…]}, decoded into structs. The SDK's
// iterator is stopped after the 100th message, so it asks for one page.
func BenchmarkListPage(b *testing.B) {
	srv := newServer(b, &fakeAPI{})
	runClients(b, listPageOps(newTrio(b, srv.URL)))
}

func TestAgreeListPage(t *testing.T) { agree(t, listPageOps) }

func listPageOps(t *trio) []clientOp {
	return []clientOp{
		{"nethttp", func(ctx context.Context) error {
			page, err := t.nh.messagesPage(ctx, convID, pageLimit)
			return checkPage(len(page), lastID(page), err)
		}},
		{"sdk", func(ctx context.Context) error {
			n, last := 0, ""
			for m, err := range t.sdk.Conversations.Messages(ctx, convID, &convo.ListOptions{Limit: pageLimit}) {
				if err != nil {
					return err
				}
				n, last = n+1, m.ID
				if n == pageLimit {
					break
				}
			}
			return checkPage(n, last, nil)
		}},
		{"resty", func(ctx context.Context) error {
			page, err := t.rs.messagesPage(ctx, convID, pageLimit)
			return checkPage(len(page), lastID(page), err)
		}},
	}
}

func lastID(page []nhMessage) string {
	if len(page) == 0 {
		return ""
	}
	return page[len(page)-1].ID
}

func checkPage(n int, last string, err error) error {
	if err == nil && (n != pageLimit || last != "msg_00000100") {
		err = fmt.Errorf("%w: %d messages, last %q", errBadAnswer, n, last)
	}
	return err
}
