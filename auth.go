package convo

import (
	"bytes"
	"context"
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
// endpoint, fixed (a secret key, a plugin connection's token) or given by
// its credential at run time: a TalkJS app token minted here (see
// WithTalkJSTokenAuth), or Selarti's token, the API key exchanged at
// /wf/auth (see selartiToken in selarti.go).

// credential gives an endpoint's Authorization header at run time. The
// pipeline asks it for the header of every attempt, and tells it when the
// server refused a header: when the credential can give another, the
// server applied nothing and the call is sent once more.
type credential interface {
	// header gives the Authorization header; it may obtain a token first
	// (concurrent callers share one exchange).
	header(ctx context.Context) ([]string, error)
	// refused tells the credential the server refused h, and reports
	// whether the next header may be accepted (say, a token exchanged
	// anew), so that the call is worth one repeat.
	refused(h []string) bool
	// redact hides the tokens it gave in b.
	redact(b []byte) []byte
}

// TalkJS app tokens: how long one is valid, and how long before it
// expires the next one is minted, so that a token never reaches TalkJS
// about to expire.
const (
	appTokenTTL    = 30 * time.Second
	appTokenMargin = 5 * time.Second
)

// authorization is the Authorization header of the endpoint's next
// attempt: its credential's, or the fixed one (nil for none).
func (ep *endpoint) authorization(ctx context.Context) ([]string, error) {
	if ep.cred != nil {
		return ep.cred.header(ctx)
	}
	return ep.auth, nil
}

// prepareRetry sets the Authorization of a retry again: a minted token
// may have come close to its expiry during the backoff. req is a shallow
// copy of the previous attempt's request, so its header map is copied
// before it changes.
func prepareRetry(req *http.Request) error {
	if api := stateOf(req.Context()).api; api != nil && api.cred != nil {
		auth, err := api.cred.header(req.Context())
		if err != nil {
			return err
		}
		h := req.Header.Clone()
		h["Authorization"] = auth
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
	// mark begins every token this client mints, whenever it was minted
	// (see tokenMark): redact hides a token that another call replaced
	// while an answer echoing it was on its way.
	mark []byte

	mu   sync.Mutex
	auth []string  // "Bearer <jwt>"; shared, never modified
	exp  time.Time // expiry of auth's token
}

func newAppTokens(appID, secret string) *appTokens {
	return &appTokens{appID: appID, key: []byte(secret), now: time.Now, mark: tokenMark(appID)}
}

// tokenMark is what every app token of appID begins with: the encoded
// JOSE header, the dot, and the encoding of the claims up to "iat" cut to
// whole groups of 3 bytes, whose encoding does not depend on what
// follows.
func tokenMark(appID string) []byte {
	iss, _ := json.Marshal(appID) // a string always encodes
	claims := `{"tokenType":"app","iss":` + string(iss) + `,"iat":`
	claims = claims[:len(claims)/3*3]
	return []byte(jwtHeader + "." + base64.RawURLEncoding.EncodeToString([]byte(claims)))
}

// header is the Authorization header with a token valid for at least
// appTokenMargin more.
func (t *appTokens) header(context.Context) ([]string, error) {
	return t.current(), nil
}

// refused: a refused app token is not mended by minting another (the
// key, the app or the clock is wrong), so the call is not repeated.
func (t *appTokens) refused([]string) bool { return false }

// redact hides in b every app token this client minted, the current one
// and those it replaced (a call's answer may echo a token that a
// concurrent call has replaced since): each run of JWT characters that
// begins with the tokens' mark.
func (t *appTokens) redact(b []byte) []byte {
	if !bytes.Contains(b, t.mark) {
		return b
	}
	out := make([]byte, 0, len(b))
	for {
		i := bytes.Index(b, t.mark)
		if i < 0 {
			return append(out, b...)
		}
		end := i + len(t.mark)
		for end < len(b) && isJWTByte(b[end]) {
			end++
		}
		out = append(append(out, b[:i]...), redacted...)
		b = b[end:]
	}
}

// isJWTByte reports a byte of a JWT: base64url or the dot.
func isJWTByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// current is the token's header, minted anew when the one held has less
// than appTokenMargin left.
func (t *appTokens) current() []string {
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
