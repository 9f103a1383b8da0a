package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// newTunedTransport is the transport a careful developer would set up for
// many concurrent calls to one host: the same pool and timeouts as the
// SDK's default transport (client.go newTransport).
func newTunedTransport() *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          128,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

// netHTTPClient is the hand-written peer: what a careful Go developer
// writes with net/http and encoding/json alone. It builds each request
// with its context, sets the same headers as the SDK, marshals the body,
// checks the status, and decodes the answer into structs equivalent to the
// SDK's.
type netHTTPClient struct {
	hc         *http.Client
	talkjsBase string // base + "/v1/" + appID
	talquiBase string
	talkjsAuth string
	talquiAuth string
}

func newNetHTTPClient(base string) *netHTTPClient {
	return &netHTTPClient{
		hc:         &http.Client{Transport: newTunedTransport()},
		talkjsBase: base + "/v1/" + url.PathEscape(appID),
		talquiBase: base,
		talkjsAuth: "Bearer " + secretKey,
		talquiAuth: "PluginConnection " + connToken,
	}
}

func (c *netHTTPClient) close() { c.hc.CloseIdleConnections() }

type httpError struct {
	Method, URL string
	Status      int
	Body        []byte
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.URL, e.Status, e.Body)
}

// do sends in as JSON (when not nil) and decodes a 2xx answer into out
// (when not nil).
func (c *netHTTPClient) do(ctx context.Context, method, u, auth string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return &httpError{Method: method, URL: u, Status: resp.StatusCode, Body: b}
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("%s %s: decoding response: %w", method, u, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
	return nil
}

// nhUser is the body of PUT /users/{id} (talkjs.md §3.1).
type nhUser struct {
	Name           string            `json:"name,omitempty"`
	Email          []string          `json:"email,omitempty"`
	Phone          []string          `json:"phone,omitempty"`
	PhotoURL       string            `json:"photoUrl,omitempty"`
	WelcomeMessage string            `json:"welcomeMessage,omitempty"`
	Role           string            `json:"role,omitempty"`
	Locale         string            `json:"locale,omitempty"`
	Custom         map[string]string `json:"custom,omitempty"`
}

func (c *netHTTPClient) upsertUser(ctx context.Context, id string, u *nhUser) error {
	return c.do(ctx, http.MethodPut, c.talkjsBase+"/users/"+url.PathEscape(id), c.talkjsAuth, u, nil)
}

// nhSendMessage is one item of the body of POST …/messages (talkjs.md §3.6).
type nhSendMessage struct {
	Text           string `json:"text"`
	Sender         string `json:"sender,omitempty"`
	Type           string `json:"type"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

func idempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *netHTTPClient) sendMessage(ctx context.Context, conv, sender, text string) ([]string, error) {
	msgs := []nhSendMessage{{Text: text, Sender: sender, Type: "UserMessage", IdempotencyKey: idempotencyKey()}}
	var resp []struct {
		ID string `json:"id"`
	}
	err := c.do(ctx, http.MethodPost, c.talkjsBase+"/conversations/"+url.PathEscape(conv)+"/messages", c.talkjsAuth, msgs, &resp)
	if err != nil {
		return nil, err
	}
	if len(resp) != len(msgs) {
		return nil, fmt.Errorf("send: %d ids for %d messages", len(resp), len(msgs))
	}
	ids := make([]string, len(resp))
	for i, r := range resp {
		ids[i] = r.ID
	}
	return ids, nil
}

// nhMessage is a listed message (talkjs.md §3.7), the fields of convo.Message.
type nhMessage struct {
	ID             string   `json:"id"`
	ConversationID string   `json:"conversationId"`
	Type           string   `json:"type"`
	SenderID       string   `json:"senderId"`
	ReadBy         []string `json:"readBy"`
	Text           string   `json:"text"`
	Attachment     *struct {
		URL  string `json:"url"`
		Size int64  `json:"size"`
	} `json:"attachment"`
	Location            []float64         `json:"location"`
	Content             []json.RawMessage `json:"content"`
	Origin              string            `json:"origin"`
	CreatedAt           int64             `json:"createdAt"`
	EditedAt            int64             `json:"editedAt"`
	ReferencedMessageID string            `json:"referencedMessageId"`
	Custom              map[string]string `json:"custom"`
}

type nhMessagePage struct {
	Data []nhMessage `json:"data"`
}

func (c *netHTTPClient) messagesPage(ctx context.Context, conv string, limit int) ([]nhMessage, error) {
	var page nhMessagePage
	u := c.talkjsBase + "/conversations/" + url.PathEscape(conv) + "/messages?limit=" + strconv.Itoa(limit)
	if err := c.do(ctx, http.MethodGet, u, c.talkjsAuth, nil, &page); err != nil {
		return nil, err
	}
	return page.Data, nil
}

// nhSessionStart is the body of POST /tenants/{t}/sessions for WhatsApp
// Business (talqui.md §4.2).
type nhSessionStart struct {
	Channel            string `json:"channel"`
	PluginConnectionID string `json:"pluginConnectionID"`
	ContactFullName    string `json:"contactFullName,omitempty"`
	ContactExternalID  string `json:"contactExternalID"`
	MessageKey         string `json:"messageKey"`
	MessageValue       string `json:"messageValue"`
}

// The parts of a session start answer, the fields of convo.TalquiContact,
// TalquiSession and TalquiMessage.
type nhContact struct {
	ContactID         string    `json:"contactID"`
	ContactFullName   string    `json:"contactFullName"`
	ContactExternalID string    `json:"contactExternalID"`
	CreatedAt         time.Time `json:"createdAt"`
	UpdatedAt         time.Time `json:"updatedAt"`
}

type nhSession struct {
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

type nhTalquiMessage struct {
	MessageID    string    `json:"messageID"`
	SessionID    string    `json:"sessionID"`
	MessageKey   string    `json:"messageKey"`
	MessageValue string    `json:"messageValue"`
	CreatedAt    time.Time `json:"createdAt"`
}

type nhStartedSession struct {
	Contact *nhContact       `json:"contact"`
	Session *nhSession       `json:"session"`
	Message *nhTalquiMessage `json:"message"`
}

func (c *netHTTPClient) startSession(ctx context.Context, s *nhSessionStart) (*nhStartedSession, error) {
	var out nhStartedSession
	err := c.do(ctx, http.MethodPost, c.talquiBase+"/tenants/"+url.PathEscape(tenantID)+"/sessions", c.talquiAuth, s, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}
