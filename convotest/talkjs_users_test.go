package convotest_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/convokit/convo/convotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTalkJSUserMerge(t *testing.T) {
	srv := newServer(t)
	a := talkjs(t, srv, "PUT", "/users/alice", map[string]any{"email": []string{"alice@example.com"}})
	assert.Equal(t, http.StatusBadRequest, a.Status, "a new user needs a name")

	putUser(t, srv, "alice", map[string]any{
		"name": "Alice", "email": []string{"alice@example.com"}, "photoUrl": "https://example.com/a.png",
		"welcomeMessage": "Hey there!", "role": "buyer", "custom": map[string]string{"country": "br", "tier": "gold"},
	})
	putUser(t, srv, "alice", map[string]any{"welcomeMessage": nil, "custom": map[string]any{"tier": nil, "lang": "pt"}})

	a = talkjs(t, srv, "GET", "/users/alice", nil)
	require.Equal(t, http.StatusOK, a.Status)
	got := a.Object(t)
	assert.Equal(t, "alice", got["id"])
	assert.Equal(t, "Alice", got["name"], "name not sent: unchanged")
	assert.Equal(t, []any{"alice@example.com"}, got["email"])
	assert.Equal(t, "https://example.com/a.png", got["photoUrl"])
	assert.Nil(t, got["welcomeMessage"], "null erases")
	assert.Contains(t, got, "welcomeMessage")
	assert.Equal(t, "buyer", got["role"])
	assert.Equal(t, map[string]any{"country": "br", "lang": "pt"}, got["custom"], "custom merges; a null key is removed")
	assert.Nil(t, got["phone"])
	assert.IsType(t, float64(0), got["createdAt"])

	putUser(t, srv, "alice", map[string]any{"email": nil, "role": nil, "custom": nil})
	u, ok := srv.User("alice")
	require.True(t, ok)
	assert.Nil(t, u.Email)
	assert.Equal(t, "default", u.Role)
	assert.Empty(t, u.Custom)

	for _, body := range []any{
		map[string]any{"name": nil},
		map[string]any{"name": ""},
		map[string]any{"email": "alice@example.com"},
		map[string]any{"custom": map[string]any{"n": 1}},
		map[string]any{"photoURL": "https://example.com/a.png"},
		map[string]any{"availabilityText": 7},
		[]any{},
	} {
		a := talkjs(t, srv, "PUT", "/users/alice", body)
		assert.Equal(t, http.StatusBadRequest, a.Status, "%v", body)
	}
	after, _ := srv.User("alice")
	assert.Equal(t, u, after, "a refused update changes nothing")

	a = talkjs(t, srv, "GET", "/users/bob", nil)
	assert.Equal(t, http.StatusNotFound, a.Status)
}

func TestTalkJSBatchUsers(t *testing.T) {
	srv := newServer(t)
	batch := map[string]any{
		"alice":     map[string]any{"name": "Alice", "phone": []string{"+1123456789"}, "locale": "ar"},
		"sebastian": map[string]any{"name": "Sebastian", "custom": map[string]string{"country": "ca"}},
	}
	a := talkjs(t, srv, "PUT", "/users", batch)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	u, ok := srv.User("sebastian")
	require.True(t, ok)
	assert.Equal(t, map[string]string{"country": "ca"}, u.Custom)

	t.Run("one invalid entry: 400 per user, nothing applied", func(t *testing.T) {
		a := talkjs(t, srv, "PUT", "/users", map[string]any{
			"carol": map[string]any{"name": "Carol"},
			"dave":  map[string]any{"email": []string{"dave@example.com"}},
			"alice": map[string]any{"locale": 7},
		})
		require.Equal(t, http.StatusBadRequest, a.Status)
		errs := a.Object(t)["errors"].(map[string]any)
		assert.Len(t, errs, 2)
		assert.Contains(t, errs, "dave")
		assert.Contains(t, errs, "alice")
		_, ok := srv.User("carol")
		assert.False(t, ok)
		alice, _ := srv.User("alice")
		assert.Equal(t, "ar", *alice.Locale)
	})
	t.Run("over 100 users: 400, nothing applied", func(t *testing.T) {
		big := map[string]any{}
		for i := range 101 {
			big[fmt.Sprintf("u%03d", i)] = map[string]any{"name": "U"}
		}
		a := talkjs(t, srv, "PUT", "/users", big)
		require.Equal(t, http.StatusBadRequest, a.Status)
		_, ok := srv.User("u000")
		assert.False(t, ok)
		delete(big, "u100")
		a = talkjs(t, srv, "PUT", "/users", big)
		require.Equal(t, http.StatusOK, a.Status, "100 is allowed")
	})
}

func TestTalkJSAvailabilityText(t *testing.T) {
	srv := newServer(t)
	putUser(t, srv, "alice", map[string]any{"name": "Alice", "availabilityText": "Back on Monday"})
	u, _ := srv.User("alice")
	require.NotNil(t, u.AvailabilityText)
	assert.Equal(t, "Back on Monday", *u.AvailabilityText)
	putUser(t, srv, "alice", map[string]any{"availabilityText": nil})
	u, _ = srv.User("alice")
	assert.Nil(t, u.AvailabilityText, "null erases it, as TalkJS's anonymising example sends")
}

func TestTalkJSPresence(t *testing.T) {
	srv := newServer(t)
	for _, id := range []string{"alice", "bob", "carol", "dave"} {
		putUser(t, srv, id, map[string]any{"name": id})
	}
	conv := "987654"
	srv.SetPresence("alice", &convotest.Presence{Widgets: []convotest.PresenceSession{
		{SelectedConversationID: &conv, Custom: map[string]string{}, HasFocus: true, SessionID: "s-a"},
	}})
	srv.SetPresence("bob", &convotest.Presence{Widgets: []convotest.PresenceSession{{Custom: map[string]string{}, IsTyping: true, SessionID: "s-b"}}})
	srv.SetPresence("carol", &convotest.Presence{BackgroundSessions: []convotest.PresenceSession{{SessionID: "s-c"}}})
	srv.SetPresence("erin", &convotest.Presence{Widgets: []convotest.PresenceSession{{SessionID: "s-e"}}})
	srv.SetPresence("erin", nil)

	query := func(body any) map[string]any {
		t.Helper()
		a := talkjs(t, srv, "POST", "/presences", body)
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
		return a.Object(t)["data"].(map[string]any)
	}
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

	all := query(map[string]any{})
	assert.Equal(t, []string{"alice", "bob"}, keys(all), "foreground sessions only by default")
	assert.Equal(t, map[string]any{
		"status": "online", "backgroundSessions": []any{},
		"widgets": []any{map[string]any{"selectedConversationId": "987654", "custom": map[string]any{}, "hasFocus": true, "isTyping": false, "sessionId": "s-a"}},
	}, all["alice"])
	withBackground := query(map[string]any{"includeBackgroundSessions": true})
	assert.Equal(t, []string{"alice", "bob", "carol"}, keys(withBackground))
	assert.Equal(t, map[string]any{
		"status": "online", "widgets": []any{},
		"backgroundSessions": []any{map[string]any{"selectedConversationId": nil, "custom": map[string]any{}, "hasFocus": false, "isTyping": false, "sessionId": "s-c"}},
	}, withBackground["carol"], "a background session has the fields of a widget, as TalkJS types it")
	assert.Equal(t, []string{"alice"}, keys(query(map[string]any{"hasFocus": true})))
	assert.Equal(t, []string{"bob"}, keys(query(map[string]any{"isTyping": true})))
	assert.Equal(t, []string{"alice"}, keys(query(map[string]any{"selectedConversationId": "987654"})))
	assert.Equal(t, []string{"bob"}, keys(query(map[string]any{"selectedConversationId": nil})), "null: no conversation selected")
	assert.Equal(t, []string{"bob"}, keys(query(map[string]any{"userIds": []string{"bob", "carol", "dave"}})))

	for _, body := range []any{map[string]any{"hasFocus": "yes"}, map[string]any{"userIDs": []string{"a"}}, map[string]any{"selectedConversationId": 1}, []any{}} {
		assert.Equal(t, http.StatusBadRequest, talkjs(t, srv, "POST", "/presences", body).Status, "%v", body)
	}

	assert.Equal(t, []string{"alice", "bob", "carol"}, ids(t, talkjs(t, srv, "GET", "/users?isOnline=true", nil)))
	assert.Equal(t, []string{"dave"}, ids(t, talkjs(t, srv, "GET", "/users?isOnline=false", nil)))
	assert.Equal(t, []string{"alice"}, ids(t, talkjs(t, srv, "GET", "/users?isOnline=true&limit=1", nil)))
	assert.Equal(t, []string{"bob", "carol"}, ids(t, talkjs(t, srv, "GET", "/users?isOnline=true&startingAfter=alice", nil)))
	assert.Equal(t, http.StatusBadRequest, talkjs(t, srv, "GET", "/users?isOnline=yes", nil).Status)
}
