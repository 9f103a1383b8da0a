package convotest

// This file holds the checks of a Talqui session start, POST
// /tenants/{tenantID}/sessions, in the order they run: the caller's
// credentials, the body, the common fields, each channel's rules. The
// state it changes and its answer are in talqui.go.

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
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

// startSession is POST /tenants/{tenantID}/sessions. Checks, in order:
// the Authorization scheme (401), the tenant (404), the token belongs to a
// connection of the tenant (401), Content-Type (415), the body is a JSON
// object (400), the token is the one of the connection the body names
// (401), then the fields and the channel's rules (400, every problem
// listed).
func (s *Server) startSession(c call) response {
	tokenConn, errResp := s.talquiConnection(c.r, c.param("tenant"))
	if errResp != nil {
		return *errResp
	}
	if !isJSON(c.r) {
		return errorResponse(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	fields, ok := object(c.body)
	if !ok {
		return errorResponse(http.StatusBadRequest, "body must be a JSON object")
	}
	st, p := decodeSessionStart(fields)
	if st.connID == "" {
		p.add("pluginConnectionID", "is required")
	} else if st.connID != tokenConn {
		return errorResponse(http.StatusUnauthorized, "the token is not the one of plugin connection "+st.connID)
	}
	st.check(&p)
	if len(p) > 0 {
		return badRequest(p)
	}
	st.setDefaults()
	contact, sess := s.openSession(st)
	return jsonResponse(http.StatusCreated, talquiStarted(contact, sess))
}

// talquiConnection checks the caller's credentials and returns the id of
// the connection its token belongs to: the Authorization scheme (401), the
// tenant (404), the token (401).
func (s *Server) talquiConnection(r *http.Request, tenantID string) (string, *response) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "PluginConnection ")
	if !ok || token == "" {
		resp := errorResponse(http.StatusUnauthorized, `missing or malformed Authorization header; want "PluginConnection <token>"`)
		return "", &resp
	}
	if tenantID != s.tenantID {
		resp := errorResponse(http.StatusNotFound, "tenant not found")
		return "", &resp
	}
	id := s.connectionOf(token)
	if id == "" {
		resp := errorResponse(http.StatusUnauthorized, "invalid plugin connection token")
		return "", &resp
	}
	return id, nil
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

// sessionStart is the body of a session start, decoded.
type sessionStart struct {
	connID, channel, fullName, externalID string
	key, value, kind, typ, modelID        string
	vars                                  json.RawMessage // nil when not sent
	extra                                 map[string]json.RawMessage
}

// decodeSessionStart reads the known fields of a session start, noting
// each of the wrong type, and keeps the others as plugin fields.
func decodeSessionStart(fields map[string]json.RawMessage) (sessionStart, problemList) {
	var st sessionStart
	var p problemList
	strs := st.stringFields()
	for _, f := range strs {
		raw, ok := fields[f.name]
		if !ok || isNull(raw) {
			continue
		}
		v, ok := asString(raw)
		if !ok {
			p.add(f.name, "must be a string")
		}
		*f.dst = v
	}
	if vars, ok := fields["campaignVariables"]; ok {
		if len(vars) == 0 || vars[0] != '[' {
			p.add("campaignVariables", "must be an array")
		}
		st.vars = append(json.RawMessage(nil), vars...)
	}
	for k, v := range fields {
		known := k == "campaignVariables" || slices.ContainsFunc(strs, func(f stringField) bool { return f.name == k })
		if !known {
			if st.extra == nil {
				st.extra = map[string]json.RawMessage{}
			}
			st.extra[k] = append(json.RawMessage(nil), v...)
		}
	}
	return st, p
}

// stringField is a string field of a body and where it is decoded to.
type stringField struct {
	name string
	dst  *string
}

// stringFields are the string fields of a session start, in the order
// their problems are listed.
func (st *sessionStart) stringFields() []stringField {
	return []stringField{
		{"pluginConnectionID", &st.connID}, {"channel", &st.channel},
		{"contactFullName", &st.fullName}, {"contactExternalID", &st.externalID},
		{"messageKey", &st.key}, {"messageValue", &st.value},
		{"sessionKind", &st.kind}, {"sessionType", &st.typ}, {"campaignModelID", &st.modelID},
	}
}

// check notes what is missing or wrong: the fields every channel needs,
// then the channel's own rules.
func (st *sessionStart) check(p *problemList) {
	switch {
	case st.channel == "":
		p.add("channel", "is required")
	case !channelURN.MatchString(st.channel):
		p.add("channel", "must be a Talqui URN such as urn:talqui:whatsapp-cloud:0")
	}
	if strings.TrimSpace(st.externalID) == "" {
		p.add("contactExternalID", "is required"+externalIDMeaning[st.channel])
	}
	switch st.key {
	case "text":
	case "":
		p.add("messageKey", "is required")
	default:
		p.add("messageKey", `must be "text"`)
	}
	if strings.TrimSpace(st.value) == "" {
		p.add("messageValue", "is required")
	}
	for _, rule := range channelRules[st.channel] {
		rule(st, p)
	}
}

// externalIDMeaning says, for a channel where it helps, what
// contactExternalID holds.
var externalIDMeaning = map[string]string{
	channelIFood: ": the iFood order code",
}

// channelRules are the rules a channel adds to the common ones, in the
// order their problems are listed.
var channelRules = map[string][]func(*sessionStart, *problemList){
	channelWhatsAppCloud:    {(*sessionStart).needsCampaignModel, (*sessionStart).needsPhone},
	channelWhatsAppInternal: {(*sessionStart).needsPhone},
}

// needsCampaignModel: WhatsApp Official opens a session with a template.
func (st *sessionStart) needsCampaignModel(p *problemList) {
	if strings.TrimSpace(st.modelID) == "" {
		p.add("campaignModelID", "is required for "+st.channel)
	}
}

// needsPhone: on WhatsApp the contact is a phone number, digits only.
func (st *sessionStart) needsPhone(p *problemList) {
	if st.externalID != "" && !phoneID.MatchString(st.externalID) {
		p.add("contactExternalID", "must be a phone number of 8 to 15 digits, digits only")
	}
}

// setDefaults fills sessionKind (marketing on WhatsApp Official,
// transactional elsewhere) and sessionType (auto) when not sent.
func (st *sessionStart) setDefaults() {
	if st.kind == "" {
		st.kind = "transactional"
		if st.channel == channelWhatsAppCloud {
			st.kind = "marketing"
		}
	}
	if st.typ == "" {
		st.typ = "auto"
	}
}
