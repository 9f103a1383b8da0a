package convo

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomString mixes ASCII, escapes, control characters, multi-byte
// runes, U+2028 and invalid UTF-8.
func randomString(r *rand.Rand) string {
	parts := []string{"a", "Z", " ", `"`, `\`, "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "<", "&", "é", "日本", "\u2028", "\u2029", "\xff", "\xe2\x82", "😀"}
	n := r.IntN(12)
	var b []byte
	for range n {
		b = append(b, parts[r.IntN(len(parts))]...)
	}
	return string(b)
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		s := randomString(r)
		got := appendJSONString(nil, s)
		require.True(t, json.Valid(got), "%q -> %s", s, got)
		var back, want string
		require.NoError(t, json.Unmarshal(got, &back))
		std, _ := json.Marshal(s)
		require.NoError(t, json.Unmarshal(std, &want))
		assert.Equal(t, want, back, "%q", s)
		if utf8.ValidString(s) {
			assert.Equal(t, s, back)
		}
	}
}

func TestUpdateBodiesAreValidJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	strs := func() []string {
		var ss []string
		for range r.IntN(3) {
			ss = append(ss, randomString(r))
		}
		return ss
	}
	m := func() map[string]string {
		out := map[string]string{}
		for range r.IntN(20) {
			out[randomString(r)] = randomString(r)
		}
		return out
	}
	for range 500 {
		u := UserUpdate{Name: randomString(r), Email: strs(), Phone: strs(), PhotoURL: randomString(r),
			WelcomeMessage: randomString(r), Role: randomString(r), Locale: randomString(r), Custom: m(),
			PushTokens: map[string]bool{randomString(r): true, randomString(r): false}}
		b, err := u.encodeBody()
		require.NoError(t, err)
		require.True(t, json.Valid(b), "%s", b)
		std, err := json.Marshal(u)
		require.NoError(t, err)
		assert.JSONEq(t, string(std), string(b))

		batch, err := userBatch{ids: []string{"a", randomString(r)}, users: map[string]UserUpdate{"a": u}}.encodeBody()
		require.NoError(t, err)
		require.True(t, json.Valid(batch), "%s", batch)

		cu := ConversationUpdate{Participants: []string{"p" + randomString(r)}, Subject: randomString(r),
			WelcomeMessages: strs(), Custom: m(), PhotoURL: randomString(r)}
		b, err = cu.encodeBody()
		require.NoError(t, err)
		require.True(t, json.Valid(b), "%s", b)
	}
}

// stdUserBody is what a hand-written client would marshal with
// encoding/json for the same upsert.
type stdUserBody struct {
	Name           string            `json:"name,omitempty"`
	Email          []string          `json:"email,omitempty"`
	Phone          []string          `json:"phone,omitempty"`
	PhotoURL       string            `json:"photoUrl,omitempty"`
	WelcomeMessage string            `json:"welcomeMessage,omitempty"`
	Role           string            `json:"role,omitempty"`
	Locale         string            `json:"locale,omitempty"`
	Custom         map[string]string `json:"custom,omitempty"`
	PushTokens     map[string]*bool  `json:"pushTokens,omitempty"`
}

// BenchmarkUserUpdateBody compares the body the pipeline encodes for an
// upsert (encodeBody, what Users.Upsert sends) with json.Marshal of a
// hand-written struct, and with json.Marshal of UserUpdate (MarshalJSON,
// which encoding/json then scans and compacts again).
func BenchmarkUserUpdateBody(b *testing.B) {
	yes := true
	u := UserUpdate{Name: "Alice", Email: []string{"alice@example.com"}, PhotoURL: "https://yoursite.com/userpictures/12081.png",
		WelcomeMessage: "Hey there! :-)", Role: "buyer", Custom: map[string]string{"country": "ca", "plan": "gold"},
		PushTokens: map[string]bool{"fcm:abc": true}}
	s := stdUserBody{Name: u.Name, Email: u.Email, PhotoURL: u.PhotoURL, WelcomeMessage: u.WelcomeMessage, Role: u.Role,
		Custom: u.Custom, PushTokens: map[string]*bool{"fcm:abc": &yes}}
	var body any = u
	b.Run("convo-pipeline", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := body.(bodyEncoder).encodeBody(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("convo-json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(u); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json-struct", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
