package convo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
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
	// redact hides the tokens it gave in b, in every form that redact
	// finds a configured secret in (see secrets.redact).
	redact(b []byte) []byte
	// longest is the length of the longest form of a token it gave (see
	// secrets.longest), so that a cut body is read that much further.
	longest() int
}

// appTokenTTL is how long a TalkJS app token is valid: the docs' example.
// A token is minted for one attempt and used once.
const appTokenTTL = 30 * time.Second

// reauthorize sets the Authorization of a retry again, when the endpoint
// has a credential: an app token is single-use, and a token may have come
// close to its expiry during the backoff. req is a shallow copy of the
// previous attempt's request, so its header map is copied before it
// changes.
func reauthorize(req *http.Request, api *endpoint) error {
	if api == nil || api.cred == nil {
		return nil
	}
	auth, err := api.cred.header(req.Context())
	if err != nil {
		return err
	}
	h := req.Header.Clone()
	h["Authorization"] = auth
	req.Header = h
	return nil
}

// appTokens mints the TalkJS app-scoped JWTs of a client: HS256 over the
// secret key, claims {"tokenType": "app", "iss": appID, "iat", "exp"},
// valid appTokenTTL. TalkJS recommends a new token for each REST API
// request: every attempt gets one of its own, never shared with another
// call. Its claims are the ones TalkJS documents, which hold no nonce:
// two attempts in the same second carry the same bytes. Minting is the
// only cost it adds to a call (bench/README.md has the figures); a
// client with the secret key (no WithTalkJSTokenAuth) has no credential
// step at all.
type appTokens struct {
	now func() time.Time // time.Now; a test's clock
	// mark begins every token this client mints, whenever it was minted
	// (see tokenMark): redact hides any token of this client that an
	// answer echoes.
	mark []byte
	// claims begins the claims of every token, up to the value of "iat".
	claims []byte
	// macs holds HMAC-SHA256 states keyed with the secret key: keying one
	// costs more than the signature itself.
	macs sync.Pool
	// tokenLen is the length of the longest token (see longest).
	tokenLen int
}

func newAppTokens(appID, secret string) *appTokens {
	iss, _ := json.Marshal(appID) // a string always encodes
	t := &appTokens{
		now:    time.Now,
		mark:   tokenMark(appID),
		claims: []byte(`{"tokenType":"app","iss":` + string(iss) + `,"iat":`),
	}
	key := []byte(secret)
	t.macs.New = func() any { return hmac.New(sha256.New, key) }
	t.tokenLen = len(t.mint(1e10, 1e10)) - len("Bearer ")
	return t
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

// header is the Authorization header of one attempt, with a token minted
// for it.
func (t *appTokens) header(context.Context) ([]string, error) {
	iat := t.now().Unix()
	return []string{t.mint(iat, iat+int64(appTokenTTL/time.Second))}, nil
}

// refused: a refused app token is not mended by minting another (the
// key, the app or the clock is wrong), so the call is not repeated.
func (t *appTokens) refused([]string) bool { return false }

// redact hides in b every app token this client minted (each is
// single-use, but an answer may echo it): each run of JWT characters that
// begins with the tokens' mark. JSON and URL escaping leave a JWT as it
// is, so this is every form a configured secret is found in.
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

// longest is the length of the longest token minted: of one minted for
// the year 2286 (an 11-digit iat). A token is made of base64url and dots,
// which JSON and URL escaping leave as they are, so its raw form is the
// longest, and the one redact finds.
func (t *appTokens) longest() int { return t.tokenLen }

// isJWTByte reports a byte of a JWT: base64url or the dot.
func isJWTByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// jwtHeader is the encoded JOSE header of every app token.
var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// mint signs a TalkJS app token valid from iat to exp (Unix seconds) and
// gives the Authorization value, "Bearer <token>", built in one buffer:
// the header, the claims and the signature, each encoded.
func (t *appTokens) mint(iat, exp int64) string {
	var claims [128]byte
	c := append(claims[:0], t.claims...)
	c = strconv.AppendInt(c, iat, 10)
	c = append(c, `,"exp":`...)
	c = strconv.AppendInt(c, exp, 10)
	c = append(c, '}')
	enc := base64.RawURLEncoding
	sigLen := enc.EncodedLen(sha256.Size)
	const bearer = "Bearer "
	b := make([]byte, 0, len(bearer)+len(jwtHeader)+1+enc.EncodedLen(len(c))+1+sigLen+sha256.Size)
	b = append(b, bearer...)
	b = append(b, jwtHeader...)
	b = append(b, '.')
	b = enc.AppendEncode(b, c)
	mac := t.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(b[len(bearer):])
	signed := len(b)
	b = mac.Sum(b) // the raw signature, encoded below in its place
	t.macs.Put(mac)
	var sig [sha256.Size]byte
	copy(sig[:], b[signed:])
	b = append(b[:signed], '.')
	return string(enc.AppendEncode(b, sig[:]))
}
