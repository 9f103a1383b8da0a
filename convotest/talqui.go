package convotest

import (
	"crypto/subtle"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Talqui channel URNs with rules of their own in the fake.
const (
	channelWhatsAppCloud    = "urn:talqui:whatsapp-cloud:0"
	channelWhatsAppInternal = "urn:talqui:whatsapp-internal:0"
	channelIFood            = "urn:talqui:ifood:0"
)

var (
	channelURN = regexp.MustCompile(`^urn:talqui:[a-z0-9][a-z0-9-]*:[0-9]+$`)
	phoneID    = regexp.MustCompile(`^[0-9]{8,15}$`)
)

// talquiTime is how Talqui writes times: ISO-8601 UTC with milliseconds.
const talquiTime = "2006-01-02T15:04:05.000Z"

// TalquiContact is a contact of the fake Talqui tenant. A contact is made
// once per channel and external id; a later session start for the same
// pair reuses it.
type TalquiContact struct {
	ID         string    // contactID
	FullName   string    // contactFullName, "" when never sent
	ExternalID string    // contactExternalID
	Channel    string    // the channel URN it was made on
	CreatedAt  time.Time // createdAt
}

// TalquiMessage is the first message of a Talqui session.
type TalquiMessage struct {
	ID        string    // messageID
	SessionID string    // sessionID
	Key       string    // messageKey
	Value     string    // messageValue
	CreatedAt time.Time // createdAt
}

// TalquiSession is a session the fake Talqui opened. Every session start
// opens a new one.
type TalquiSession struct {
	ID           string // sessionID
	ContactID    string // contactID
	TenantID     string // tenantID
	Channel      string // sessionChannel: the URN as sent
	ConnectionID string // the pluginConnectionID sent
	Kind         string // sessionKind, as sent or defaulted
	Type         string // sessionType, as sent or defaulted
	// CampaignModelID and CampaignVariables are as sent (empty when not).
	CampaignModelID   string
	CampaignVariables json.RawMessage
	// Extra holds the top-level body fields the fake does not know (plugin
	// fields), raw; nil when there are none.
	Extra     map[string]json.RawMessage
	Message   TalquiMessage // the first message
	CreatedAt time.Time     // createdAt
}

type talquiState struct {
	contacts []*TalquiContact
	byKey    map[[2]string]*TalquiContact // channel, external id
	sessions []*TalquiSession
}

func (t *talquiState) init() {
	*t = talquiState{byKey: make(map[[2]string]*TalquiContact)}
}

// Contacts returns a copy of the Talqui contacts, oldest first.
func (s *Server) Contacts() []TalquiContact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TalquiContact, len(s.talqui.contacts))
	for i, c := range s.talqui.contacts {
		out[i] = *c
	}
	return out
}

// Sessions returns a copy of the Talqui sessions, oldest first.
func (s *Server) Sessions() []TalquiSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TalquiSession, len(s.talqui.sessions))
	for i, ss := range s.talqui.sessions {
		out[i] = *ss
		out[i].CampaignVariables = append(json.RawMessage(nil), ss.CampaignVariables...)
		out[i].Extra = maps.Clone(ss.Extra)
	}
	return out
}

// routeTalqui serves /tenants/{tenantID}/sessions. The caller holds s.mu.
func (s *Server) routeTalqui(r *http.Request, segs []string, body []byte) response {
	if len(segs) != 2 || segs[1] != "sessions" {
		return notFound(r.URL.EscapedPath())
	}
	if r.Method != http.MethodPost {
		return methodNotAllowed(http.MethodPost)
	}
	return s.startSession(r, segs[0], body)
}

// startSession is POST /tenants/{tenantID}/sessions. Checks, in order:
// the Authorization scheme (401), the tenant (404), the token belongs to a
// connection of the tenant (401), Content-Type (415), the body is a JSON
// object (400), the token is the one of the connection the body names
// (401), then the fields and the channel's rules (400, every problem
// listed).
func (s *Server) startSession(r *http.Request, tenantID string, body []byte) response {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "PluginConnection ")
	if !ok || token == "" {
		return errorResponse(http.StatusUnauthorized, `missing or malformed Authorization header; want "PluginConnection <token>"`)
	}
	if tenantID != s.tenantID {
		return errorResponse(http.StatusNotFound, "tenant not found")
	}
	if s.connectionOf(token) == "" {
		return errorResponse(http.StatusUnauthorized, "invalid plugin connection token")
	}
	if !isJSON(r) {
		return errorResponse(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	fields, ok := object(body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object")
	}

	var problems []string
	str := func(name string) string {
		raw, ok := fields[name]
		if !ok || isNull(raw) {
			return ""
		}
		v, ok := asString(raw)
		if !ok {
			problems = append(problems, name+" must be a string")
		}
		return v
	}
	connID := str("pluginConnectionID")
	channel := str("channel")
	fullName := str("contactFullName")
	externalID := str("contactExternalID")
	key := str("messageKey")
	value := str("messageValue")
	kind := str("sessionKind")
	typ := str("sessionType")
	modelID := str("campaignModelID")
	vars, hasVars := fields["campaignVariables"]
	if hasVars && (len(vars) == 0 || vars[0] != '[') {
		problems = append(problems, "campaignVariables must be an array")
	}

	if connID == "" {
		problems = append(problems, "pluginConnectionID is required")
	} else if s.connectionOf(token) != connID {
		return errorResponse(http.StatusUnauthorized, "the token is not the one of plugin connection "+connID)
	}

	switch {
	case channel == "":
		problems = append(problems, "channel is required")
	case !channelURN.MatchString(channel):
		problems = append(problems, "channel must be a Talqui URN such as urn:talqui:whatsapp-cloud:0")
	}
	if strings.TrimSpace(externalID) == "" {
		if channel == channelIFood {
			problems = append(problems, "contactExternalID is required: the iFood order code")
		} else {
			problems = append(problems, "contactExternalID is required")
		}
	}
	switch key {
	case "text":
	case "":
		problems = append(problems, "messageKey is required")
	default:
		problems = append(problems, `messageKey must be "text"`)
	}
	if strings.TrimSpace(value) == "" {
		problems = append(problems, "messageValue is required")
	}
	switch channel {
	case channelWhatsAppCloud:
		if strings.TrimSpace(modelID) == "" {
			problems = append(problems, "campaignModelID is required for urn:talqui:whatsapp-cloud:0")
		}
		fallthrough
	case channelWhatsAppInternal:
		if externalID != "" && !phoneID.MatchString(externalID) {
			problems = append(problems, "contactExternalID must be a phone number of 8 to 15 digits, digits only")
		}
	}
	if len(problems) > 0 {
		return errorResponse(http.StatusBadRequest, strings.Join(problems, "; "))
	}

	if kind == "" {
		kind = "transactional"
		if channel == channelWhatsAppCloud {
			kind = "marketing"
		}
	}
	if typ == "" {
		typ = "auto"
	}
	extra := map[string]json.RawMessage{}
	for k, v := range fields {
		switch k {
		case "channel", "pluginConnectionID", "contactFullName", "contactExternalID", "messageKey",
			"messageValue", "sessionKind", "sessionType", "campaignModelID", "campaignVariables":
		default:
			extra[k] = append(json.RawMessage(nil), v...)
		}
	}
	if len(extra) == 0 {
		extra = nil
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	ck := [2]string{channel, externalID}
	contact := s.talqui.byKey[ck]
	if contact == nil {
		contact = &TalquiContact{ID: newUUID(), FullName: fullName, ExternalID: externalID, Channel: channel, CreatedAt: now}
		s.talqui.byKey[ck] = contact
		s.talqui.contacts = append(s.talqui.contacts, contact)
		s.stats.TalquiContacts++
	} else if fullName != "" {
		contact.FullName = fullName
	}
	sess := &TalquiSession{
		ID:              newUUID(),
		ContactID:       contact.ID,
		TenantID:        s.tenantID,
		Channel:         channel,
		ConnectionID:    connID,
		Kind:            kind,
		Type:            typ,
		CampaignModelID: modelID,
		Extra:           extra,
		CreatedAt:       now,
	}
	if hasVars {
		sess.CampaignVariables = append(json.RawMessage(nil), vars...)
	}
	sess.Message = TalquiMessage{ID: newUUID(), SessionID: sess.ID, Key: key, Value: value, CreatedAt: now}
	s.talqui.sessions = append(s.talqui.sessions, sess)
	s.stats.TalquiSessions++

	return jsonResponse(http.StatusCreated, talquiStarted(contact, sess))
}

// connectionOf returns the id of the connection whose token is token, or
// "". The comparison takes the same time whatever the token.
func (s *Server) connectionOf(token string) string {
	id := ""
	for _, c := range s.conns {
		if subtle.ConstantTimeCompare([]byte(c.Token), []byte(token)) == 1 {
			id = c.ID
		}
	}
	return id
}

// talquiStarted is the wire body of a session start: the contact, the
// session (in the shape of Talqui's RTM session object) and the message.
func talquiStarted(c *TalquiContact, ss *TalquiSession) map[string]any {
	var name any
	if c.FullName != "" {
		name = c.FullName
	}
	ts := func(t time.Time) string { return t.Format(talquiTime) }
	return map[string]any{
		"contact": map[string]any{
			"contactID":         c.ID,
			"contactFullName":   name,
			"contactExternalID": c.ExternalID,
			"createdAt":         ts(c.CreatedAt),
		},
		"session": map[string]any{
			"sessionID":            ss.ID,
			"contactID":            ss.ContactID,
			"tenantID":             ss.TenantID,
			"operatorID":           nil,
			"sessionChannel":       ss.Channel,
			"sessionActive":        true,
			"sessionKind":          ss.Kind,
			"sessionType":          ss.Type,
			"sessionStatus":        0,
			"sessionLastMessageID": ss.Message.ID,
			"sessionMeta":          map[string]any{},
			"sessionTags":          []string{},
			"sessionRating":        map[string]any{"comment": nil, "stars": 0},
			"createdAt":            ts(ss.CreatedAt),
			"updatedAt":            ts(ss.CreatedAt),
		},
		"message": map[string]any{
			"messageID":    ss.Message.ID,
			"sessionID":    ss.Message.SessionID,
			"messageKey":   ss.Message.Key,
			"messageValue": ss.Message.Value,
			"createdAt":    ts(ss.Message.CreatedAt),
		},
	}
}
