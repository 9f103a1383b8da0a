package convo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// SessionsService starts Talqui sessions: it opens a conversation with one
// contact on one channel and sends the first message.
type SessionsService service

// Values of SessionStart fields that the Talqui documentation names.
const (
	MessageKeyText           = "text"          // messageKey of a text message
	SessionKindMarketing     = "marketing"     // sessionKind of a WhatsApp Official start with an approved model
	SessionKindTransactional = "transactional" // sessionKind of the common pattern
	SessionTypeAuto          = "auto"          // sessionType of the common pattern
)

// documentedFields are the JSON keys of SessionStart; Extra must not use them.
var documentedFields = []string{
	"channel", "pluginConnectionID", "contactFullName", "contactExternalID", "messageKey",
	"messageValue", "sessionKind", "sessionType", "campaignModelID", "campaignVariables",
}

// SessionStart is the wire body of POST /tenants/{tenantID}/sessions, with
// every documented field. It is a SessionRequest too: use it for a channel
// or a field the builders do not cover. Extra holds plugin-defined fields,
// merged at the top level of the JSON object; a key that collides with a
// documented field is an error.
type SessionStart struct {
	Channel            string // channel URN, e.g. ChannelWhatsAppBusiness
	PluginConnectionID string // filled by Sessions.Start when empty and only one connection is configured
	ContactFullName    string // optional
	ContactExternalID  string // phone (digits), order code or channel user id
	MessageKey         string // "text" when empty
	MessageValue       string // the first message, or the internal label for a model
	SessionKind        string // optional: "marketing", "transactional"
	SessionType        string // optional: "auto", "manual"
	CampaignModelID    string // approved model, for WhatsApp API Official
	// CampaignVariables fill the model's placeholders. A nil slice is left
	// out; an empty non-nil slice is sent as [].
	CampaignVariables []any
	Extra             map[string]any
}

// SessionStart checks s and gives it back with defaults filled in: the
// message key "text", and a WhatsApp phone as E.164 digits (see
// NormalizePhone). It applies the rules of the channel it names.
func (s SessionStart) SessionStart() (SessionStart, error) { return s.sessionStartIn("") }

func (s SessionStart) sessionStartIn(region string) (SessionStart, error) {
	var ps problems
	ps.urn("Channel", s.Channel)
	if s.MessageKey == "" {
		s.MessageKey = MessageKeyText
	}
	switch s.Channel {
	case ChannelWhatsAppOfficial:
		s.ContactExternalID = ps.phone("ContactExternalID", s.ContactExternalID, region)
		if blank(s.CampaignModelID) {
			ps.add("CampaignModelID", "required: WhatsApp API Official opens a conversation only with an approved model")
		}
		if s.CampaignVariables == nil {
			s.CampaignVariables = []any{}
		}
	case ChannelWhatsAppBusiness:
		s.ContactExternalID = ps.phone("ContactExternalID", s.ContactExternalID, region)
	default:
		ps.required("ContactExternalID", s.ContactExternalID)
	}
	ps.required("MessageValue", s.MessageValue)
	ps.utf8("ContactFullName", s.ContactFullName)
	ps.utf8("MessageKey", s.MessageKey)
	ps.utf8("SessionKind", s.SessionKind)
	ps.utf8("SessionType", s.SessionType)
	ps.utf8("CampaignModelID", s.CampaignModelID)
	ps.extra("Extra", s.Extra)
	return s, ps.err()
}

// extra checks the Extra keys of a session start: see extraKeys; a key
// may not be a documented field.
func (ps *problems) extra(field string, extra map[string]any) {
	ps.extraKeys(field, extra, func(k string) string {
		if slices.Contains(documentedFields, k) {
			return "collides with the documented field " + k + "; set the field instead"
		}
		return ""
	})
}

// MarshalJSON writes the documented fields, then the Extra keys in sorted
// order.
func (s SessionStart) MarshalJSON() ([]byte, error) { return s.encodeBody() }

// encodeBody is MarshalJSON for the pipeline, which then skips
// encoding/json's second pass over the output.
func (s SessionStart) encodeBody() ([]byte, error) {
	type wire struct {
		Channel            string `json:"channel"`
		PluginConnectionID string `json:"pluginConnectionID"`
		ContactFullName    string `json:"contactFullName,omitempty"`
		ContactExternalID  string `json:"contactExternalID"`
		MessageKey         string `json:"messageKey"`
		MessageValue       string `json:"messageValue"`
		SessionKind        string `json:"sessionKind,omitempty"`
		SessionType        string `json:"sessionType,omitempty"`
		CampaignModelID    string `json:"campaignModelID,omitempty"`
		CampaignVariables  *[]any `json:"campaignVariables,omitempty"`
	}
	w := wire{
		Channel:            s.Channel,
		PluginConnectionID: s.PluginConnectionID,
		ContactFullName:    s.ContactFullName,
		ContactExternalID:  s.ContactExternalID,
		MessageKey:         s.MessageKey,
		MessageValue:       s.MessageValue,
		SessionKind:        s.SessionKind,
		SessionType:        s.SessionType,
		CampaignModelID:    s.CampaignModelID,
	}
	if s.CampaignVariables != nil {
		w.CampaignVariables = &s.CampaignVariables
	}
	b, err := json.Marshal(w)
	if err != nil || len(s.Extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(s.Extra))
	for k := range s.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf := bytes.NewBuffer(b[:len(b)-1])
	for _, k := range keys {
		if slices.Contains(documentedFields, k) {
			continue // refused by validation; never let it shadow a field
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(s.Extra[k])
		if err != nil {
			return nil, fmt.Errorf("value of Extra[%q]: %w", k, err)
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// StartedSession is Talqui's answer to a session start. Contact, Session
// and Message are decoded from the parts of the same names, each nil when
// absent or when its shape was not understood; Raw is the body as
// received, so nothing Talqui sends is lost.
type StartedSession struct {
	Contact *TalquiContact
	Session *TalquiSession
	Message *TalquiMessage
	Raw     json.RawMessage
}

// TalquiContact is the contact Talqui resolved or created.
type TalquiContact struct {
	ContactID         string    `json:"contactID"`
	ContactFullName   string    `json:"contactFullName"`
	ContactExternalID string    `json:"contactExternalID"`
	CreatedAt         time.Time `json:"createdAt"`
	UpdatedAt         time.Time `json:"updatedAt"`
}

// TalquiSession is the session Talqui opened.
type TalquiSession struct {
	SessionID      string         `json:"sessionID"`
	ContactID      string         `json:"contactID"`
	TenantID       string         `json:"tenantID"`
	OperatorID     string         `json:"operatorID"`
	SessionChannel string         `json:"sessionChannel"`
	SessionActive  bool           `json:"sessionActive"`
	SessionKind    string         `json:"sessionKind"`
	SessionType    string         `json:"sessionType"`
	SessionStatus  int            `json:"sessionStatus"`
	SessionTags    []any          `json:"sessionTags"`
	SessionMeta    map[string]any `json:"sessionMeta"`
	CreatedAt      time.Time      `json:"createdAt"`
	UpdatedAt      time.Time      `json:"updatedAt"`
}

// TalquiMessage is the first message Talqui sent.
type TalquiMessage struct {
	MessageID    string    `json:"messageID"`
	SessionID    string    `json:"sessionID"`
	MessageKey   string    `json:"messageKey"`
	MessageValue string    `json:"messageValue"`
	CreatedAt    time.Time `json:"createdAt"`
}

// startedWire is the documented shape of Talqui's answer.
type startedWire struct {
	Contact *TalquiContact `json:"contact"`
	Session *TalquiSession `json:"session"`
	Message *TalquiMessage `json:"message"`
}

// UnmarshalJSON decodes the three parts leniently: a part whose shape is
// not understood is left nil rather than failing a start that happened.
func (s *StartedSession) UnmarshalJSON(b []byte) error {
	var typed startedWire
	if json.Unmarshal(b, &typed) == nil {
		s.Contact, s.Session, s.Message = typed.Contact, typed.Session, typed.Message
		return nil
	}
	return s.decodeLeniently(b)
}

// decodeBody is UnmarshalJSON for the pipeline: it keeps b as Raw, then
// decodes the documented shape in the pipeline's single pass (not
// json.Unmarshal's scan, skip and second scan of an UnmarshalJSON method),
// part by part only when that fails.
func (s *StartedSession) decodeBody(b []byte) error {
	s.Raw = b
	var typed startedWire
	err := decodeJSON(b, &typed)
	if err == nil {
		s.Contact, s.Session, s.Message = typed.Contact, typed.Session, typed.Message
		return nil
	}
	if len(b) > 0 && s.decodeLeniently(b) == nil {
		return nil
	}
	return err
}

// decodeLeniently decodes each part on its own.
func (s *StartedSession) decodeLeniently(b []byte) error {
	var parts struct {
		Contact json.RawMessage `json:"contact"`
		Session json.RawMessage `json:"session"`
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return err
	}
	s.Contact = decodePart[TalquiContact](parts.Contact)
	s.Session = decodePart[TalquiSession](parts.Session)
	s.Message = decodePart[TalquiMessage](parts.Message)
	return nil
}

func decodePart[T any](raw json.RawMessage) *T {
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	v := new(T)
	if json.Unmarshal(raw, v) != nil {
		return nil
	}
	return v
}

// Start opens a session with one contact and sends the first message. It
// checks the channel's rules first and sends nothing when they fail. The
// token sent is the one of the named plugin connection (ConnectionID, or
// the only one configured). It expects a 2xx answer whose body holds the
// "contact", "session" and "message" objects (see StartedSession).
//
// A session start is never sent twice once it may have reached Talqui,
// since a second try could send the contact a second message: it is
// retried only after a dial failure or a 429. When it fails after the
// request may have reached Talqui, the error matches ErrOutcomeUnknown.
// When Talqui answered 2xx with a body that could not be read, the error
// matches ErrBadResponse and the returned StartedSession holds Raw.
func (s *SessionsService) Start(ctx context.Context, r SessionRequest) (*StartedSession, error) {
	c := s.client()
	body, api, invalid := c.talqui.resolve(r)
	out := &StartedSession{}
	err := c.do(ctx, &request{
		op:      "talqui.sessions.start",
		api:     api,
		method:  http.MethodPost,
		path:    "/tenants/{tenantID}/sessions",
		params:  []string{c.talqui.tenant()},
		encoded: encode(body),
		out:     out,
		invalid: invalid,
	})
	if err != nil && out.Raw == nil {
		return nil, err
	}
	return out, err
}

// resolve checks r and picks its plugin connection: it gives the wire body,
// with the connection's id filled in, and the endpoint that sends that
// connection's token. A nil t (Talqui not configured) gives
// ErrNotConfigured. On an error the endpoint is still Talqui's, so that
// the refused call is observed as one.
func (t *talquiConfig) resolve(r SessionRequest) (SessionStart, *endpoint, error) {
	if t == nil {
		return SessionStart{}, talquiOff, talquiOff.err
	}
	if r == nil {
		return SessionStart{}, t.apis[0], &ValidationError{Problems: []Problem{{Field: "SessionRequest", Reason: "must not be nil"}}}
	}
	var ps problems
	var body SessionStart
	var err error
	if rr, ok := r.(regionalRequest); ok {
		body, err = rr.sessionStartIn(t.region)
	} else if body, err = r.SessionStart(); err == nil {
		// Another package's request: its body gets the channel's rules,
		// a WhatsApp phone's included.
		body, err = body.sessionStartIn(t.region)
	}
	if err := ps.merge(err); err != nil {
		return SessionStart{}, t.apis[0], err
	}
	field := "ConnectionID" // as the builders name it
	switch r.(type) {
	case SessionStart, *SessionStart:
		field = "PluginConnectionID"
	}
	id := body.PluginConnectionID
	i := t.connection(id)
	switch {
	case i >= 0:
		body.PluginConnectionID = t.conns[i].ID
	case id == "":
		ps.addf(field, "required: %d plugin connections are configured", len(t.conns))
	default:
		// A token pasted in place of an id must not reach the error text.
		ps.addf(field, "unknown plugin connection %q", truncate(string(t.secrets.redact([]byte(id))), 100))
	}
	if err := ps.err(); err != nil {
		return SessionStart{}, t.apis[0], err
	}
	return body, t.apis[i], nil
}

// tenant is the tenant id; "" when Talqui is not configured.
func (t *talquiConfig) tenant() string {
	if t == nil {
		return ""
	}
	return t.tenantID
}

// talquiOff is where the calls of a client without Talqui go: nowhere.
var talquiOff = &endpoint{provider: ProviderTalqui, err: notConfigured(ProviderTalqui, "WithTalqui")}

// connection finds the plugin connection with id, or the only one when id
// is empty. It gives the connection's index, or -1.
func (t *talquiConfig) connection(id string) int {
	if id == "" {
		if len(t.conns) == 1 {
			return 0
		}
		return -1
	}
	for i, c := range t.conns {
		if c.ID == id {
			return i
		}
	}
	return -1
}
