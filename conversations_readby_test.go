package convo_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// docFilter is the conversation filter of TalkJS's ConversationPredicate
// reference ("only show conversations with either category \"shoes\" or
// \"sandals\""), as JSON (testdata/talkjs-conversation-filter.json).
func docFilter(t *testing.T) (convo.ConversationFilter, string) {
	t.Helper()
	b, err := os.ReadFile("testdata/talkjs-conversation-filter.json")
	require.NoError(t, err)
	var f convo.ConversationFilter
	require.NoError(t, json.Unmarshal(b, &f))
	return f, string(b)
}

func TestConversationsListFilter(t *testing.T) {
	f, doc := docFilter(t)
	c, _, env := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, `{"data": []}`))
	ctx := context.Background()
	for _, err := range c.Conversations.List(ctx, &convo.ConversationListOptions{Limit: 5, Filter: f}) {
		require.NoError(t, err)
	}
	calls := env.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, http.MethodGet, calls[0].Method)
	assert.Equal(t, "/v1/app/conversations", calls[0].Path)
	// The JSON, escaped once: the parameter reads back as the filter.
	assert.Equal(t, "filter=%7B%22custom%22%3A%7B%22category%22%3A%5B%22oneOf%22%2C%5B%22shoes%22%2C%22sandals%22%5D%5D%7D%7D&limit=5", calls[0].Query)
	q, err := url.ParseQuery(calls[0].Query)
	require.NoError(t, err)
	assert.JSONEq(t, doc, q.Get("filter"))

	// No filter, no parameter.
	for _, err := range c.Conversations.List(ctx, &convo.ConversationListOptions{Filter: convo.ConversationFilter{}}) {
		require.NoError(t, err)
	}
	assert.Equal(t, "limit=30", env.Calls()[1].Query)

	// Refused before anything is sent.
	for _, err := range c.Conversations.List(ctx, &convo.ConversationListOptions{Filter: convo.ConversationFilter{"custom": make(chan int)}}) {
		ve := requireValidation(t, err)
		require.Len(t, ve.Problems, 1)
		assert.Equal(t, "opts.Filter", ve.Problems[0].Field)
		assert.Contains(t, ve.Problems[0].Reason, "must encode as JSON")
	}
	for _, err := range c.Users.Conversations(ctx, "u1", &convo.ConversationListOptions{Filter: f}) {
		assert.Equal(t, []convo.Problem{{Field: "opts.Filter", Reason: "only Conversations.List takes it"}}, requireValidation(t, err).Problems)
	}
	assert.Len(t, env.Calls(), 2, "nothing sent")
}

func TestConversationsMarkAsRead(t *testing.T) {
	env := convo.NewTestEnv(t, convo.WithTestApp)
	n := 0
	env.Transport().RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		n++
		if n == 1 {
			return httpmock.NewStringResponse(503, `{}`), nil
		}
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	require.NoError(t, env.Client().Conversations.MarkAsRead(context.Background(), "order/391", "12081"))
	calls := env.Calls()
	require.Len(t, calls, 2, "marking read again changes nothing: retried after a 503")
	for _, c := range calls {
		assert.Equal(t, http.MethodPost, c.Method)
		assert.Equal(t, "/v1/app/conversations/order%2F391/readBy/12081", c.Path)
		assertHeaders(t, c, false) // no body, as the PHP client sends none
	}
	err := env.Client().Conversations.MarkAsRead(context.Background(), "", "..")
	assert.Len(t, requireValidation(t, err).Problems, 2)
	assert.Len(t, env.Calls(), 2)
}

func TestConversationsFilterAndReadByOnConvotest(t *testing.T) {
	srv := convotest.NewServer()
	t.Cleanup(srv.Close)
	c, err := srv.Client()
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Users.Upsert(ctx, "alice", convo.UserUpdate{Name: "Alice"}))
	require.NoError(t, c.Users.Upsert(ctx, "bob", convo.UserUpdate{Name: "Bob"}))
	for id, cat := range map[string]string{"c-shoes": "shoes", "c-sandals": "sandals", "c-hats": "hats"} {
		require.NoError(t, c.Conversations.Upsert(ctx, id, convo.ConversationUpdate{Participants: []string{"alice", "bob"}, Custom: map[string]string{"category": cat}}))
	}
	require.NoError(t, c.Conversations.Upsert(ctx, "c-none", convo.ConversationUpdate{Participants: []string{"alice"}}))

	f, _ := docFilter(t)
	var got []string
	for conv, err := range c.Conversations.List(ctx, &convo.ConversationListOptions{Filter: f}) {
		require.NoError(t, err)
		got = append(got, conv.ID)
	}
	assert.ElementsMatch(t, []string{"c-shoes", "c-sandals"}, got)

	ids, err := c.Conversations.SendMessages(ctx, "c-shoes", convo.UserMessage("alice", "Size 38?"), convo.UserMessage("bob", "Yes"))
	require.NoError(t, err)
	require.NoError(t, c.Conversations.MarkAsRead(ctx, "c-shoes", "bob"))
	m, err := c.Conversations.Message(ctx, "c-shoes", ids[0])
	require.NoError(t, err)
	assert.Equal(t, []string{"bob"}, m.ReadBy)
	m, err = c.Conversations.Message(ctx, "c-shoes", ids[1])
	require.NoError(t, err)
	assert.Empty(t, m.ReadBy, "bob's own message")
	assert.ErrorIs(t, c.Conversations.MarkAsRead(ctx, "c-none", "bob"), convo.ErrNotFound)
}
