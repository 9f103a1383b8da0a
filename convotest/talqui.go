package convotest

import (
	"encoding/json"
	"maps"
	"net/http"
	"time"
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
	return copyAll(s.talqui.contacts, func(c *TalquiContact) TalquiContact { return *c })
}

// Sessions returns a copy of the Talqui sessions, oldest first.
func (s *Server) Sessions() []TalquiSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyAll(s.talqui.sessions, (*TalquiSession).clone)
}

func (ss *TalquiSession) clone() TalquiSession {
	c := *ss
	c.CampaignVariables = append(json.RawMessage(nil), ss.CampaignVariables...)
	c.Extra = maps.Clone(ss.Extra)
	return c
}

// talquiRoutes are the Talqui endpoints, below /tenants.
var talquiRoutes = []route{
	{http.MethodPost, "{tenant}/sessions", (*Server).startSession},
}

// serveTalqui serves /tenants/.... The caller holds s.mu.
func (s *Server) serveTalqui(c call) response {
	return s.dispatch(talquiRoutes, c, nil)
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
