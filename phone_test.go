package convo

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Real numbers of several countries, in the forms people write them. Each
// is valid for its country code by libphonenumber's metadata.
var validPhones = map[string]string{
	"+55 (27) 99999-9999":  "5527999999999", // Brazil, mobile
	" +55 27 99999 9999 ":  "5527999999999",
	"0055 27 99999-9999":   "5527999999999", // 00 is the international prefix
	"5527999999999":        "5527999999999", // digits, valid as international
	"+55 11 3333-4444":     "551133334444",  // Brazil, São Paulo landline
	"+1.415.555.0100":      "14155550100",   // United States
	"+1 (416) 555-0123":    "14165550123",   // Canada
	"[44] 20 7946 0958":    "442079460958",  // United Kingdom, London
	"+44 (0) 20 7946 0958": "442079460958",  // the national 0 in brackets is dropped
	"4915123456789":        "4915123456789", // Germany, mobile
	"+351 912 345 678":     "351912345678",  // Portugal, mobile
	"+33 6 12 34 56 78":    "33612345678",   // France, mobile
	"+39 06 1234 5678":     "390612345678",  // Italy, Rome: the leading 0 stays
	"+54 9 11 1234-5678":   "5491112345678", // Argentina, mobile
	"+27 82 123 4567":      "27821234567",   // South Africa, mobile
	"+91 98765 43210":      "919876543210",  // India, mobile
	"+81 90-1234-5678":     "819012345678",  // Japan, mobile
}

func TestNormalizePhone(t *testing.T) {
	for in, want := range validPhones {
		got, err := NormalizePhone(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		// What NormalizePhone gives, it takes back unchanged.
		again, err := NormalizePhone(got)
		require.NoError(t, err, got)
		assert.Equal(t, got, again)
	}
}

// Each invalid number with its one problem: the field and the rule.
func TestPhoneProblems(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "phone: required",
		"  ":                 "phone: required",
		"55+27 99999-9999":   "phone: may hold '+' only as the first character",
		"++55 27 99999-9999": "phone: may hold '+' only as the first character",
		"+55 27 99999-999x":  "phone: must hold only digits, '+', spaces, dots, dashes and brackets",
		"５５２７９９９９９９９９":       "phone: must hold only digits, '+', spaces, dots, dashes and brackets",
		"0055 27":            "phone: must have 8 to 15 digits, has 4",
		"1234567890123456":   "phone: must have 8 to 15 digits, has 16",
		"+0 27 99999-9999":   "phone: must start with a country code, which never starts with 0 (a national number needs the client option WithDefaultCountry)",
		"027 99999-9999":     "phone: must start with a country code, which never starts with 0 (a national number needs the client option WithDefaultCountry)",
		"0000 27 99999-9999": "phone: must start with a country code, which never starts with 0 (a national number needs the client option WithDefaultCountry)",
		"+999 1234 5678":     "phone: must start with a known country code",
		// A Brazilian mobile without +55 is no valid number of +27,
		// South Africa: refused, never sent there.
		"27 99999-9999": "phone: is not a valid international number (read with country code +27, ZA, by libphonenumber's metadata): " +
			"write it with '+' and its country code, or read national numbers with the client option WithDefaultCountry",
		"12345678": "phone: is not a valid international number (read with country code +1, US, by libphonenumber's metadata): " +
			"write it with '+' and its country code, or read national numbers with the client option WithDefaultCountry",
		// Written as international, but not valid for the country code.
		"+55 27 1234-5678":   "phone: is not a valid number for country code +55 (BR) by libphonenumber's metadata", // no area code 27 number starts with 1
		"+55 00 99999-9999":  "phone: is not a valid number for country code +55 (BR) by libphonenumber's metadata", // no area code 00
		"+1 555 555 0100 99": "phone: is not a valid number for country code +1 (US) by libphonenumber's metadata",  // too long
		"+44 20 7946 095":    "phone: is not a valid number for country code +44 (GB) by libphonenumber's metadata", // a digit short
		"+49 151 234":        "phone: is not a valid number for country code +49 (DE) by libphonenumber's metadata",
		"0027 99 999 9999":   "phone: is not a valid number for country code +27 (ZA) by libphonenumber's metadata",
	} {
		_, err := NormalizePhone(in)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, in)
		assert.ErrorIs(t, err, ErrValidation, in)
		require.Len(t, ve.Problems, 1, in)
		assert.Equal(t, want, ve.Problems[0].String(), in)
	}
}

func TestNormalizePhoneIn(t *testing.T) {
	for _, tc := range []struct{ country, in, want string }{
		{"BR", "27 99999-9999", "5527999999999"},   // national mobile
		{"br", "(27) 99999-9999", "5527999999999"}, // the country in any case
		{"BR", "11 3333-4444", "551133334444"},     // national landline
		{"BR", "5527999999999", "5527999999999"},   // the country code without '+' stays
		{"BR", "+55 27 99999-9999", "5527999999999"},
		{"BR", "0055 27 99999-9999", "5527999999999"},
		{"BR", "+1 415 555 0100", "14155550100"},    // another country's keeps it
		{"BR", "14155550100", "14155550100"},        // not a Brazilian number: read as international
		{"BR", "351912345678", "351912345678"},      // likewise
		{"GB", "020 7946 0958", "442079460958"},     // the trunk 0
		{"US", "(415) 555-0100", "14155550100"},     // national
		{"US", "416 555 0123", "14165550123"},       // Canada: a US phone dials it the same way
		{"DE", "0151 23456789", "4915123456789"},    // the trunk 0
		{"IT", "06 1234 5678", "390612345678"},      // Rome: the 0 is part of the number
		{"AR", "011 15-1234-5678", "5491112345678"}, // Buenos Aires mobile, dialled with 15
		{"IN", "098765 43210", "919876543210"},
		{"ZA", "082 123 4567", "27821234567"},
	} {
		got, err := NormalizePhoneIn(tc.in, tc.country)
		require.NoError(t, err, "%s %s", tc.country, tc.in)
		assert.Equal(t, tc.want, got, "%s %s", tc.country, tc.in)
		// The result is always a valid international number.
		intl, err := NormalizePhone(got)
		require.NoError(t, err, got)
		assert.Equal(t, got, intl)
	}
	for _, tc := range []struct{ country, in, want string }{
		{"BR", "27 1234-5678", "phone: is valid neither as a phone number of BR (WithDefaultCountry) nor as an international number (country code +27, ZA) by libphonenumber's metadata"},
		{"BR", "020 7946 0958", "phone: is not a valid phone number of BR (WithDefaultCountry), and an international one never starts with 0"},
		{"GB", "27 99999-9999", "phone: is valid neither as a phone number of GB (WithDefaultCountry) nor as an international number (country code +27, ZA) by libphonenumber's metadata"},
		{"BR", "9999", "phone: is not a valid phone number of BR (WithDefaultCountry), and an international one must have 8 to 15 digits, has 4"},
		{"BR", "+27 99999-9999", "phone: is not a valid number for country code +27 (ZA) by libphonenumber's metadata"}, // '+' is never national
	} {
		_, err := NormalizePhoneIn(tc.in, tc.country)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, tc.in)
		require.Len(t, ve.Problems, 1, tc.in)
		assert.Equal(t, tc.want, ve.Problems[0].String(), "%s %s", tc.country, tc.in)
	}
	for _, country := range []string{"", "XX", "BRA", "55", "Brazil"} {
		_, err := NormalizePhoneIn("5527999999999", country)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, country)
		require.Len(t, ve.Problems, 1)
		assert.Equal(t, "country", ve.Problems[0].Field)
		assert.Contains(t, ve.Problems[0].Reason, "must be an ISO 3166-1 alpha-2 country code libphonenumber knows")
	}
}

// A Brazilian mobile written without +55 is refused, naming the field and
// the rule, and nothing is sent; with WithDefaultCountry("BR") it is sent
// as 5527999999999. The rule is the same for every channel with a phone:
// both WhatsApp builders, the raw SessionStart, and a request of another
// package.
func TestNationalPhoneSessionStart(t *testing.T) {
	const national = "27 99999-9999"
	reqs := []struct {
		name  string
		req   SessionRequest
		field string
	}{
		{"business", WhatsAppBusiness{ConnectionID: "pc-wa", Phone: national, Text: "hi"}, "Phone"},
		{"official", WhatsAppOfficial{ConnectionID: "pc-wa", Phone: national, ModelID: "order_update"}, "Phone"},
		{"raw business", SessionStart{Channel: ChannelWhatsAppBusiness, PluginConnectionID: "pc-wa", ContactExternalID: national, MessageValue: "hi"}, "ContactExternalID"},
		{"raw official pointer", &SessionStart{Channel: ChannelWhatsAppOfficial, PluginConnectionID: "pc-wa", ContactExternalID: national, MessageValue: "m", CampaignModelID: "m"}, "ContactExternalID"},
		{"another package's request", rawRequest{Channel: ChannelWhatsAppBusiness, PluginConnectionID: "pc-wa", ContactExternalID: national, MessageValue: "hi"}, "ContactExternalID"},
	}
	for _, tc := range reqs {
		t.Run(tc.name+", no default country", func(t *testing.T) {
			env := NewTestEnv(t)
			env.captureStart(200, startAnswer)
			_, err := env.c.Sessions.Start(context.Background(), tc.req)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, []Problem{{tc.field, "is not a valid international number (read with country code +27, ZA, by libphonenumber's metadata): " +
				"write it with '+' and its country code, or read national numbers with the client option WithDefaultCountry"}}, ve.Problems)
			assert.Equal(t, 0, env.mt.GetTotalCallCount(), "nothing may be sent")
		})
		t.Run(tc.name+", WithDefaultCountry(BR)", func(t *testing.T) {
			env := NewTestEnv(t, WithDefaultCountry("BR"))
			got := env.captureStart(200, startAnswer)
			_, err := env.c.Sessions.Start(context.Background(), tc.req)
			require.NoError(t, err)
			require.Len(t, *got, 1)
			var body map[string]any
			require.NoError(t, json.Unmarshal((*got)[0].body, &body))
			assert.Equal(t, "5527999999999", body["contactExternalID"])
		})
	}
	// The default country changes only national numbers.
	env := NewTestEnv(t, WithDefaultCountry("BR"))
	got := env.captureStart(200, startAnswer)
	for _, phone := range []string{"+1 415 555 0100", "0044 20 7946 0958", "351912345678", "5527999999999"} {
		_, err := env.c.Sessions.Start(context.Background(), WhatsAppBusiness{ConnectionID: "pc-wa", Phone: phone, Text: "hi"})
		require.NoError(t, err, phone)
	}
	var sent []string
	for _, c := range *got {
		var body struct{ ContactExternalID string }
		require.NoError(t, json.Unmarshal(c.body, &body))
		sent = append(sent, body.ContactExternalID)
	}
	assert.Equal(t, []string{"14155550100", "442079460958", "351912345678", "5527999999999"}, sent)
}

// rawRequest is a SessionRequest as another package would write one: its
// body goes through the channel's rules all the same.
type rawRequest SessionStart

func (r rawRequest) SessionStart() (SessionStart, error) { return SessionStart(r), nil }

func TestWithDefaultCountryRefused(t *testing.T) {
	for _, country := range []string{"", "XX", "BRA", "+55"} {
		_, err := NewClient(WithTalqui("t", PluginConnection{ID: "pc", Token: "tok"}), WithDefaultCountry(country))
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, country)
		require.Len(t, ve.Problems, 1, country)
		assert.Equal(t, "WithDefaultCountry(country)", ve.Problems[0].Field)
		assert.Contains(t, ve.Problems[0].Reason, `must be an ISO 3166-1 alpha-2 country code libphonenumber knows, such as "BR"`)
	}
}

// A national number that libphonenumber's metadata holds valid but whose
// E.164 form would pass 15 digits is refused, not sent as 16 digits
// (found by FuzzNormalizePhone): read as international it is no valid
// number either.
func TestNormalizePhoneInNoMoreThan15Digits(t *testing.T) {
	e164, ok := nationalPhoneLib("20100000000000", "DE")
	require.True(t, ok, "the library holds it valid")
	require.Len(t, e164, 16)
	got, err := NormalizePhoneIn("20100000000000", "DE")
	require.ErrorIs(t, err, ErrValidation, "got %q", got)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, ve.Problems[0].Reason, "is valid neither as a phone number of DE (WithDefaultCountry) nor as an international number")
}
