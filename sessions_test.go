package convo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captured is one request as the mock server saw it.
type captured struct {
	method, path string
	header       http.Header
	body         []byte
}

// captureStart answers session starts with the given body and records them.
func (env *TestEnv) captureStart(status int, answer string) *[]captured {
	var got []captured
	env.mt.RegisterResponder(http.MethodPost, talquiSessionsURL, func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, captured{r.Method, r.URL.EscapedPath(), r.Header.Clone(), b})
		return httpmock.NewStringResponse(status, answer), nil
	})
	return &got
}

const startAnswer = `{
  "contact": {"contactID": "c-1", "contactFullName": "Maria", "contactExternalID": "5527999999999", "createdAt": "2026-11-22T10:00:00.000Z"},
  "session": {"sessionID": "d6814578-560a-4b4b-95b8-085d465aa032", "contactID": "c-1", "tenantID": "tenant-1",
              "sessionChannel": "whatsapp", "sessionActive": true, "sessionType": "manual", "sessionStatus": 0,
              "sessionTags": [], "sessionMeta": {}, "createdAt": "2023-01-05T21:19:48.317Z", "updatedAt": "2023-01-15T03:33:38.338Z"},
  "message": {"messageID": "m-1", "sessionID": "d6814578-560a-4b4b-95b8-085d465aa032", "messageKey": "text", "messageValue": "Order update notification", "createdAt": "2026-11-22T10:00:00.000Z"}
}`

// The wire form of every builder, against the examples of Talqui's guides and
// reference/talqui.md §4.2 (placeholders replaced by values).
func TestBuilderWireForm(t *testing.T) {
	cases := []struct {
		name string
		req  SessionRequest
		conn string // the token that must be sent
		want string
	}{
		{
			name: "WhatsApp API Official",
			req: WhatsAppOfficial{ConnectionID: "pc-wa", Phone: "+55 (27) 99999-9999", Name: "Maria",
				ModelID: "order_update", Variables: []string{"Maria", "#391"}, Label: "Order update notification"},
			conn: testTokenWA,
			want: `{
				"channel": "urn:talqui:whatsapp-cloud:0",
				"pluginConnectionID": "pc-wa",
				"contactFullName": "Maria",
				"contactExternalID": "5527999999999",
				"campaignModelID": "order_update",
				"messageKey": "text",
				"messageValue": "Order update notification",
				"sessionKind": "marketing",
				"campaignVariables": ["Maria", "#391"]
			}`,
		},
		{
			name: "WhatsApp API Official, label defaults to the model, no variables sends []",
			req:  WhatsAppOfficial{ConnectionID: "pc-wa", Phone: "5527999999999", ModelID: "welcome"},
			conn: testTokenWA,
			want: `{"channel": "urn:talqui:whatsapp-cloud:0", "pluginConnectionID": "pc-wa", "contactExternalID": "5527999999999",
				"campaignModelID": "welcome", "messageKey": "text", "messageValue": "welcome", "sessionKind": "marketing", "campaignVariables": []}`,
		},
		{
			name: "WhatsApp Business",
			req:  WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "+55 27 99999.9999", Name: "Maria", Text: "Hello! Your order is ready for pickup."},
			conn: testTokenWA,
			want: `{
				"channel": "urn:talqui:whatsapp-internal:0",
				"pluginConnectionID": "pc-wa",
				"contactFullName": "Maria",
				"contactExternalID": "5527999999999",
				"messageKey": "text",
				"messageValue": "Hello! Your order is ready for pickup."
			}`,
		},
		{
			name: "iFood",
			req:  IFood{ConnectionID: "pc-food", OrderCode: "ORD-7781", Text: "Your order is ready for pickup.", Extra: map[string]any{"merchantID": "m-9"}},
			conn: testTokenFood,
			want: `{
				"channel": "urn:talqui:ifood:0",
				"pluginConnectionID": "pc-food",
				"contactExternalID": "ORD-7781",
				"messageKey": "text",
				"messageValue": "Your order is ready for pickup.",
				"merchantID": "m-9"
			}`,
		},
		{
			name: "generic channel (Telegram)",
			req: GenericChannel{Channel: "urn:talqui:telegram:0", ConnectionID: "pc-food", ContactID: "@maria", Name: "Maria",
				Text: "Hello! This conversation was started by an external system."},
			conn: testTokenFood,
			want: `{
				"channel": "urn:talqui:telegram:0",
				"pluginConnectionID": "pc-food",
				"contactFullName": "Maria",
				"contactExternalID": "@maria",
				"messageKey": "text",
				"messageValue": "Hello! This conversation was started by an external system."
			}`,
		},
		{
			name: "raw SessionStart, common pattern",
			req: SessionStart{Channel: "urn:talqui:instagram:0", PluginConnectionID: "pc-wa", ContactExternalID: "maria.ig",
				MessageValue: "Hello from an external system", SessionKind: SessionKindTransactional, SessionType: SessionTypeAuto,
				Extra: map[string]any{"z": 1, "a": []int{1, 2}}},
			conn: testTokenWA,
			want: `{
				"channel": "urn:talqui:instagram:0",
				"pluginConnectionID": "pc-wa",
				"contactExternalID": "maria.ig",
				"messageKey": "text",
				"messageValue": "Hello from an external system",
				"sessionKind": "transactional",
				"sessionType": "auto",
				"a": [1, 2], "z": 1
			}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := NewTestEnv(t)
			got := env.captureStart(200, startAnswer)
			started, err := env.c.Sessions.Start(context.Background(), tc.req)
			require.NoError(t, err)
			require.Len(t, *got, 1)
			req := (*got)[0]
			assert.Equal(t, http.MethodPost, req.method)
			assert.Equal(t, "/tenants/tenant-1/sessions", req.path)
			assert.Equal(t, "PluginConnection "+tc.conn, req.header.Get("Authorization"))
			assert.Equal(t, "application/json", req.header.Get("Content-Type"))
			assert.Equal(t, "application/json", req.header.Get("Accept"))
			assert.True(t, strings.HasPrefix(req.header.Get("User-Agent"), "convo-go/"+Version))
			assert.JSONEq(t, tc.want, string(req.body))
			assert.JSONEq(t, startAnswer, string(started.Raw))
		})
	}
}

func TestStartedSessionDecoding(t *testing.T) {
	env := NewTestEnv(t)
	env.captureStart(200, startAnswer)
	s, err := env.c.Sessions.Start(context.Background(), WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "5527999999999", Text: "hi"})
	require.NoError(t, err)
	assert.Equal(t, &TalquiContact{ContactID: "c-1", ContactFullName: "Maria", ContactExternalID: "5527999999999",
		CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}, s.Contact)
	assert.Equal(t, &TalquiSession{SessionID: "d6814578-560a-4b4b-95b8-085d465aa032", ContactID: "c-1", TenantID: "tenant-1",
		SessionChannel: "whatsapp", SessionActive: true, SessionType: "manual", SessionTags: []any{}, SessionMeta: map[string]any{},
		CreatedAt: time.Date(2023, 1, 5, 21, 19, 48, 317e6, time.UTC), UpdatedAt: time.Date(2023, 1, 15, 3, 33, 38, 338e6, time.UTC)}, s.Session)
	assert.Equal(t, &TalquiMessage{MessageID: "m-1", SessionID: "d6814578-560a-4b4b-95b8-085d465aa032", MessageKey: "text",
		MessageValue: "Order update notification", CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}, s.Message)
}

func TestStartedSessionLenient(t *testing.T) {
	env := NewTestEnv(t)
	// A session part of an unexpected shape does not fail a start that happened.
	env.captureStart(201, `{"contact":{"contactID":"c-1"},"session":{"createdAt":1700000000},"extra":true}`)
	s, err := env.c.Sessions.Start(context.Background(), WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "5527999999999", Text: "hi"})
	require.NoError(t, err)
	assert.Equal(t, "c-1", s.Contact.ContactID)
	assert.Nil(t, s.Session)
	assert.Nil(t, s.Message)
	assert.Contains(t, string(s.Raw), `"extra":true`)
}

func TestStartBadResponseKeepsRaw(t *testing.T) {
	env := NewTestEnv(t)
	env.captureStart(200, `<html>ok</html>`)
	s, err := env.c.Sessions.Start(context.Background(), WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "5527999999999", Text: "hi"})
	assert.ErrorIs(t, err, ErrBadResponse)
	require.NotNil(t, s)
	assert.Equal(t, "<html>ok</html>", string(s.Raw))
	assert.Equal(t, 1, env.mt.GetTotalCallCount())
}

func TestStartSingleConnectionMayBeOmitted(t *testing.T) {
	mt := httpmock.NewMockTransport()
	c, err := NewClient(WithTalqui(testTenant, PluginConnection{ID: "only", Token: testTokenWA}), WithHTTPClient(&http.Client{Transport: mt}))
	require.NoError(t, err)
	var body map[string]any
	mt.RegisterResponder(http.MethodPost, talquiSessionsURL, func(r *http.Request) (*http.Response, error) {
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		assert.Equal(t, "PluginConnection "+testTokenWA, r.Header.Get("Authorization"))
		return httpmock.NewStringResponse(200, `{}`), nil
	})
	_, err = c.Sessions.Start(context.Background(), WhatsAppBusiness{Phone: "5527999999999", Text: "hi"})
	require.NoError(t, err)
	assert.Equal(t, "only", body["pluginConnectionID"])
}

// Every validation rule, with zero requests reaching the mock.
func TestValidationRules(t *testing.T) {
	cases := []struct {
		name string
		req  SessionRequest
		want []Problem
	}{
		{"official without model", WhatsAppOfficial{ConnectionID: "pc-wa", Phone: "5527999999999"},
			[]Problem{{"ModelID", "required: WhatsApp API Official opens a conversation only with an approved model"}}},
		{"official, short phone, no model", WhatsAppOfficial{ConnectionID: "pc-wa", Phone: "+55 123"},
			[]Problem{{"Phone", "must have 8 to 15 digits, has 5"}, {"ModelID", "required: WhatsApp API Official opens a conversation only with an approved model"}}},
		{"phone too long", WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "1234567890123456", Text: "x"},
			[]Problem{{"Phone", "must have 8 to 15 digits, has 16"}}},
		{"phone with letters", WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "+55 27 CALL-ME", Text: "x"},
			[]Problem{{"Phone", "must hold only digits, '+', spaces, dots, dashes and brackets"}}},
		{"phone missing", WhatsAppBusiness{ConnectionID: "pc-wa", Text: "x"},
			[]Problem{{"Phone", "required"}}},
		{"business without text", WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "5527999999999", Text: "  "},
			[]Problem{{"Text", "required"}}},
		{"ifood without order code or text", IFood{ConnectionID: "pc-food"},
			[]Problem{{"OrderCode", "required"}, {"Text", "required"}}},
		{"ifood extra collides", IFood{ConnectionID: "pc-food", OrderCode: "o", Text: "t", Extra: map[string]any{"messageValue": "x"}},
			[]Problem{{`Extra["messageValue"]`, "collides with the documented field messageValue; set the field instead"}}},
		{"generic without URN", GenericChannel{ConnectionID: "pc-wa", Channel: "telegram", ContactID: "1", Text: "t"},
			[]Problem{{"Channel", `must be a urn:talqui: channel URN, got "telegram"`}}},
		{"generic empty", GenericChannel{ConnectionID: "pc-wa"},
			[]Problem{{"Channel", "required: a urn:talqui: channel URN"}, {"ContactID", "required"}, {"Text", "required"}}},
		{"unknown connection", WhatsAppBusiness{ConnectionID: "pc-nope", Phone: "5527999999999", Text: "x"},
			[]Problem{{"ConnectionID", `unknown plugin connection "pc-nope"`}}},
		{"connection required with two configured, plus a rule", WhatsAppBusiness{Phone: "5527999999999"},
			[]Problem{{"Text", "required"}, {"ConnectionID", "required: 2 plugin connections are configured"}}},
		{"raw: official rules apply by URN", SessionStart{Channel: ChannelWhatsAppOfficial, PluginConnectionID: "pc-wa", ContactExternalID: "12", MessageValue: "x"},
			[]Problem{{"ContactExternalID", "must have 8 to 15 digits, has 2"}, {"CampaignModelID", "required: WhatsApp API Official opens a conversation only with an approved model"}}},
		{"raw: empty", SessionStart{},
			[]Problem{{"Channel", "required: a urn:talqui: channel URN"}, {"ContactExternalID", "required"}, {"MessageValue", "required"}, {"PluginConnectionID", "required: 2 plugin connections are configured"}}},
		{"nil request", nil, []Problem{{"SessionRequest", "must not be nil"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := NewTestEnv(t)
			env.captureStart(200, `{}`)
			_, err := env.c.Sessions.Start(context.Background(), tc.req)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.want, ve.Problems)
			assert.ErrorIs(t, err, ErrValidation)
			assert.Equal(t, 0, env.mt.GetTotalCallCount(), "nothing may be sent")
		})
	}
}

func TestValidationErrorText(t *testing.T) {
	_, err := IFood{}.SessionStart()
	assert.EqualError(t, err, "convo: validation failed: OrderCode: required; Text: required")
}

func TestSessionStartExtraEncodingError(t *testing.T) {
	env := NewTestEnv(t)
	env.captureStart(200, `{}`)
	_, err := env.c.Sessions.Start(context.Background(), GenericChannel{Channel: "urn:talqui:x:0", ConnectionID: "pc-wa", ContactID: "1", Text: "t",
		Extra: map[string]any{"bad": func() {}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Extra["bad"]`)
	assert.Equal(t, 0, env.mt.GetTotalCallCount())
}

// No error text and no log line holds a token, a secret or an Authorization
// header, on any error path.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	echo := func(code int) httpmock.Responder {
		return func(r *http.Request) (*http.Response, error) {
			// A server that echoes the credential back in its error body.
			return httpmock.NewStringResponse(code, fmt.Sprintf(`{"message":"bad credential %s"}`, r.Header.Get("Authorization"))), nil
		}
	}
	paths := map[string]httpmock.Responder{
		"401 echoing the token": echo(401),
		"403 echoing the token": echo(403),
		"500 echoing the token": echo(500),
		"429":                   statusResponder(429),
		"dial":                  httpmock.NewErrorResponder(dialError()),
		"EOF":                   httpmock.NewErrorResponder(io.EOF),
		"bad JSON":              httpmock.NewStringResponder(200, "{"),
	}
	for name, responder := range paths {
		t.Run(name, func(t *testing.T) {
			env := NewTestEnv(t)
			env.mt.RegisterResponder(http.MethodPost, talquiSessionsURL, responder)
			env.mt.RegisterResponder(http.MethodGet, talkjsUserURL, responder)
			for _, err := range []error{startCall(context.Background(), env.c), safeCall(context.Background(), env.c)} {
				require.Error(t, err)
				assertNoSecret(t, "error text", err.Error())
				assertNoSecret(t, "error %+v", fmt.Sprintf("%+v", err))
				var ae *APIError
				if errors.As(err, &ae) {
					assertNoSecret(t, "APIError.Body", string(ae.Body))
					assertNoSecret(t, "APIError %#v", fmt.Sprintf("%#v", ae))
				}
			}
			assert.NotEmpty(t, env.logs.String())
			assertNoSecret(t, "log", env.logs.String())
		})
	}
	t.Run("validation and context", func(t *testing.T) {
		env := NewTestEnv(t)
		_, err := env.c.Sessions.Start(context.Background(), WhatsAppOfficial{ConnectionID: testTokenWA})
		assertNoSecret(t, "validation error", err.Error())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assertNoSecret(t, "context error", startCall(ctx, env.c).Error())
		assertNoSecret(t, "log", env.logs.String())
	})
}

func TestInvalidUTF8Refused(t *testing.T) {
	env := NewTestEnv(t)
	env.captureStart(200, `{}`)
	_, err := env.c.Sessions.Start(context.Background(), WhatsAppBusiness{ConnectionID: "pc-wa", Phone: "5527999999999", Name: "Jo\xe3o", Text: "Ol\xe1"})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []Problem{{"Name", "must be valid UTF-8"}, {"Text", "must be valid UTF-8"}}, ve.Problems)
	assert.Equal(t, 0, env.mt.GetTotalCallCount())
}
