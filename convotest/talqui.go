package convotest

// This file holds the Talqui side: its route table, the contacts and
// sessions it keeps, how a session start changes them, and the answer.
// The checks of a session start are in talqui_start.go.

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
	ContactID  string    // contactID
	FullName   string    // contactFullName, "" when never sent
	ExternalID string    // contactExternalID
	Channel    string    // the channel URN it was made on
	CreatedAt  time.Time // createdAt
}

// TalquiMessage is the first message of a Talqui session.
type TalquiMessage struct {
	MessageID string    // messageID
	SessionID string    // sessionID
	Key       string    // messageKey
	Value     string    // messageValue
	CreatedAt time.Time // createdAt
}

// TalquiSession is a session the fake Talqui opened. Every session start
// opens a new one.
type TalquiSession struct {
	SessionID    string // sessionID
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

// openSession stores a session start: the contact of its channel and
// external id, made on first use, and a new session with its first
// message.
func (s *Server) openSession(st sessionStart) (*TalquiContact, *TalquiSession) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	contact := s.talquiContact(st, now)
	sess := &TalquiSession{
		SessionID:         newUUID(),
		ContactID:         contact.ContactID,
		TenantID:          s.tenantID,
		Channel:           st.channel,
		ConnectionID:      st.connID,
		Kind:              st.kind,
		Type:              st.typ,
		CampaignModelID:   st.modelID,
		CampaignVariables: st.vars,
		Extra:             st.extra,
		CreatedAt:         now,
	}
	sess.Message = TalquiMessage{MessageID: newUUID(), SessionID: sess.SessionID, Key: st.key, Value: st.value, CreatedAt: now}
	s.talqui.sessions = append(s.talqui.sessions, sess)
	s.stats.TalquiSessions++
	return contact, sess
}

// talquiContact returns the contact of the start's channel and external
// id, made when new; a name sent updates an existing one.
func (s *Server) talquiContact(st sessionStart, now time.Time) *TalquiContact {
	key := [2]string{st.channel, st.externalID}
	contact := s.talqui.byKey[key]
	if contact != nil {
		if st.fullName != "" {
			contact.FullName = st.fullName
		}
		return contact
	}
	contact = &TalquiContact{ContactID: newUUID(), FullName: st.fullName, ExternalID: st.externalID, Channel: st.channel, CreatedAt: now}
	s.talqui.byKey[key] = contact
	s.talqui.contacts = append(s.talqui.contacts, contact)
	s.stats.TalquiContacts++
	return contact
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
			"contactID":         c.ContactID,
			"contactFullName":   name,
			"contactExternalID": c.ExternalID,
			"createdAt":         ts(c.CreatedAt),
		},
		"session": map[string]any{
			"sessionID":            ss.SessionID,
			"contactID":            ss.ContactID,
			"tenantID":             ss.TenantID,
			"operatorID":           nil,
			"sessionChannel":       ss.Channel,
			"sessionActive":        true,
			"sessionKind":          ss.Kind,
			"sessionType":          ss.Type,
			"sessionStatus":        0,
			"sessionLastMessageID": ss.Message.MessageID,
			"sessionMeta":          map[string]any{},
			"sessionTags":          []string{},
			"sessionRating":        map[string]any{"comment": nil, "stars": 0},
			"createdAt":            ts(ss.CreatedAt),
			"updatedAt":            ts(ss.CreatedAt),
		},
		"message": map[string]any{
			"messageID":    ss.Message.MessageID,
			"sessionID":    ss.Message.SessionID,
			"messageKey":   ss.Message.Key,
			"messageValue": ss.Message.Value,
			"createdAt":    ts(ss.Message.CreatedAt),
		},
	}
}
