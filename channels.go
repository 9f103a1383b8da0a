package convo

import (
	"strconv"
)

// The Talqui channel URNs the Talqui documentation names. Any other
// installed channel (Telegram, Instagram, Messenger, custom) goes through
// GenericChannel with its own urn:talqui: URN.
const (
	ChannelWhatsAppOfficial = "urn:talqui:whatsapp-cloud:0"    // WhatsApp API Official (Meta Cloud API)
	ChannelWhatsAppBusiness = "urn:talqui:whatsapp-internal:0" // WhatsApp Business
	ChannelIFood            = "urn:talqui:ifood:0"             // iFood
)

const urnPrefix = "urn:talqui:"

// SessionRequest is what Sessions.Start sends: one of the channel builders
// (WhatsAppOfficial, WhatsAppBusiness, IFood, GenericChannel) or a raw
// SessionStart. SessionStart checks the channel's rules and gives the wire
// body, or a *ValidationError listing every problem. It reads phone numbers
// without a default country (see NormalizePhone); Sessions.Start reads them
// with the client's (WithDefaultCountry, see NormalizePhoneIn). The body of
// a SessionRequest of another package is checked again as a SessionStart.
type SessionRequest interface {
	SessionStart() (SessionStart, error)
}

// regionalRequest is a SessionRequest of this package: it reads a phone
// number without '+' or "00" as a national number of region ("" for none)
// when it is valid there.
type regionalRequest interface {
	sessionStartIn(region string) (SessionStart, error)
}

// WhatsAppOfficial opens a WhatsApp API Official session with a
// Meta-approved model (template): the contact receives the model's
// content, filled with Variables.
type WhatsAppOfficial struct {
	ConnectionID string   // plugin connection; may be empty when only one is configured
	Phone        string   // e.g. "+55 27 99999-9999", "0055 27 …" or "5527999999999"; national with WithDefaultCountry; sent as E.164 digits (see NormalizePhone)
	Name         string   // contact's full name (optional)
	ModelID      string   // the approved model (campaignModelID); required
	Variables    []string // fill the model's placeholders, in order
	Label        string   // internal label of the operation (messageValue); defaults to ModelID
}

// SessionStart checks the rules of WhatsApp API Official and gives the wire body.
func (w WhatsAppOfficial) SessionStart() (SessionStart, error) { return w.sessionStartIn("") }

func (w WhatsAppOfficial) sessionStartIn(region string) (SessionStart, error) {
	var ps problems
	phone := ps.phone("Phone", w.Phone, region)
	ps.utf8("Name", w.Name)
	if blank(w.ModelID) {
		ps.add("ModelID", "required: WhatsApp API Official opens a conversation only with an approved model")
	} else {
		ps.utf8("ModelID", w.ModelID)
	}
	for i, v := range w.Variables {
		ps.utf8("Variables["+strconv.Itoa(i)+"]", v)
	}
	ps.utf8("Label", w.Label)
	label := w.Label
	if blank(label) {
		label = w.ModelID
	}
	vars := make([]any, len(w.Variables))
	for i, v := range w.Variables {
		vars[i] = v
	}
	return SessionStart{
		Channel:            ChannelWhatsAppOfficial,
		PluginConnectionID: w.ConnectionID,
		ContactFullName:    w.Name,
		ContactExternalID:  phone,
		MessageKey:         MessageKeyText,
		MessageValue:       label,
		SessionKind:        SessionKindMarketing,
		CampaignModelID:    w.ModelID,
		CampaignVariables:  vars,
	}, ps.err()
}

// WhatsAppBusiness opens a WhatsApp Business session with a free-form
// first message.
type WhatsAppBusiness struct {
	ConnectionID string // plugin connection; may be empty when only one is configured
	Phone        string // as WhatsAppOfficial.Phone: international, or national with WithDefaultCountry; sent as E.164 digits
	Name         string // contact's full name (optional)
	Text         string // the first message, delivered as is; required
}

// SessionStart checks the rules of WhatsApp Business and gives the wire body.
func (w WhatsAppBusiness) SessionStart() (SessionStart, error) { return w.sessionStartIn("") }

func (w WhatsAppBusiness) sessionStartIn(region string) (SessionStart, error) {
	var ps problems
	phone := ps.phone("Phone", w.Phone, region)
	ps.utf8("Name", w.Name)
	ps.required("Text", w.Text)
	return SessionStart{
		Channel:            ChannelWhatsAppBusiness,
		PluginConnectionID: w.ConnectionID,
		ContactFullName:    w.Name,
		ContactExternalID:  phone,
		MessageKey:         MessageKeyText,
		MessageValue:       w.Text,
	}, ps.err()
}

// IFood opens an iFood session about one order. iFood is operational
// only: use it for messages about the order, never for marketing.
type IFood struct {
	ConnectionID string         // plugin connection; may be empty when only one is configured
	OrderCode    string         // the iFood orderCode (contactExternalID); required
	Text         string         // the operational message; required
	Extra        map[string]any // extra fields the installed iFood plugin requires
}

func (f IFood) sessionStartIn(string) (SessionStart, error) { return f.SessionStart() }

// SessionStart checks the rules of iFood and gives the wire body.
func (f IFood) SessionStart() (SessionStart, error) {
	var ps problems
	ps.required("OrderCode", f.OrderCode)
	ps.required("Text", f.Text)
	ps.extra("Extra", f.Extra)
	return SessionStart{
		Channel:            ChannelIFood,
		PluginConnectionID: f.ConnectionID,
		ContactExternalID:  f.OrderCode,
		MessageKey:         MessageKeyText,
		MessageValue:       f.Text,
		Extra:              f.Extra,
	}, ps.err()
}

// GenericChannel opens a session on any channel that needs no approved
// model (Telegram, Instagram, Messenger, custom channels), named by its
// Talqui URN.
type GenericChannel struct {
	Channel      string         // the channel's urn:talqui: URN; required
	ConnectionID string         // plugin connection; may be empty when only one is configured
	ContactID    string         // the contact's id on that channel (user id, username…); required
	Name         string         // contact's full name (optional)
	Text         string         // the first message; required
	Extra        map[string]any // extra fields the installed plugin requires
}

func (g GenericChannel) sessionStartIn(string) (SessionStart, error) { return g.SessionStart() }

// SessionStart checks the generic rules and gives the wire body.
func (g GenericChannel) SessionStart() (SessionStart, error) {
	var ps problems
	ps.urn("Channel", g.Channel)
	ps.required("ContactID", g.ContactID)
	ps.utf8("Name", g.Name)
	ps.required("Text", g.Text)
	ps.extra("Extra", g.Extra)
	return SessionStart{
		Channel:            g.Channel,
		PluginConnectionID: g.ConnectionID,
		ContactFullName:    g.Name,
		ContactExternalID:  g.ContactID,
		MessageKey:         MessageKeyText,
		MessageValue:       g.Text,
		Extra:              g.Extra,
	}, ps.err()
}

// NormalizePhone gives a phone number as the builders send it on a client
// without WithDefaultCountry: the E.164 digits (no '+'), as WhatsApp
// expects. Spaces, dots, dashes and brackets are removed; a leading '+' or
// "00" is the international prefix. The number must be valid for its
// country code by libphonenumber's metadata (github.com/nyaruka/phonenumbers).
// A number without '+' or "00" is read as international only when it is
// valid as such: "5527999999999", "+55 (27) 99999-9999" and
// "0055 27 99999 9999" all give "5527999999999", while "27 99999-9999" (a
// Brazilian mobile without its country code, and no valid number of +27,
// South Africa) is refused. Use NormalizePhoneIn to read national numbers.
// A refusal is a *ValidationError whose field is "phone".
func NormalizePhone(phone string) (string, error) {
	var ps problems
	digits := ps.phone("phone", phone, "")
	return digits, ps.err()
}

// NormalizePhoneIn is NormalizePhone with a default country, as a client
// made with WithDefaultCountry(country) sends a phone: a number without '+'
// or "00" is read first as a national number of country (an ISO 3166-1
// alpha-2 code such as "BR"), and as an international one only when it is
// not a valid national number. NormalizePhoneIn("27 99999-9999", "BR")
// gives "5527999999999"; "5527999999999" and "+1 415 555 0100" keep their
// own country. An unknown country is a problem of the field "country".
func NormalizePhoneIn(phone, country string) (string, error) {
	region, err := checkRegion("country", country)
	if err != nil {
		return "", err
	}
	var ps problems
	digits := ps.phone("phone", phone, region)
	return digits, ps.err()
}
