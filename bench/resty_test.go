package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-resty/resty/v2"
)

// restyClient is the same calls made with github.com/go-resty/resty/v2,
// configured as its documentation suggests (base URL, auth token, default
// headers, SetResult), on a transport tuned like the others.
type restyClient struct {
	tr     *http.Transport
	talkjs *resty.Client
	talqui *resty.Client
}

func newRestyClient(base string) *restyClient {
	tr := newTunedTransport()
	hc := &http.Client{Transport: tr}
	talkjs := resty.NewWithClient(hc).
		SetBaseURL(base+"/v1/"+appID).
		SetAuthToken(secretKey).
		SetHeader("Accept", "application/json").
		SetHeader("User-Agent", userAgent)
	talqui := resty.NewWithClient(hc).
		SetBaseURL(base).
		SetAuthScheme("PluginConnection").
		SetAuthToken(connToken).
		SetHeader("Accept", "application/json").
		SetHeader("User-Agent", userAgent)
	return &restyClient{tr: tr, talkjs: talkjs, talqui: talqui}
}

func (c *restyClient) close() { c.tr.CloseIdleConnections() }

func check(resp *resty.Response, err error) error {
	if err != nil {
		return err
	}
	if resp.IsError() {
		return fmt.Errorf("%s %s: status %d: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode(), resp.Body())
	}
	return nil
}

func (c *restyClient) upsertUser(ctx context.Context, id string, u *nhUser) error {
	return check(c.talkjs.R().
		SetContext(ctx).
		SetPathParam("userId", id).
		SetHeader("Content-Type", "application/json").
		SetBody(u).
		Put("/users/{userId}"))
}

func (c *restyClient) sendMessage(ctx context.Context, conv, sender, text string) ([]string, error) {
	msgs := []nhSendMessage{{Text: text, Sender: sender, Type: "UserMessage", IdempotencyKey: idempotencyKey()}}
	var out []struct {
		ID string `json:"id"`
	}
	err := check(c.talkjs.R().
		SetContext(ctx).
		SetPathParam("conversationId", conv).
		SetHeader("Content-Type", "application/json").
		SetBody(msgs).
		SetResult(&out).
		Post("/conversations/{conversationId}/messages"))
	if err != nil {
		return nil, err
	}
	if len(out) != len(msgs) {
		return nil, fmt.Errorf("send: %d ids for %d messages", len(out), len(msgs))
	}
	ids := make([]string, len(out))
	for i, r := range out {
		ids[i] = r.ID
	}
	return ids, nil
}

func (c *restyClient) messagesPage(ctx context.Context, conv string, limit int) ([]nhMessage, error) {
	var page nhMessagePage
	err := check(c.talkjs.R().
		SetContext(ctx).
		SetPathParam("conversationId", conv).
		SetQueryParam("limit", strconv.Itoa(limit)).
		SetResult(&page).
		Get("/conversations/{conversationId}/messages"))
	if err != nil {
		return nil, err
	}
	return page.Data, nil
}

func (c *restyClient) startSession(ctx context.Context, s *nhSessionStart) (*nhStartedSession, error) {
	var out nhStartedSession
	err := check(c.talqui.R().
		SetContext(ctx).
		SetPathParam("tenantId", tenantID).
		SetHeader("Content-Type", "application/json").
		SetBody(s).
		SetResult(&out).
		Post("/tenants/{tenantId}/sessions"))
	if err != nil {
		return nil, err
	}
	return &out, nil
}
