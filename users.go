package convo

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// UsersService manages TalkJS users.
type UsersService service

// UpsertManyBatchSize is the most users one PUT /users request carries, the
// API's limit.
const UpsertManyBatchSize = 100

// UpsertManyConcurrency is how many PUT /users requests UpsertMany runs at
// once.
const UpsertManyConcurrency = 4

// UserUpdate is the body of a user upsert (PUT /users/{id}). A zero field
// (an empty string, a nil or empty slice or map) is left out and stays as
// it is on the server. To erase a field, name it in Clear.
type UserUpdate struct {
	// Name is the user's display name. TalkJS lists it as required when a
	// user is created; an update may leave it out.
	Name string
	// Email holds the user's email addresses (json "email").
	Email []string
	// Phone holds the user's phone numbers (json "phone").
	Phone []string
	// PhotoURL is the URL of the user's picture (json "photoUrl").
	PhotoURL string
	// WelcomeMessage is shown when a conversation with the user opens.
	WelcomeMessage string
	// Role is a role configured in the TalkJS dashboard ("default" unless set).
	Role string
	// Locale is an IETF language tag such as "en-US".
	Locale string
	// AvailabilityText is shown under the user's name in the chat UI
	// (json "availabilityText"), such as "Back on Monday".
	AvailabilityText string
	// Custom holds metadata; TalkJS takes string values only.
	Custom map[string]string
	// PushTokens registers and unregisters mobile push tokens, keyed
	// "<provider>:<token id>" with provider "fcm" or "apns". A true value
	// registers the token (sent as true); a false value unregisters it
	// (sent as null). To unregister all tokens, put "pushTokens" in Clear.
	PushTokens map[string]bool
	// Clear names fields, by their JSON names, to erase: each is sent as
	// null. The names that may be cleared are email, phone, photoUrl,
	// welcomeMessage, role, locale, availabilityText, custom and
	// pushTokens. An unknown name,
	// "name", or a name whose field is also set is refused with a
	// *ValidationError before anything is sent.
	Clear []string
}

var userClear = clearSpec{
	names: []string{"name", "email", "phone", "photoUrl", "welcomeMessage", "role", "locale", "availabilityText", "custom", "pushTokens"},
	clearable: map[string]bool{
		"name": false, "email": true, "phone": true, "photoUrl": true, "welcomeMessage": true,
		"role": true, "locale": true, "availabilityText": true, "custom": true, "pushTokens": true,
	},
	why: map[string]string{"name": "a user always has a name"},
}

func (u *UserUpdate) isSet(name string) bool {
	switch name {
	case "name":
		return u.Name != ""
	case "email":
		return len(u.Email) > 0
	case "phone":
		return len(u.Phone) > 0
	case "photoUrl":
		return u.PhotoURL != ""
	case "welcomeMessage":
		return u.WelcomeMessage != ""
	case "role":
		return u.Role != ""
	case "locale":
		return u.Locale != ""
	case "availabilityText":
		return u.AvailabilityText != ""
	case "custom":
		return len(u.Custom) > 0
	case "pushTokens":
		return len(u.PushTokens) > 0
	}
	return false
}

// validate adds u's problems to ps, each field prefixed by prefix(). Only
// Clear has rules, so prefix is called only when there is a Clear to
// check: UpsertMany built a field name for every user, 49 % of its
// allocations for 10,000 users.
func (u *UserUpdate) validate(ps *problems, prefix func() string) {
	if len(u.Clear) > 0 {
		userClear.check(ps, prefix(), u.Clear, u.isSet)
	}
}

func noPrefix() string { return "" }

// MarshalJSON writes the set fields, then null for each name in Clear. It
// fails with a *ValidationError when Clear is not valid.
func (u UserUpdate) MarshalJSON() ([]byte, error) { return u.encodeBody() }

// encodeBody is MarshalJSON for the request pipeline.
func (u UserUpdate) encodeBody() ([]byte, error) {
	var ps problems
	u.validate(&ps, noPrefix)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return u.appendJSON(make([]byte, 0, u.sizeHint())), nil
}

func (u *UserUpdate) sizeHint() int {
	n := 2 + sizeHint(u.Name, u.PhotoURL, u.WelcomeMessage, u.Role, u.Locale, u.AvailabilityText)
	n += sliceHint(u.Email) + sliceHint(u.Phone) + sliceHint(u.Clear) + 16
	for k, v := range u.Custom {
		n += len(k) + len(v) + 6
	}
	return n + mapHint(u.PushTokens) + 32
}

func (u *UserUpdate) appendJSON(b []byte) []byte {
	w := jsonObject{b: b}
	w.open()
	w.str("name", u.Name)
	w.strs("email", u.Email)
	w.strs("phone", u.Phone)
	w.str("photoUrl", u.PhotoURL)
	w.str("welcomeMessage", u.WelcomeMessage)
	w.str("role", u.Role)
	w.str("locale", u.Locale)
	w.str("availabilityText", u.AvailabilityText)
	w.strMap("custom", u.Custom)
	w.trueOrNullMap("pushTokens", u.PushTokens)
	w.nulls(u.Clear)
	return w.close()
}

// User is a TalkJS user as the API returns it. A field the API sends as
// null, or leaves out, is the zero value.
type User struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	WelcomeMessage   string            `json:"welcomeMessage"`
	PhotoURL         string            `json:"photoUrl"`
	HeaderPhotoURL   string            `json:"headerPhotoUrl"`
	Role             string            `json:"role"`
	Email            []string          `json:"email"`
	Phone            []string          `json:"phone"`
	Custom           map[string]string `json:"custom"`
	AvailabilityText string            `json:"availabilityText"`
	Locale           string            `json:"locale"`
	// CreatedAt is when the user was created, in Unix milliseconds; use
	// CreatedAt.Time() for a time.Time.
	CreatedAt UnixMillis `json:"createdAt"`
	// PushTokens maps each registered token ("fcm:…", "apns:…") to true; a
	// token the API reports as null maps to false.
	PushTokens map[string]bool `json:"pushTokens"`
}

// Upsert creates the user id or updates the fields u sets (PUT
// /users/{id}). It is idempotent. It expects a 2xx answer; the body
// (TalkJS sends {}) is ignored.
func (s *UsersService) Upsert(ctx context.Context, id string, u UserUpdate) error {
	var ps problems
	u.validate(&ps, func() string { return "u." })
	return s.client().do(ctx, &request{
		op:      "talkjs.users.upsert",
		api:     s.client().talkjs,
		method:  http.MethodPut,
		path:    "/users/{userID}",
		params:  []string{id},
		encoded: encode(u),
		invalid: ps.err(),
	})
}

// UpsertManyError is the error of UpsertMany: Failed lists, sorted, the ids
// of the users whose batch did not succeed (it failed, was cancelled, or was
// never sent), and Err is the first error met. A batch cancelled while in
// flight may still have been applied; upserts are idempotent, so upserting
// the Failed users again is safe.
type UpsertManyError struct {
	Failed []string
	Err    error
}

// Error says how many users were not written and why.
func (e *UpsertManyError) Error() string {
	const show = 10
	ids := e.Failed
	more := ""
	if len(ids) > show {
		ids, more = ids[:show], fmt.Sprintf(", … (%d more)", len(e.Failed)-show)
	}
	return fmt.Sprintf("convo: upsert of %d users failed (%s%s): %v", len(e.Failed), strings.Join(ids, ", "), more, e.Err)
}

// Unwrap returns Err.
func (e *UpsertManyError) Unwrap() error { return e.Err }

// userBatch is the body of PUT /users: {"<id>": {…}, …}, in ids' order.
type userBatch struct {
	ids   []string
	users map[string]UserUpdate
}

// MarshalJSON writes the batch; the updates must have been validated.
func (ub userBatch) MarshalJSON() ([]byte, error) { return ub.encodeBody() }

func (ub userBatch) encodeBody() ([]byte, error) {
	n := 2
	for _, id := range ub.ids {
		u := ub.users[id]
		n += len(id) + 4 + u.sizeHint()
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, id := range ub.ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
		b = append(b, ':')
		u := ub.users[id]
		b = u.appendJSON(b)
	}
	return append(b, '}'), nil
}

// UpsertMany creates or updates users, keyed by id, with PUT /users: at
// most UpsertManyBatchSize users a request, and up to
// UpsertManyConcurrency requests at once. Every update is checked first;
// any problem fails the whole call with a *ValidationError and nothing is
// sent. An empty map sends nothing. The map must not change during the
// call.
//
// Each request is all-or-nothing on the server. The first failure cancels
// the requests not yet done, and the error is an *UpsertManyError naming
// every user not known to be written; errors.Is and errors.As see through
// it to the cause.
func (s *UsersService) UpsertMany(ctx context.Context, users map[string]UserUpdate) error {
	ids := sortedKeys(users)
	var ps problems
	for _, id := range ids {
		if id == "" {
			ps.add(`users[""]`, "user id must not be empty")
		}
		u := users[id]
		u.validate(&ps, func() string { return fieldKey("users", id) + "." })
	}
	batch := func(ids []string, invalid error) *request {
		return &request{
			op:      "talkjs.users.upsert_many",
			api:     s.client().talkjs,
			method:  http.MethodPut,
			path:    "/users",
			encoded: encode(userBatch{ids: ids, users: users}),
			invalid: invalid,
		}
	}
	if err := ps.err(); err != nil {
		return s.client().do(ctx, batch(nil, err))
	}
	if len(users) == 0 {
		return nil
	}
	put := func(ctx context.Context, ids []string) error { return s.client().do(ctx, batch(ids, nil)) }
	if len(ids) <= UpsertManyBatchSize {
		if err := put(ctx, ids); err != nil {
			return &UpsertManyError{Failed: ids, Err: err}
		}
		return nil
	}
	return putBatches(ctx, slices.Collect(slices.Chunk(ids, UpsertManyBatchSize)), put)
}

// putBatches runs put on every batch, UpsertManyConcurrency at once (a
// counting semaphore), in order. The first failure cancels the batches not
// yet done; the error names the users of every batch not done.
func putBatches(ctx context.Context, batches [][]string, put func(context.Context, []string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		sem      = make(chan struct{}, UpsertManyConcurrency)
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     = make([]bool, len(batches))
	)
	for i, batch := range batches {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break // cancelled: the batches left stay not done
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := put(ctx, batch)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				done[i] = true
			} else if firstErr == nil {
				firstErr = err
				cancel()
			}
		}()
	}
	wg.Wait()

	if firstErr == nil {
		if ctx.Err() == nil {
			return nil
		}
		// The caller's context ended before every batch was sent.
		firstErr = context.Cause(ctx)
	}
	var failed []string
	for i, ok := range done {
		if !ok {
			failed = append(failed, batches[i]...)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	slices.Sort(failed)
	return &UpsertManyError{Failed: failed, Err: firstErr}
}

// Get returns the user id (GET /users/{id}). It expects a 200 answer
// whose body is the user object. A user that does not exist gives an error
// matching ErrNotFound.
func (s *UsersService) Get(ctx context.Context, id string) (*User, error) {
	return talkjsGet[User](ctx, s.client(), "talkjs.users.get", "/users/{userID}", id)
}

// List iterates over the app's users (GET /users), one page at a time as
// the loop asks for more; each page is a 200 answer {"data": [user, …]}. opts may be nil (pages of DefaultListLimit). See
// ListOptions for how the iteration ends.
func (s *UsersService) List(ctx context.Context, opts *ListOptions) iter.Seq2[*User, error] {
	return paginate(ctx, s.client(), "talkjs.users.list", "/users", nil, listQuery(opts, DefaultListLimit), userID)
}

// Conversations iterates over the conversations user userID takes part in
// (GET /users/{id}/conversations), one page ({"data": [conversation, …]})
// at a time. opts may be nil
// (pages of DefaultConversationListLimit). A user that does not exist
// yields an error matching ErrNotFound.
func (s *UsersService) Conversations(ctx context.Context, userID string, opts *ConversationListOptions) iter.Seq2[*Conversation, error] {
	spec := conversationListQuery(opts)
	if opts != nil && len(opts.Filter) > 0 {
		// The only client that sends a filter sends it to GET /conversations.
		spec.err = &ValidationError{Problems: []Problem{{Field: "opts.Filter", Reason: "only Conversations.List takes it"}}}
	}
	return paginate(ctx, s.client(), "talkjs.users.conversations", "/users/{userID}/conversations", []string{userID}, spec, conversationID)
}

// PresenceQuery filters Users.Presence. A zero field is left out of the
// body and does not filter.
type PresenceQuery struct {
	// UserIDs keeps only these users.
	UserIDs []string
	// IncludeBackgroundSessions counts sessions that show no chat UI (a
	// mobile app in the background) as online too.
	IncludeBackgroundSessions bool
	// HasFocus, when set, keeps the users whose chat UI has (or has not)
	// the focus.
	HasFocus *bool
	// IsTyping, when set, keeps the users who are (or are not) typing.
	IsTyping *bool
	// SelectedConversationID keeps the users who have this conversation
	// open.
	SelectedConversationID string
	// NoConversationSelected keeps the users online with no conversation
	// open (sent as "selectedConversationId": null). It cannot be
	// combined with SelectedConversationID.
	NoConversationSelected bool
}

// MarshalJSON writes the filters that are set.
func (q PresenceQuery) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	if len(q.UserIDs) > 0 {
		out["userIds"] = q.UserIDs
	}
	if q.IncludeBackgroundSessions {
		out["includeBackgroundSessions"] = true
	}
	if q.HasFocus != nil {
		out["hasFocus"] = *q.HasFocus
	}
	if q.IsTyping != nil {
		out["isTyping"] = *q.IsTyping
	}
	if q.SelectedConversationID != "" {
		out["selectedConversationId"] = q.SelectedConversationID
	} else if q.NoConversationSelected {
		out["selectedConversationId"] = nil
	}
	return json.Marshal(out)
}

// Presence is what TalkJS knows of an online user's sessions, as its User
// Presence reference types the answer of POST /presences.
type Presence struct {
	// Status is "online".
	Status string `json:"status"`
	// BackgroundSessions are the user's sessions without a chat UI shown:
	// TalkJS keeps one for each page that creates a TalkJS session. The
	// reference types them like Widgets (its example has none).
	BackgroundSessions []PresenceSession `json:"backgroundSessions"`
	// Widgets are the chat UIs the user has open (an Inbox, a Chatbox, a
	// Popup).
	Widgets []PresenceSession `json:"widgets"`
}

// PresenceSession is one session of an online user: a chat UI it has open,
// or a background session. Its fields are those TalkJS's User Presence
// reference types: {selectedConversationId: string | null, custom:
// Map<string, string>, hasFocus: boolean, isTyping: boolean, sessionId:
// string}.
type PresenceSession struct {
	// SelectedConversationID is the conversation open in it; empty for
	// none (null on the wire).
	SelectedConversationID string            `json:"selectedConversationId"`
	Custom                 map[string]string `json:"custom"`
	HasFocus               bool              `json:"hasFocus"`
	IsTyping               bool              `json:"isTyping"`
	SessionID              string            `json:"sessionId"`
}

// Presence returns the online users that q keeps, keyed by user id (POST
// /presences). It expects a 200 answer {"data": {userId: presence, …}}.
// The query only reads, so it is retried like a GET.
func (s *UsersService) Presence(ctx context.Context, q PresenceQuery) (map[string]Presence, error) {
	var ps problems
	if q.SelectedConversationID != "" && q.NoConversationSelected {
		ps.add("q.NoConversationSelected", "cannot be combined with SelectedConversationID")
	}
	for i, id := range q.UserIDs {
		if id == "" {
			ps.add(fieldIndex("q.UserIDs", i), "user id must not be empty")
		}
	}
	var resp struct {
		Data map[string]Presence `json:"data"`
	}
	err := s.client().do(ctx, &request{
		op:         "talkjs.users.presence",
		api:        s.client().talkjs,
		method:     http.MethodPost,
		path:       "/presences",
		body:       q,
		out:        &resp,
		idempotent: true, // a query: it changes nothing
		invalid:    ps.err(),
	})
	if err != nil {
		return nil, err
	}
	if resp.Data == nil {
		resp.Data = map[string]Presence{}
	}
	return resp.Data, nil
}

func userID(u *User) string { return u.ID }

// sortedKeys gives the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 1 {
		for k := range m {
			return []string{k}
		}
	}
	return slices.Sorted(maps.Keys(m))
}
