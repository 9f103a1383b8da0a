package convo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// This file holds the Authorization step of the pipeline: the header of an
// endpoint, fixed (a secret key, a plugin connection's token) or minted
// (a TalkJS app token, see WithTalkJSTokenAuth).

// TalkJS app tokens: how long one is valid, and how long before it
// expires the next one is minted, so that a token never reaches TalkJS
// about to expire.
const (
	appTokenTTL    = 30 * time.Second
	appTokenMargin = 5 * time.Second
)

// authorization is the Authorization header of the endpoint's next
// attempt: the fixed one, or a valid app token.
func (ep *endpoint) authorization() []string {
	if ep.tokens != nil {
		return ep.tokens.header()
	}
	return ep.auth
}

// prepareRetry sets the Authorization of a retry again: a minted token
// may have come close to its expiry during the backoff. req is a shallow
// copy of the previous attempt's request, so its header map is copied
// before it changes.
func prepareRetry(req *http.Request) error {
	if api := stateOf(req.Context()).api; api != nil && api.tokens != nil {
		h := req.Header.Clone()
		h["Authorization"] = api.tokens.header()
		req.Header = h
	}
	return nil
}

// appTokens mints the TalkJS app-scoped JWTs of a client: HS256 over the
// secret key, claims {"tokenType": "app", "iss": appID, "iat", "exp"},
// valid appTokenTTL. The current one is shared by every call until it is
// within appTokenMargin of its expiry; then the next call mints a new one.
type appTokens struct {
	appID string
	key   []byte
	now   func() time.Time // time.Now; a test's clock

	mu   sync.Mutex
	auth []string  // "Bearer <jwt>"; shared, never modified
	exp  time.Time // expiry of auth's token
}

func newAppTokens(appID, secret string) *appTokens {
	return &appTokens{appID: appID, key: []byte(secret), now: time.Now}
}

// header is the Authorization header with a token valid for at least
// appTokenMargin more.
func (t *appTokens) header() []string {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.auth == nil || !now.Before(t.exp.Add(-appTokenMargin)) {
		// JWT times are whole seconds: exp is rounded down, so the token
		// is valid for at most appTokenTTL.
		iat := now.Unix()
		t.exp = time.Unix(iat, 0).Add(appTokenTTL)
		t.auth = []string{"Bearer " + mintAppToken(t.appID, t.key, iat, t.exp.Unix())}
	}
	return t.auth
}

// jwtHeader is the encoded JOSE header of every app token.
var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// mintAppToken signs a TalkJS app token.
func mintAppToken(appID string, key []byte, iat, exp int64) string {
	iss, _ := json.Marshal(appID) // a string always encodes
	claims := `{"tokenType":"app","iss":` + string(iss) +
		`,"iat":` + strconv.FormatInt(iat, 10) + `,"exp":` + strconv.FormatInt(exp, 10) + `}`
	signed := jwtHeader + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
