package convo

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// This file holds the problem collector behind every *ValidationError and
// the rules that builders and services share: phone numbers, UTF-8 text,
// ids, channel URNs and the Clear list of the update types.

// problems collects validation problems; its err is nil when there are none.
type problems []Problem

func (ps *problems) add(field, reason string) {
	*ps = append(*ps, Problem{Field: field, Reason: reason})
}

func (ps *problems) addf(field, format string, args ...any) {
	ps.add(field, fmt.Sprintf(format, args...))
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// merge appends the problems of err (a *ValidationError) to ps and
// returns any other error unchanged.
func (ps *problems) merge(err error) error {
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		*ps = append(*ps, ve.Problems...)
		return nil
	}
	return err
}

// phone checks a phone number and gives its international digits (E.164
// without the '+'), as WhatsApp expects them. '+', spaces, dots, dashes and
// brackets are removed; a leading '+' or "00" is the international prefix
// (not part of the number). The number must be valid for its country code
// by libphonenumber's metadata. A number without '+' or "00" is read as a
// national number of region (a client's WithDefaultCountry) when region is
// set and it is valid there, else as an international number when it is
// valid as such, and is refused otherwise: "27 99999-9999" (a Brazilian
// mobile without +55) never goes to +27, South Africa.
func (ps *problems) phone(field, phone, region string) string {
	s := strings.TrimSpace(phone)
	plus := strings.HasPrefix(s, "+")
	if plus {
		s = s[1:]
	}
	d := s
	if !digitsOnly(s) { // else s is already the digits: no copy
		var b strings.Builder
		b.Grow(len(s))
		for _, r := range s {
			switch {
			case r >= '0' && r <= '9':
				b.WriteRune(r)
			case r == ' ' || r == '.' || r == '-' || r == '(' || r == ')' || r == '[' || r == ']':
			case r == '+':
				ps.add(field, "may hold '+' only as the first character")
				return ""
			default:
				ps.add(field, "must hold only digits, '+', spaces, dots, dashes and brackets")
				return ""
			}
		}
		d = b.String()
	}
	intl := plus
	if !plus && strings.HasPrefix(d, "00") {
		d, intl = d[2:], true // "0055 27 …": 00 is the international prefix
	}
	if d == "" {
		ps.add(field, "required")
		return ""
	}
	if !intl && region != "" {
		if n, ok := nationalPhone(d, region); ok {
			return n
		}
	}
	switch {
	case len(d) < 8 || len(d) > 15:
		if intl || region == "" {
			ps.addf(field, "must have 8 to 15 digits, has %d", len(d))
		} else {
			ps.addf(field, "is not a valid phone number of %s (WithDefaultCountry), and an international one must have 8 to 15 digits, has %d", region, len(d))
		}
		return d
	case d[0] == '0':
		if region == "" {
			ps.add(field, "must start with a country code, which never starts with 0 (a national number needs the client option WithDefaultCountry)")
		} else {
			ps.addf(field, "is not a valid phone number of %s (WithDefaultCountry), and an international one never starts with 0", region)
		}
		return d
	}
	n, cc, ok := internationalPhone(d)
	switch {
	case ok:
		return n
	case cc == 0:
		ps.add(field, "must start with a known country code")
	case intl:
		ps.addf(field, "is not a valid number for country code +%d (%s) by libphonenumber's metadata", cc, phonenumbers.GetRegionCodeForCountryCode(cc))
	case region == "":
		ps.addf(field, "is not a valid international number (read with country code +%d, %s, by libphonenumber's metadata): write it with '+' and its country code, or read national numbers with the client option WithDefaultCountry", cc, phonenumbers.GetRegionCodeForCountryCode(cc))
	default:
		ps.addf(field, "is valid neither as a phone number of %s (WithDefaultCountry) nor as an international number (country code +%d, %s) by libphonenumber's metadata", region, cc, phonenumbers.GetRegionCodeForCountryCode(cc))
	}
	return d
}

// internationalPhone reads d, digits after the international prefix: it
// gives the number's E.164 digits and whether libphonenumber's metadata
// holds it valid, and the country code it starts with (0 for none known).
// It answers as internationalPhoneLib does, most numbers without calling
// the library (phonefast.go).
func internationalPhone(d string) (e164 string, cc int, ok bool) {
	if e164, cc, ok, sure := internationalPhoneFast(d); sure {
		return e164, cc, ok
	}
	return internationalPhoneLib(d)
}

// internationalPhoneLib is internationalPhone by libphonenumber's Parse,
// IsValidNumber and Format.
func internationalPhoneLib(d string) (e164 string, cc int, ok bool) {
	n, err := phonenumbers.Parse("+"+d, "")
	if err != nil {
		return "", 0, false
	}
	cc = int(n.GetCountryCode())
	if phonenumbers.GetRegionCodeForCountryCode(cc) == phonenumbers.UNKNOWN_REGION {
		return "", 0, false
	}
	if !phonenumbers.IsValidNumber(n) {
		return "", cc, false
	}
	return phonenumbers.Format(n, phonenumbers.E164)[1:], cc, true
}

// digitsOnly tells whether s holds ASCII digits only.
func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// nationalPhone reads d, digits without an international prefix, as
// libphonenumber reads a number dialled in region: national, or starting
// with region's own country code. It gives the E.164 digits when the
// result is a valid number of region's country code (a US default reads a
// Canadian number too, as a US phone dials it). It answers as
// nationalPhoneLib does, most national numbers without calling the
// library (phonefast.go).
func nationalPhone(d, region string) (string, bool) {
	e164, ok, sure := nationalPhoneFast(d, region)
	if !sure {
		e164, ok = nationalPhoneLib(d, region)
	}
	return e164Only(e164, ok)
}

// e164Only refuses a number of more than E.164's 15 digits:
// libphonenumber's metadata holds some national numbers valid that pass
// it with their country code ("20100000000000" in DE), and no such number
// can be dialled internationally, nor reached on WhatsApp.
func e164Only(e164 string, ok bool) (string, bool) {
	if len(e164) > 15 {
		return "", false
	}
	return e164, ok
}

// nationalPhoneLib is nationalPhone by libphonenumber's Parse,
// IsValidNumber and Format.
func nationalPhoneLib(d, region string) (string, bool) {
	n, err := phonenumbers.Parse(d, region)
	if err != nil || int(n.GetCountryCode()) != phonenumbers.GetCountryCodeForRegion(region) || !phonenumbers.IsValidNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164)[1:], true
}

// checkRegion checks a default country for phone numbers: an ISO 3166-1
// alpha-2 code that libphonenumber knows, in any case. It gives the code
// in upper case.
func checkRegion(field, region string) (string, error) {
	r := strings.ToUpper(strings.TrimSpace(region))
	if phonenumbers.GetCountryCodeForRegion(r) == 0 {
		return "", &ValidationError{Problems: []Problem{{Field: field,
			Reason: fmt.Sprintf("must be an ISO 3166-1 alpha-2 country code libphonenumber knows, such as \"BR\"; got %q", truncate(region, 20))}}}
	}
	return r, nil
}

func (ps *problems) required(field, v string) {
	if blank(v) {
		ps.add(field, "required")
		return
	}
	ps.utf8(field, v)
}

// utf8 refuses text that is not valid UTF-8: encoding/json would send
// each bad byte as U+FFFD, and the contact would read "�".
func (ps *problems) utf8(field, v string) {
	if !utf8.ValidString(v) {
		ps.add(field, "must be valid UTF-8")
	}
}

func (ps *problems) urn(field, v string) {
	switch {
	case blank(v):
		ps.add(field, "required: a urn:talqui: channel URN")
	case !strings.HasPrefix(v, urnPrefix) || len(v) == len(urnPrefix):
		ps.addf(field, "must be a urn:talqui: channel URN, got %q", truncate(v, 60))
	default:
		ps.utf8(field, v)
	}
}

// maxExtraKeyLen is the longest key of an Extra map.
const maxExtraKeyLen = 256

// extraKeys checks the keys of an Extra map, which a call merges at the
// top level of its body, in sorted order: not empty, at most
// maxExtraKeyLen bytes, and not one the call sends itself (collides gives
// the reason, or "" for a free key).
func (ps *problems) extraKeys(field string, extra map[string]any, collides func(key string) string) {
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		f := fieldKey(field, k)
		switch {
		case collides(k) != "":
			ps.add(f, collides(k))
		case strings.TrimSpace(k) == "":
			ps.add(f, "key must not be empty")
		case len(k) > maxExtraKeyLen:
			ps.addf(f, "key must be at most %d bytes", maxExtraKeyLen)
		}
	}
}

// location refuses a latitude outside -90..90 or a longitude outside
// -180..180 (NaN included: it fails both comparisons).
func (ps *problems) location(field string, l [2]float64) {
	if !(l[0] >= -90 && l[0] <= 90) {
		ps.addf(field, "latitude must be from -90 to 90, got %v", l[0])
	}
	if !(l[1] >= -180 && l[1] <= 180) {
		ps.addf(field, "longitude must be from -180 to 180, got %v", l[1])
	}
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// clearSpec describes the fields of an update type for Clear: every
// documented JSON name and whether it may be erased with null.
type clearSpec struct {
	names     []string        // documented JSON names, in documentation order
	clearable map[string]bool // name -> may be sent as null
	why       map[string]string
}

// check adds a problem (field "<prefix>Clear") for every name in clear that
// is not documented, cannot be cleared, or is also set (isSet).
func (s *clearSpec) check(ps *problems, prefix string, clear []string, isSet func(string) bool) {
	for _, name := range clear {
		ok, known := s.clearable[name]
		switch {
		case !known:
			ps.addf(prefix+"Clear", "unknown field %q (known: %s)", name, strings.Join(s.names, ", "))
		case !ok:
			ps.addf(prefix+"Clear", "field %q cannot be cleared: %s", name, s.why[name])
		case isSet(name):
			ps.addf(prefix+"Clear", "field %q is both set and cleared", name)
		}
	}
}

// fieldIndex names element i of a Go field for a Problem: "msgs[3]".
func fieldIndex(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// fieldKey names the element of a map field for a Problem: `users["a"]`.
func fieldKey(field, key string) string { return field + "[" + strconv.Quote(key) + "]" }

// segment refuses an id that cannot be one path segment: "" (the path
// would name another resource), "." or ".." (a client or proxy may resolve
// them). The pipeline applies it to every path parameter; a service that
// checks its input up front applies it too, so that all problems come
// out together.
func (ps *problems) segment(field, v string) {
	switch v {
	case "":
		ps.add(field, "must not be empty")
	case ".", "..":
		ps.addf(field, "must not be %q", v)
	}
}
