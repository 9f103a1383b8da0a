package convo

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// firstErr gives the first error of a list.
func firstErr[T any](seq iter.Seq2[T, error]) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return nil
}

// zeroClientCalls calls every method of every service of c with valid
// arguments, keyed by "Service.Method".
func zeroClientCalls(c *Client) map[string]func(context.Context) error {
	msg := UserMessage("u1", "hello")
	return map[string]func(context.Context) error{
		"Sessions.Start": func(ctx context.Context) error {
			_, err := c.Sessions.Start(ctx, WhatsAppBusiness{Phone: "+55 27 99999-9999", Text: "hi"})
			return err
		},
		"Users.Upsert": func(ctx context.Context) error { return c.Users.Upsert(ctx, "u1", UserUpdate{Name: "Alice"}) },
		"Users.UpsertMany": func(ctx context.Context) error {
			return c.Users.UpsertMany(ctx, map[string]UserUpdate{"u1": {Name: "Alice"}})
		},
		"Users.Get": func(ctx context.Context) error {
			_, err := c.Users.Get(ctx, "u1")
			return err
		},
		"Users.List":          func(ctx context.Context) error { return firstErr(c.Users.List(ctx, nil)) },
		"Users.Conversations": func(ctx context.Context) error { return firstErr(c.Users.Conversations(ctx, "u1", nil)) },
		"Users.Presence": func(ctx context.Context) error {
			_, err := c.Users.Presence(ctx, PresenceQuery{UserIDs: []string{"u1"}})
			return err
		},
		"Conversations.Upsert": func(ctx context.Context) error {
			return c.Conversations.Upsert(ctx, "c1", ConversationUpdate{Subject: "s"})
		},
		"Conversations.Get": func(ctx context.Context) error {
			_, err := c.Conversations.Get(ctx, "c1")
			return err
		},
		"Conversations.List":   func(ctx context.Context) error { return firstErr(c.Conversations.List(ctx, nil)) },
		"Conversations.Delete": func(ctx context.Context) error { return c.Conversations.Delete(ctx, "c1") },
		"Conversations.Join":   func(ctx context.Context) error { return c.Conversations.Join(ctx, "c1", "u1", Participation{}) },
		"Conversations.UpdateParticipation": func(ctx context.Context) error {
			return c.Conversations.UpdateParticipation(ctx, "c1", "u1", Participation{Access: AccessRead})
		},
		"Conversations.MarkAsRead": func(ctx context.Context) error { return c.Conversations.MarkAsRead(ctx, "c1", "u1") },
		"Conversations.Leave":      func(ctx context.Context) error { return c.Conversations.Leave(ctx, "c1", "u1") },
		"Conversations.TriggerNotifications": func(ctx context.Context) error {
			return c.Conversations.TriggerNotifications(ctx, "c1", NotificationTrigger{Channels: []NotificationChannel{ChannelEmail}})
		},
		"Conversations.Open": func(ctx context.Context) error {
			_, err := c.Conversations.Open(ctx, "c1", OpenConversation{Users: map[string]UserUpdate{"u1": {Name: "Alice"}}, Messages: []OutgoingMessage{msg}})
			return err
		},
		"Conversations.SendMessages": func(ctx context.Context) error {
			_, err := c.Conversations.SendMessages(ctx, "c1", msg)
			return err
		},
		"Conversations.Messages": func(ctx context.Context) error { return firstErr(c.Conversations.Messages(ctx, "c1", nil)) },
		"Conversations.Message": func(ctx context.Context) error {
			_, err := c.Conversations.Message(ctx, "c1", "m1")
			return err
		},
		"Conversations.EditMessage": func(ctx context.Context) error {
			return c.Conversations.EditMessage(ctx, "c1", "m1", MessageEdit{Text: "edited"})
		},
		"Conversations.DeleteMessage": func(ctx context.Context) error { return c.Conversations.DeleteMessage(ctx, "c1", "m1") },
		"Conversations.ImportMessages": func(ctx context.Context) error {
			return c.Conversations.ImportMessages(ctx, "c1", ImportMessage{Sender: "u1", Text: "old", Timestamp: time.Unix(1700000000, 0)})
		},
		"Selarti.Send": func(ctx context.Context) error {
			_, err := c.Selarti.Send(ctx, SelartiMessage{TaskID: "t1", ChatID: "chat1", Text: "hi"})
			return err
		},
		"Client.Raw": func(ctx context.Context) error {
			return c.Raw(ctx, RawRequest{Provider: ProviderTalkJS, Method: http.MethodGet, Path: "/users/u1"}, nil)
		},
		"Selarti.AddTarget": func(ctx context.Context) error { return c.Selarti.AddTarget(ctx, "t1", "@maria") },
	}
}

// A Client not made by NewClient (its zero value) sends nothing and does
// not panic: every method of every service answers ErrNotConfigured. (It
// has no transport at all, so a call that tried to send would panic.)
func TestZeroClientNotConfigured(t *testing.T) {
	var zero Client
	calls := zeroClientCalls(&zero)
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = call(context.Background()) })
			assert.ErrorIs(t, err, ErrNotConfigured)
		})
	}
	// Every method of every service that makes calls (takes a context) is
	// called above.
	ctxType := reflect.TypeFor[context.Context]()
	want := []string{"Client.Raw"}
	for name, v := range map[string]any{"Sessions": zero.Sessions, "Users": zero.Users, "Conversations": zero.Conversations, "Selarti": zero.Selarti} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumMethod() {
			if m := typ.Method(i); m.Type.NumIn() > 1 && m.Type.In(1) == ctxType {
				want = append(want, name+"."+m.Name)
			}
		}
	}
	var got []string
	for name := range calls {
		got = append(got, name)
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.Equal(t, want, got, "a service method the test does not call")

	// The rest of a zero or nil Client does not panic either.
	var nilClient *Client
	require.NotPanics(t, func() {
		zero.CloseIdleConnections()
		nilClient.CloseIdleConnections()
		assert.ErrorIs(t, nilClient.Raw(context.Background(), RawRequest{Provider: ProviderSelarti, Method: http.MethodPost, Path: "/wf/x"}, nil), ErrNotConfigured)
		assert.Equal(t, "", nilClient.BaseURL(ProviderTalkJS))
		assert.Equal(t, "", zero.BaseURL(ProviderTalkJS))
		_ = fmt.Sprintf("%v %+v %s %v %v", zero, &zero, nilClient, zero.Users, zero.Selarti)
		_, _ = json.Marshal(zero)
	})
}

// A client made by NewClient answers ErrNotConfigured for the providers
// left out, in the same way.
func TestUnconfiguredProviderNotConfigured(t *testing.T) {
	c, err := NewClient(WithSelarti("key"))
	require.NoError(t, err)
	for name, call := range zeroClientCalls(c) {
		if name == "Selarti.Send" || name == "Selarti.AddTarget" {
			continue
		}
		assert.ErrorIs(t, call(context.Background()), ErrNotConfigured, name)
	}
}
