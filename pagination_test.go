package convo_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convokit/convo"
)

// userPages serves users u1..un in pages, honouring limit and
// startingAfter like the real API.
func userPages(n int) httpmock.Responder {
	return func(req *http.Request) (*http.Response, error) {
		q := req.URL.Query()
		limit := 10
		fmt.Sscan(q.Get("limit"), &limit)
		start := 1
		if a := q.Get("startingAfter"); a != "" {
			fmt.Sscanf(a, "u%d", &start)
			start++
		}
		var items []string
		for i := start; i <= n && len(items) < limit; i++ {
			items = append(items, fmt.Sprintf(`{"id":"u%d","name":"User %d","createdAt":%d}`, i, i, i))
		}
		return httpmock.NewStringResponse(200, `{"data":[`+strings.Join(items, ",")+`]}`), nil
	}
}

func TestListThreePages(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(userPages(5))
	opts := &convo.ListOptions{Limit: 2}
	var ids []string
	for u, err := range c.Users.List(context.Background(), opts) {
		require.NoError(t, err)
		ids = append(ids, u.ID)
	}
	assert.Equal(t, []string{"u1", "u2", "u3", "u4", "u5"}, ids)
	calls := rc.Calls()
	require.Len(t, calls, 3, "the short third page ends the list")
	for i, q := range []string{"limit=2", "limit=2&startingAfter=u2", "limit=2&startingAfter=u4"} {
		assert.Equal(t, http.MethodGet, calls[i].Method)
		assert.Equal(t, "/v1/app/users", calls[i].Path)
		assert.Equal(t, q, calls[i].Query)
		assertHeaders(t, calls[i], false)
	}
	assert.Equal(t, &convo.ListOptions{Limit: 2}, opts, "the caller's options are not changed")
}

func TestListExactMultipleEndsOnEmptyPage(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(userPages(4))
	n := 0
	for _, err := range c.Users.List(context.Background(), &convo.ListOptions{Limit: 2, StartingAfter: "u0"}) {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 4, n)
	calls := rc.Calls()
	require.Len(t, calls, 3)
	assert.Equal(t, "limit=2&startingAfter=u0", calls[0].Query, "the caller's cursor starts the list")
	assert.Equal(t, "limit=2&startingAfter=u4", calls[2].Query)
}

func TestListBreakFetchesOnePage(t *testing.T) {
	c, mt, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(userPages(1000))
	var ids []string
	for u, err := range c.Users.List(context.Background(), nil) {
		require.NoError(t, err)
		ids = append(ids, u.ID)
		if len(ids) == 3 {
			break
		}
	}
	assert.Equal(t, []string{"u1", "u2", "u3"}, ids)
	assert.Equal(t, 1, mt.GetTotalCallCount())
	assert.Equal(t, "limit=100", rc.Calls()[0].Query, "nil options take limit=100")
}

func TestListRepeatedCursor(t *testing.T) {
	// The server ignores startingAfter and answers the same full page.
	c, mt, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, `{"data":[{"id":"u1"},{"id":"u2"}]}`))
	var ids []string
	var errs []error
	for u, err := range c.Users.List(context.Background(), &convo.ListOptions{Limit: 2}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, u.ID)
	}
	assert.Equal(t, []string{"u1", "u2"}, ids, "the repeated page is not yielded again")
	require.Len(t, errs, 1, "the loop ends with one error")
	assert.ErrorIs(t, errs[0], convo.ErrCursorRepeated)
	assert.Equal(t, 2, mt.GetTotalCallCount())
	assert.Equal(t, "limit=2&startingAfter=u2", rc.Calls()[1].Query)

	// A cycle back to an older cursor is caught too.
	pages := map[string]string{
		"":   `{"data":[{"id":"a"},{"id":"b"}]}`,
		"b":  `{"data":[{"id":"c"},{"id":"d"}]}`,
		"d":  `{"data":[{"id":"e"},{"id":"b"}]}`,
		"zz": `{"data":[]}`,
	}
	c, mt, _ = convo.NewTestEnv(t, convo.WithTestApp).Answer(func(req *http.Request) (*http.Response, error) {
		return httpmock.NewStringResponse(200, pages[req.URL.Query().Get("startingAfter")]), nil
	})
	ids, errs = nil, nil
	for u, err := range c.Users.List(context.Background(), &convo.ListOptions{Limit: 2}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, u.ID)
	}
	assert.Equal(t, []string{"a", "b", "c", "d"}, ids)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], convo.ErrCursorRepeated)
	assert.Equal(t, 3, mt.GetTotalCallCount())
}

func TestListErrorMidList(t *testing.T) {
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, `{"data":[{"id":"m1"},{"id":"m2"}]}`).
		Then(httpmock.NewStringResponder(404, `{"errorCode":"NOT_FOUND"}`)))
	var ids []string
	var errs []error
	for m, err := range c.Conversations.Messages(context.Background(), "c", &convo.ListOptions{Limit: 2}) {
		if err != nil {
			assert.Nil(t, m)
			errs = append(errs, err)
			continue
		}
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []string{"m1", "m2"}, ids)
	require.Len(t, errs, 1, "the error is yielded once, then the list ends")
	assert.ErrorIs(t, errs[0], convo.ErrNotFound)
	assert.Equal(t, 2, mt.GetTotalCallCount())
}

func TestListErrorRetriedFirst(t *testing.T) {
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(503, `{}`).
		Then(httpmock.NewStringResponder(200, `{"data":[{"id":"u1"}]}`)))
	n := 0
	for _, err := range c.Users.List(context.Background(), nil) {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 1, n)
	assert.Equal(t, 2, mt.GetTotalCallCount(), "a list page is retried like any GET")
}

func TestListInvalidOptions(t *testing.T) {
	c, mt, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(userPages(3))
	n := 0
	for u, err := range c.Users.List(context.Background(), &convo.ListOptions{Limit: -1}) {
		assert.Nil(t, u)
		ve := requireValidation(t, err)
		assert.Equal(t, []string{"opts.Limit"}, fields(ve))
		n++
	}
	assert.Equal(t, 1, n)
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

func TestListContextCancelled(t *testing.T) {
	c, _, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(userPages(10))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errs []error
	n := 0
	for _, err := range c.Users.List(ctx, &convo.ListOptions{Limit: 2}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		cancel() // the next page is asked with a cancelled context
	}
	assert.Equal(t, 2, n)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], context.Canceled)
}

func TestConversationLists(t *testing.T) {
	c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(200, `{"data":[`+conversationExample+`]}`))
	ctx := context.Background()
	opts := &convo.ConversationListOptions{
		Limit: 20, LastMessageAfter: 17100697559480, LastMessageBefore: 17200000000000,
		UnreadsOnly: true, OrderBy: "lastMessageTs", OrderDirection: "DESC", OffsetTS: 1623926680929,
	}
	saved := *opts
	var got []*convo.Conversation
	for conv, err := range c.Users.Conversations(ctx, "user 01", opts) {
		require.NoError(t, err)
		got = append(got, conv)
	}
	require.Len(t, got, 1)
	assert.Equal(t, "87d70908d90cee5d12bd", got[0].ID)
	assert.Equal(t, "Hey, I'm in London", got[0].LastMessage.Text)
	assert.Equal(t, saved, *opts)

	for _, err := range c.Conversations.List(ctx, nil) {
		require.NoError(t, err)
	}
	calls := rc.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, "/v1/app/users/user%2001/conversations", calls[0].Path)
	assert.Equal(t, "lastMessageAfter=17100697559480&lastMessageBefore=17200000000000&limit=20&offsetTs=1623926680929&orderBy=lastMessageTs&orderDirection=DESC&unreadsOnly=true", calls[0].Query)
	assert.Equal(t, "/v1/app/conversations", calls[1].Path)
	assert.Equal(t, "limit=30", calls[1].Query, "nil options take limit=30 for conversations")
	assertHeaders(t, calls[1], false)
}

func TestUsersConversationsNotFound(t *testing.T) {
	c, _, _ := convo.NewTestEnv(t, convo.WithTestApp).Answer(httpmock.NewStringResponder(404, `{}`))
	var errs []error
	for _, err := range c.Users.Conversations(context.Background(), "ghost", nil) {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], convo.ErrNotFound)
}

// A full page ending on an id over 4 KiB is a bad answer: it is not sent
// back as a cursor, and the list ends with ErrBadResponse. An id of 4 KiB
// is taken.
func TestListRefusesAnOversizedCursor(t *testing.T) {
	for _, n := range []int{4 << 10, 4<<10 + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			long := strings.Repeat("u", n)
			c, _, rc := convo.NewTestEnv(t, convo.WithTestApp).Answer(func(req *http.Request) (*http.Response, error) {
				if req.URL.Query().Get("startingAfter") != "" {
					return httpmock.NewStringResponse(200, `{"data":[]}`), nil
				}
				return httpmock.NewStringResponse(200, `{"data":[{"id":"u1"},{"id":"`+long+`"}]}`), nil
			})
			var ids []string
			var errs []error
			for u, err := range c.Users.List(context.Background(), &convo.ListOptions{Limit: 2}) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				ids = append(ids, u.ID)
			}
			if n == 4<<10 {
				assert.Empty(t, errs)
				assert.Equal(t, []string{"u1", long}, ids)
				require.Len(t, rc.Calls(), 2)
				return
			}
			require.Len(t, errs, 1)
			assert.ErrorIs(t, errs[0], convo.ErrBadResponse)
			assert.Contains(t, errs[0].Error(), "4097 bytes")
			assert.Empty(t, ids)
			assert.Len(t, rc.Calls(), 1, "the id is not sent back")
		})
	}
}
