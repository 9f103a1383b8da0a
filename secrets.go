package convo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// This file holds what keeps the configured secrets (tokens, secret keys
// and the Authorization values built from them) out of every form a
// program prints: the redaction of what a server echoes, and the printed
// forms of a Client (fmt with any verb, slog, encoding/json).

// secrets are the configured credentials, never shown in an error.
type secrets [][]byte

// add records secret and the forms a server may echo it in: escaped in a
// JSON string (encoding/json's HTML escapes, and "\/" as other encoders
// write a slash) and escaped in a URL query. Each form differs from the
// secret only when it holds such a character.
func (ss *secrets) add(secret string) {
	forms := []string{secret}
	if b, err := json.Marshal(secret); err == nil {
		j := string(b[1 : len(b)-1])
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	forms = append(forms, url.QueryEscape(secret))
	for i, f := range forms {
		if f != "" && !slices.Contains(forms[:i], f) {
			*ss = append(*ss, []byte(f))
		}
	}
}

// redacted replaces a secret wherever the SDK found one.
const redacted = "[redacted]"

// redact replaces every secret in b.
func (ss secrets) redact(b []byte) []byte {
	for _, s := range ss {
		if len(s) > 0 && bytes.Contains(b, s) {
			b = bytes.ReplaceAll(b, s, []byte(redacted))
		}
	}
	return b
}

// longest is the length of the longest secret. What is cut to a size is
// read that much further and redacted before it is cut, so that no prefix
// of a secret straddling the cut survives.
func (ss secrets) longest() int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s))
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
