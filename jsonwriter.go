package convo

import (
	"slices"
	"unicode/utf8"
)

// This file holds the JSON writer of the update bodies (UserUpdate,
// ConversationUpdate and UpsertMany's batch): set fields only, maps with
// sorted keys, true-or-null push tokens, and null for each name in Clear.

// It pays in bench/: through encoding/json instead, BenchmarkUpsertMany
// (10,000 users) took 61.0k allocs and 6.7 MB an op against 20.5k and
// 4.1 MB, and InMemory/op=Upsert 32 allocs against 31.

// jsonObject appends a JSON object to b, field by field. Keys are trusted
// constants (documented field names); values are escaped.
type jsonObject struct {
	b      []byte
	fields int
}

func (w *jsonObject) open() { w.b = append(w.b, '{') }

func (w *jsonObject) close() []byte { return append(w.b, '}') }

func (w *jsonObject) key(k string) {
	if w.fields > 0 {
		w.b = append(w.b, ',')
	}
	w.fields++
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

// str writes k: v when v is not empty.
func (w *jsonObject) str(k, v string) {
	if v == "" {
		return
	}
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

// strs writes k: [v...] when v is not empty.
func (w *jsonObject) strs(k string, v []string) {
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, s)
	}
	w.b = append(w.b, ']')
}

// strMap writes k: {…} with sorted keys when m is not empty.
func (w *jsonObject) strMap(k string, m map[string]string) {
	writeMap(w, k, m, appendJSONString)
}

// trueOrNullMap writes k: {…} with true for a true value and null for a
// false one, keys sorted, when m is not empty.
func (w *jsonObject) trueOrNullMap(k string, m map[string]bool) {
	writeMap(w, k, m, func(b []byte, v bool) []byte {
		if v {
			return append(b, "true"...)
		}
		return append(b, "null"...)
	})
}

// writeMap writes k: {…} with sorted keys, each value by value, when m is
// not empty.
func writeMap[V any](w *jsonObject, k string, m map[string]V, value func([]byte, V) []byte) {
	if len(m) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '{')
	var buf [16]string
	for i, mk := range sortInto(buf[:0], m) {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, mk)
		w.b = append(w.b, ':')
		w.b = value(w.b, m[mk])
	}
	w.b = append(w.b, '}')
}

// nulls writes name: null for each name of clear, once each. The names
// must have been checked against a clearSpec.
func (w *jsonObject) nulls(clear []string) {
	for i, name := range clear {
		if slices.Contains(clear[:i], name) {
			continue
		}
		w.key(name)
		w.b = append(w.b, "null"...)
	}
}

// sortInto appends the keys of m to keys, sorted; with a stack buffer as
// keys a small map costs no allocation.
func sortInto[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sizeHint estimates the encoded size of strings, for a buffer's capacity.
func sizeHint(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" { // the writers omit an empty string
			n += len(s) + 16
		}
	}
	return n
}

func sliceHint(ss []string) int {
	n := 0
	for _, s := range ss {
		n += len(s) + 4
	}
	return n
}

func mapHint[V any](m map[string]V) int {
	n := 0
	for k := range m {
		n += len(k) + 8
	}
	return n
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (except for <, > and &, which JSON does not require): quotes,
// backslashes, control characters, U+2028 and U+2029; invalid UTF-8
// becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
