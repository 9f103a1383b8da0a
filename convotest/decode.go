package convotest

// This file holds what every endpoint uses to read a request body: the
// JSON checks, and the problem collector with its field decoders.

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
)

// isJSON reports whether the request's Content-Type is application/json,
// parameters (charset) allowed.
func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// object parses body as one JSON object, keeping each member raw.
func object(body []byte) (map[string]json.RawMessage, bool) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	return m, true
}

// isNull reports whether raw is the JSON null.
func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// asString decodes raw as a JSON string.
func asString(raw json.RawMessage) (string, bool) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	var s string
	return s, json.Unmarshal(b, &s) == nil
}

// problem is one thing wrong with a body: the field (by its JSON name, or
// a path such as messages[2].sender) and what is wrong with it.
type problem struct{ field, reason string }

// problemList collects what is wrong with a body, in the order found.
type problemList []problem

func (p *problemList) add(field, reason string) { *p = append(*p, problem{field, reason}) }

// unknown notes a field the endpoint does not take, so that a misspelt
// name shows.
func (p *problemList) unknown(field string) { p.add(field, "is not a known field") }

// within adds the problems of q, each field put below prefix, such as
// messages[2].
func (p *problemList) within(prefix string, q problemList) {
	for _, e := range q {
		f := prefix
		if e.field != "" {
			f += "." + e.field
		}
		p.add(f, e.reason)
	}
}

// text is every problem as "field reason", joined by "; ".
func (p problemList) text() string {
	parts := make([]string, len(p))
	for i, e := range p {
		parts[i] = strings.TrimSpace(e.field + " " + e.reason)
	}
	return strings.Join(parts, "; ")
}

// reasons groups the reasons by field, the shape of a TalkJS 400:
// {"reasons": {"participants": ["must be an array of user ids"]}}.
func (p problemList) reasons() map[string][]string {
	out := make(map[string][]string, len(p))
	for _, e := range p {
		out[e.field] = append(out[e.field], e.reason)
	}
	return out
}

// stringOrNull decodes a string, or null (nil); on a bad type it notes a
// problem and keeps old.
func (p *problemList) stringOrNull(name string, raw json.RawMessage, old *string) *string {
	if isNull(raw) {
		return nil
	}
	v, ok := asString(raw)
	if !ok {
		p.add(name, "must be a string or null")
		return old
	}
	return &v
}

// stringListOrNull decodes an array of strings, or null (nil).
func (p *problemList) stringListOrNull(name string, raw json.RawMessage, old []string) []string {
	if isNull(raw) {
		return nil
	}
	var v []string
	if json.Unmarshal(raw, &v) != nil {
		p.add(name, "must be an array of strings or null")
		return old
	}
	return v
}

// fields applies the members of a body object: a member named in
// nullable is decoded into its destination (a **string or a *[]string, see
// stringOrNull and stringListOrNull); any other goes to other, which notes
// an unknown one itself.
func (p *problemList) fields(body map[string]json.RawMessage, nullable map[string]any, other func(name string, raw json.RawMessage)) {
	for name, raw := range body {
		switch dst := nullable[name].(type) {
		case nil:
			other(name, raw)
		case **string:
			*dst = p.stringOrNull(name, raw, *dst)
		case *[]string:
			*dst = p.stringListOrNull(name, raw, *dst)
		default:
			panic("convotest: nullable field " + name + " of an unsupported type")
		}
	}
}

// custom applies a custom-field patch: null erases all fields; an object
// sets each key given, and a key given as null is removed. Values must be
// strings.
func (p *problemList) custom(raw json.RawMessage, old map[string]string) map[string]string {
	return patchMap(p, "custom", raw, old, "must be an object of string values, or null", nil)
}

// pushTokens applies a push-token patch: null unregisters all; an object
// registers each key given as true and unregisters each given as null.
func (p *problemList) pushTokens(raw json.RawMessage, old map[string]bool) map[string]bool {
	return patchMap(p, "pushTokens", raw, old, "must be an object of true or null values, or null",
		func(v bool) string {
			if !v {
				return "values must be true or null"
			}
			return ""
		})
}

// patchMap applies a patch object to a copy of old: null empties the map;
// in an object, a key given as null is removed and any other is set. A
// patch that is not an object of V or null notes problem on field and
// keeps old; a value that check (when not nil) refuses notes check's
// problem and leaves its key alone.
func patchMap[V any](p *problemList, field string, raw json.RawMessage, old map[string]V, problem string, check func(V) string) map[string]V {
	if isNull(raw) {
		return map[string]V{}
	}
	var patch map[string]*V
	if json.Unmarshal(raw, &patch) != nil || patch == nil {
		p.add(field, problem)
		return old
	}
	out := maps.Clone(old)
	if out == nil {
		out = map[string]V{}
	}
	for k, v := range patch {
		switch {
		case v == nil:
			delete(out, k)
		case check != nil && check(*v) != "":
			p.add(field, check(*v))
		default:
			out[k] = *v
		}
	}
	return out
}
