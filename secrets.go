package convo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds what keeps the configured secrets (tokens, secret keys
// and the Authorization values built from them) out of every form a
// program prints: the redaction of what a server echoes, and the printed
// forms of a Client (fmt with any verb, slog, encoding/json).

// secrets are the configured credentials, never shown in an error, and
// the tokens a credential obtained at run time (see credential).
type secrets [][]byte

// add records secret. redact finds it in every form a server may echo it
// in, so only the secret itself is kept.
func (ss *secrets) add(secret string) {
	if secret != "" && !slices.ContainsFunc(*ss, func(s []byte) bool { return string(s) == secret }) {
		*ss = append(*ss, []byte(secret))
	}
}

// redacted replaces a secret wherever the SDK found one.
const redacted = "[redacted]"

// shortSecret is the length under which a secret is redacted only where it
// stands as a whole token: a test key such as "k" would otherwise mangle
// every word holding the letter.
const shortSecret = 8

// maxEscape is the most bytes one byte of a secret takes in a form redact
// finds ("\u003c" for "<").
const maxEscape = 6

// redact replaces every secret in b, in every form a server may echo it
// in: as is, escaped in a JSON string (by any encoder: encoding/json's
// HTML escapes "\u003c", PHP's "\/" with "<" left raw, any character as
// "\uXXXX" in either case, a surrogate pair) and escaped in a URL
// ("%2F" in either case, "+" for a space), or any mix of them. A secret
// shorter than shortSecret bytes is replaced only where no letter, digit
// or underscore touches it.
func (ss secrets) redact(b []byte) []byte {
	for _, s := range ss {
		b = redactSecret(b, s)
	}
	return b
}

// redactSecret replaces every form of s in b; b is returned as is when it
// holds none.
func redactSecret(b, s []byte) []byte {
	if len(s) == 0 {
		return b
	}
	var out []byte
	last := 0 // b[last:] is not copied to out yet
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != s[0] && c != '\\' && c != '%' && c != '+' {
			continue
		}
		n := matchForm(b[i:], s)
		if n == 0 || (len(s) < shortSecret && (i > 0 && isWordByte(b[i-1]) || i+n < len(b) && isWordByte(b[i+n]))) {
			continue
		}
		out = append(append(out, b[last:i]...), redacted...)
		i += n - 1
		last = i + 1
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// matchForm is the length of the form of s that b begins with, 0 for none.
func matchForm(b, s []byte) int {
	j := 0
	for k := 0; k < len(s); {
		r, size := utf8.DecodeRune(s[k:])
		n := matchRune(b[j:], s[k:k+size], r)
		if n == 0 {
			return 0
		}
		j, k = j+n, k+size
	}
	return j
}

// matchRune is the length of the form of the rune r (raw, its bytes in s)
// that b begins with, 0 for none.
func matchRune(b, raw []byte, r rune) int {
	if bytes.HasPrefix(b, raw) {
		return len(raw)
	}
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case '\\':
		if len(b) < 2 {
			return 0
		}
		if b[1] != 'u' {
			if e, ok := jsonShortEscapes[b[1]]; ok && rune(e) == r {
				return 2
			}
			return 0
		}
		u, ok := hex4(b[1:])
		switch {
		case !ok:
			return 0
		case rune(u) == r && utf8.ValidRune(r):
			return 6
		case utf16.IsSurrogate(rune(u)) && len(b) >= 12 && b[6] == '\\':
			if v, ok := hex4(b[7:]); ok && utf16.DecodeRune(rune(u), rune(v)) == r && r != utf8.RuneError {
				return 12
			}
		}
		return 0
	case '%':
		// A URL escapes each byte of the rune; some may be left raw.
		j := 0
		for _, c := range raw {
			switch {
			case j < len(b) && b[j] == c:
				j++
			case j+2 < len(b) && b[j] == '%' && unhex(b[j+1])<<4|unhex(b[j+2]) == int(c): // a bad digit makes it negative
				j += 3
			default:
				return 0
			}
		}
		return j
	case '+':
		if r == ' ' {
			return 1
		}
	}
	return 0
}

// jsonShortEscapes are JSON's two-character escapes and what they stand for.
var jsonShortEscapes = map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 reads "uXXXX" at the start of b.
func hex4(b []byte) (uint16, bool) {
	if len(b) < 5 || b[0] != 'u' {
		return 0, false
	}
	var v int
	for _, c := range b[1:5] {
		d := unhex(c)
		if d < 0 {
			return 0, false
		}
		v = v<<4 | d
	}
	return uint16(v), true
}

// unhex is the value of a hex digit, -1 for another byte.
func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// isWordByte reports a byte of a word: an ASCII letter, digit or
// underscore, or a byte of a character beyond ASCII.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

// longest is the length of the longest form of a secret. What is cut to a
// size is read that much further and redacted before it is cut, so that no
// prefix of a secret straddling the cut survives.
func (ss secrets) longest() int {
	n := 0
	for _, s := range ss {
		n = max(n, maxEscape*len(s))
	}
	return n
}

// String describes the client by its providers and ids; it never shows a
// credential.
func (c Client) String() string {
	var b strings.Builder
	b.WriteString("convo.Client{")
	if tq := c.talqui; tq != nil {
		b.WriteString("talqui: tenant ")
		b.WriteString(strconv.Quote(tq.tenantID))
		b.WriteString(", connections [")
		for i, pc := range tq.conns {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Quote(pc.ID))
		}
		b.WriteByte(']')
	}
	if c.talkjsApp != "" {
		if c.talqui != nil {
			b.WriteString("; ")
		}
		b.WriteString("talkjs: app ")
		b.WriteString(strconv.Quote(c.talkjsApp))
	}
	if c.selarti != nil {
		if c.talqui != nil || c.talkjsApp != "" {
			b.WriteString("; ")
		}
		b.WriteString("selarti: configured")
	}
	b.WriteByte('}')
	return b.String()
}

// Format prints String for every verb (%v, %+v, %#v, %s, %d, %x, ...), %q
// quoted: the client holds credentials that no verb may print.
func (c Client) Format(f fmt.State, verb rune) { formatSafe(f, verb, c.String()) }

// LogValue gives slog the providers and ids, never a credential.
func (c Client) LogValue() slog.Value {
	var attrs []slog.Attr
	if tq := c.talqui; tq != nil {
		ids := make([]string, len(tq.conns))
		for i, pc := range tq.conns {
			ids[i] = pc.ID
		}
		attrs = append(attrs, slog.Group("talqui", slog.String("tenant", tq.tenantID), slog.Any("connections", ids)))
	}
	if c.talkjsApp != "" {
		attrs = append(attrs, slog.Group("talkjs", slog.String("app", c.talkjsApp)))
	}
	if c.selarti != nil {
		attrs = append(attrs, slog.Bool("selarti", true))
	}
	return slog.GroupValue(attrs...)
}

// clientJSON is the encoding/json form of a Client.
type clientJSON struct {
	Talqui *talquiJSON `json:"talqui,omitempty"`
	TalkJS *talkjsJSON `json:"talkjs,omitempty"`
	// Selarti has no id to show: only whether it is configured.
	Selarti bool `json:"selarti,omitempty"`
}

type talquiJSON struct {
	TenantID    string   `json:"tenantID"`
	Connections []string `json:"connections"`
}

type talkjsJSON struct {
	AppID string `json:"appID"`
}

// MarshalJSON gives the providers and ids, never a credential.
func (c Client) MarshalJSON() ([]byte, error) {
	var v clientJSON
	if tq := c.talqui; tq != nil {
		v.Talqui = &talquiJSON{TenantID: tq.tenantID, Connections: make([]string, len(tq.conns))}
		for i, pc := range tq.conns {
			v.Talqui.Connections[i] = pc.ID
		}
	}
	if c.talkjsApp != "" {
		v.TalkJS = &talkjsJSON{AppID: c.talkjsApp}
	}
	v.Selarti = c.selarti != nil
	return json.Marshal(v)
}

// formatSafe writes s for any verb, quoted for %q: the Format of a type
// whose fields must not be printed by reflection.
func formatSafe(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = io.WriteString(f, s)
}

// Format prints the service's name for every verb: its client holds
// credentials that no verb may print.
func (SessionsService) Format(f fmt.State, verb rune) { formatSafe(f, verb, "convo.SessionsService") }

// Format prints the service's name for every verb: its client holds
// credentials that no verb may print.
func (UsersService) Format(f fmt.State, verb rune) { formatSafe(f, verb, "convo.UsersService") }

// Format prints the service's name for every verb: its client holds
// credentials that no verb may print.
func (ConversationsService) Format(f fmt.State, verb rune) {
	formatSafe(f, verb, "convo.ConversationsService")
}

// Format prints the service's name for every verb: its client holds
// credentials that no verb may print.
func (SelartiService) Format(f fmt.State, verb rune) { formatSafe(f, verb, "convo.SelartiService") }
