package convo

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzNormalizePhone: whatever NormalizePhone or NormalizePhoneIn accepts
// is 8 to 15 digits that NormalizePhone takes back unchanged, a valid
// international number; whatever they refuse is a validation error.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+55 (27) 99999-9999", "27 99999-9999", "12345678", "", "+", "1234567890123456", "٣٣٣٣٣٣٣٣",
		"[44] 20.7946-0958", "\x00\xff", "020 7946 0958", "011 15-1234-5678", "0055 27 99999-9999"} {
		for _, country := range []string{"BR", "GB", "AR", "us", "XX"} {
			f.Add(s, country)
		}
	}
	// Found by this target: valid in DE by libphonenumber's metadata, 16
	// digits with its country code.
	f.Add("20100000000000", "DE")
	f.Fuzz(func(t *testing.T, in, country string) {
		check := func(what string, got string, err error) {
			if err != nil {
				if !errors.Is(err, ErrValidation) {
					t.Fatalf("%s: error %v is not a validation error", what, err)
				}
				return
			}
			if len(got) < 8 || len(got) > 15 {
				t.Fatalf("%s %q normalised to %q: not 8 to 15 digits", what, in, got)
			}
			for _, r := range got {
				if r < '0' || r > '9' {
					t.Fatalf("%s %q normalised to %q: not digits only", what, in, got)
				}
			}
			again, err := NormalizePhone(got)
			if err != nil || again != got {
				t.Fatalf("%s: not a valid international number: %q -> %q -> %q, %v", what, in, got, again, err)
			}
		}
		got, err := NormalizePhone(in)
		check("NormalizePhone", got, err)
		got, err = NormalizePhoneIn(in, country)
		check("NormalizePhoneIn "+country, got, err)
	})
}

// FuzzBuilders feeds every builder arbitrary input: it must never panic,
// and whatever it accepts must encode to a JSON object whose documented
// fields no Extra key can shadow.
func FuzzBuilders(f *testing.F) {
	f.Add("+55 27 99999-9999", "Maria", "order_update", "urn:talqui:telegram:0", "hello", "merchantID", "m-9")
	f.Add("", "", "", "", "", "channel", "x")
	f.Add("12", "\x00", " ", "urn:talqui:", "\xff", "", "")
	f.Fuzz(func(t *testing.T, phone, name, model, urn, text, extraKey, extraVal string) {
		extra := map[string]any{extraKey: extraVal}
		reqs := []SessionRequest{
			WhatsAppOfficial{ConnectionID: "pc", Phone: phone, Name: name, ModelID: model, Variables: []string{text}, Label: text},
			WhatsAppBusiness{ConnectionID: "pc", Phone: phone, Name: name, Text: text},
			IFood{ConnectionID: "pc", OrderCode: model, Text: text, Extra: extra},
			GenericChannel{Channel: urn, ConnectionID: "pc", ContactID: phone, Name: name, Text: text, Extra: extra},
			SessionStart{Channel: urn, PluginConnectionID: "pc", ContactExternalID: phone, MessageValue: text, CampaignModelID: model, Extra: extra},
		}
		for _, r := range reqs {
			s, err := r.SessionStart()
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Problems) == 0 {
					t.Fatalf("%T: error %v is not a validation error with problems", r, err)
				}
				continue
			}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatalf("%T: accepted but does not encode: %v", r, err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%T: encodes to invalid JSON %q: %v", r, b, err)
			}
			// Accepted text is valid UTF-8, so it goes out unchanged.
			if m["channel"] != s.Channel || m["contactExternalID"] != s.ContactExternalID || m["messageValue"] != s.MessageValue {
				t.Fatalf("%T: a documented field was changed, shadowed or lost: %s", r, b)
			}
		}
	})
}
