package convo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
)

// Page sizes used when the options are nil or leave Limit at zero.
const (
	// DefaultListLimit is the page size of Users.List and
	// Conversations.Messages.
	DefaultListLimit = 100
	// DefaultConversationListLimit is the page size of Conversations.List
	// and Users.Conversations. It is 30 because TalkJS may cap conversation
	// pages at 30 (not confirmed): a larger limit that the server cuts
	// short would look like the last page and end the list early.
	DefaultConversationListLimit = 30
)

// ErrCursorRepeated is yielded, once and last, by a list whose server
// answered a full page ending on an item id already used as a cursor (or
// on an empty id): following it would loop forever. The items of that page
// are not yielded. errors.Is(err, ErrCursorRepeated) matches it.
var ErrCursorRepeated = errors.New("convo: list cursor did not advance")

// ListOptions controls a list call. The zero value (or nil) starts at the
// beginning with pages of the default size.
//
// Every list in this package is a lazy iter.Seq2: it asks for a page only
// when the loop wants more items, passing the id of the last item as
// startingAfter. It ends after a page shorter than Limit, when the loop
// breaks, after yielding an error once (a failed page, invalid options,
// ErrCursorRepeated, a full page whose last id is over 4 KiB, too long
// for a cursor, which matches ErrBadResponse), or when the context ends
// (the error is yielded).
// The options are copied; the caller's value is never changed.
type ListOptions struct {
	// Limit is the page size; zero takes the list's default. A Limit
	// above the server's maximum ends the list after the first page, since
	// the server's shorter page looks like the last one.
	Limit int `url:"limit,omitempty"`
	// StartingAfter starts the list after the item with this id.
	StartingAfter string `url:"startingAfter,omitempty"`
	// IsOnline, when set, keeps only the users online (true) or offline
	// (false), sent as isOnline on every page. Only Users.List takes it;
	// Conversations.Messages refuses it. convo.Bool makes the pointer.
	IsOnline *bool `url:"isOnline,omitempty"`
}

// Bool returns a pointer to v, for the optional filters (ListOptions,
// PresenceQuery).
func Bool(v bool) *bool { return &v }

// ConversationListOptions controls Conversations.List and
// Users.Conversations. Zero fields are left out of the query. It ends the
// same way as described for ListOptions.
type ConversationListOptions struct {
	// Limit is the page size; zero takes DefaultConversationListLimit.
	Limit int `url:"limit,omitempty"`
	// StartingAfter starts the list after the conversation with this id.
	StartingAfter string `url:"startingAfter,omitempty"`
	// LastMessageBefore keeps conversations whose last message is older.
	LastMessageBefore UnixMillis `url:"lastMessageBefore,omitempty"`
	// LastMessageAfter keeps conversations whose last message is newer.
	LastMessageAfter UnixMillis `url:"lastMessageAfter,omitempty"`
	// UnreadsOnly keeps the conversations with unread messages; only
	// Users.Conversations takes it.
	UnreadsOnly bool `url:"unreadsOnly,omitempty"`
	// OrderBy picks the sort key (creation date or last activity; the
	// server's values are not documented here and are passed through).
	// The server's default is last activity.
	OrderBy string `url:"orderBy,omitempty"`
	// OrderDirection picks the sort direction (passed through; the default
	// is latest first).
	OrderDirection string `url:"orderDirection,omitempty"`
	// OffsetTS is a timestamp offset for paging sorted lists.
	OffsetTS UnixMillis `url:"offsetTs,omitempty"`
	// Filter keeps the conversations it matches; only Conversations.List
	// takes it. See ConversationFilter.
	Filter ConversationFilter `url:"filter,omitempty"`
}

// ConversationFilter selects conversations, in the syntax of TalkJS's
// conversation list filters (its ConversationPredicate), such as
//
//	convo.ConversationFilter{"custom": map[string]any{"category": []any{"oneOf", []string{"shoes", "sandals"}}}}
//
// It is sent as the query parameter filter, holding the filter encoded as
// JSON. TalkJS says its REST API takes filters "similar" to those of its
// chat UI without documenting the parameter; the name and the JSON come
// from a Node client of the REST API (kevlened/talkjs-node). That client
// escapes the JSON with encodeURIComponent before its HTTP library escapes
// the query again; the SDK escapes it once, so that the server reads JSON
// from the parameter as any query parameter is read.
type ConversationFilter map[string]any

// EncodeValues sets the filter's JSON as the query parameter key; an empty
// filter sets nothing.
func (f ConversationFilter) EncodeValues(key string, v *url.Values) error {
	if len(f) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]any(f))
	if err != nil {
		return fmt.Errorf("opts.Filter: %w", err)
	}
	v.Set(key, string(b))
	return nil
}

// pageSpec is what the pager needs from a list's options.
type pageSpec struct {
	limit int
	first string                 // the caller's StartingAfter
	query func(after string) any // a fresh query struct for one page
	err   error                  // options that were refused
}

func checkLimit(limit int) error {
	if limit < 0 {
		return &ValidationError{Problems: []Problem{{Field: "opts.Limit", Reason: "must not be negative"}}}
	}
	return nil
}

func listQuery(opts *ListOptions, def int) pageSpec {
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	if o.Limit == 0 {
		o.Limit = def
	}
	return pageSpec{limit: o.Limit, first: o.StartingAfter, err: checkLimit(o.Limit), query: func(after string) any {
		q := o
		q.StartingAfter = after
		return &q
	}}
}

func conversationListQuery(opts *ConversationListOptions) pageSpec {
	var o ConversationListOptions
	if opts != nil {
		o = *opts
	}
	if o.Limit == 0 {
		o.Limit = DefaultConversationListLimit
	}
	err := checkLimit(o.Limit)
	if _, ferr := json.Marshal(map[string]any(o.Filter)); err == nil && ferr != nil {
		err = &ValidationError{Problems: []Problem{{Field: "opts.Filter", Reason: "must encode as JSON: " + ferr.Error()}}}
	}
	return pageSpec{limit: o.Limit, first: o.StartingAfter, err: err, query: func(after string) any {
		q := o
		q.StartingAfter = after
		return &q
	}}
}

// talkjsGet reads one TalkJS resource (GET path, with params) into a new T.
func talkjsGet[T any](ctx context.Context, c *Client, op, path string, params ...string) (*T, error) {
	v := new(T)
	err := c.do(ctx, &request{
		op:     op,
		api:    c.talkjs,
		method: http.MethodGet,
		path:   path,
		params: params,
		out:    v,
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// paginate is the one pager of every TalkJS list: GET path (with params)
// one page ({"data": [...]}) at a time. id gives an item's id, the cursor
// of the next page.
func paginate[T any](ctx context.Context, c *Client, op, path string, params []string, spec pageSpec, id func(*T) string) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		if spec.err != nil {
			yield(nil, c.do(ctx, &request{op: op, api: c.talkjs, method: http.MethodGet, path: path, invalid: spec.err}))
			return
		}
		after := spec.first
		var used cursorWindow
		for {
			var page struct {
				Data []T `json:"data"`
			}
			err := c.do(ctx, &request{
				op:     op,
				api:    c.talkjs,
				method: http.MethodGet,
				path:   path,
				params: params,
				query:  spec.query(after),
				out:    &page,
			})
			if err != nil {
				yield(nil, err)
				return
			}
			used.add(after)
			full := len(page.Data) >= spec.limit
			var next string
			if full {
				next = id(&page.Data[len(page.Data)-1])
				if len(next) > maxCursor {
					yield(nil, fmt.Errorf("%w: GET %s: a full page after %q ended on an id of %d bytes, over the %d of a cursor",
						ErrBadResponse, path, truncate(after, 60), len(next), maxCursor))
					return
				}
				if next == "" || used.seen(next) {
					yield(nil, fmt.Errorf("%w: GET %s: a full page after %q ended on %q, a cursor already used",
						ErrCursorRepeated, path, after, next))
					return
				}
			}
			for i := range page.Data {
				if !yield(&page.Data[i], nil) {
					return
				}
			}
			if !full {
				return
			}
			after = next
		}
	}
}

// maxCursor is the longest item id a list takes as the cursor of its next
// page: no id of TalkJS is near it, and the cursors a list remembers
// (cursorWindowSize and a checkpoint) then hold at most 260 KiB.
const maxCursor = 4 << 10

// cursorWindowSize is how many of the latest cursors a list remembers
// exactly.
const cursorWindowSize = 64

// cursorWindow remembers the cursors a list has used in flat memory,
// where a set of every cursor grew with the pages (+0.6 MB over 1M
// messages): the latest cursorWindowSize exactly, so that a cycle that
// short is caught before any of its items is yielded twice, and one
// checkpoint further back that moves to the newest cursor after 1, 2,
// 4, … pages (Brent's cycle detection), so that a cycle of any length is
// caught within a few rounds of it.
type cursorWindow struct {
	recent     [cursorWindowSize]string
	n          int // cursors added
	checkpoint string
	power      int // pages between two moves of the checkpoint
	steps      int // pages since the checkpoint moved
}

// add records cursor c as used.
func (w *cursorWindow) add(c string) {
	w.recent[w.n%cursorWindowSize] = c
	w.n++
	w.steps++
	if w.steps >= w.power {
		w.checkpoint, w.power, w.steps = c, max(2*w.power, 1), 0
	}
}

// seen reports whether c was used before, as far as the window knows.
func (w *cursorWindow) seen(c string) bool {
	if w.n == 0 {
		return false
	}
	return c == w.checkpoint || slices.Contains(w.recent[:min(w.n, cursorWindowSize)], c)
}
