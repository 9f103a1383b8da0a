package convotest

// This file holds the webhook senders.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/convokit/convo"
)

// talkJSWebhookTimeout is how long TalkJS waits for a webhook's answer.
const talkJSWebhookTimeout = 5 * time.Second

// maxDeliveryAnswer is the most of a webhook answer's body that is kept.
const maxDeliveryAnswer = 1 << 20

// DeliverSelarti posts ev to url as Selarti posts an "All messages"
// webhook: a JSON body (ev as encoding/json marshals it), Content-Type
// application/json, no signature. It waits at most 10 s for an answer,
// and Close ends it.
//
// The answer's body is read in full (up to 1 MiB) and the connection
// released, so the caller need not close it.
func (s *Server) DeliverSelarti(ctx context.Context, url string, ev convo.SelartiEvent) (*http.Response, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("convotest: encoding the Selarti event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, selartiWebhookTimeout)
	defer cancel()
	return s.post(ctx, url, body, nil)
}

// DeliverTalkJS posts a TalkJS webhook of eventType (such as
// "message.sent") to url: the envelope {"id": "evt_…", "createdAt": <Unix
// ms>, "type": eventType, "data": data}, signed with the app's secret key.
// X-TalkJS-Timestamp is the time of sending in Unix milliseconds, and
// X-TalkJS-Signature the uppercase hex HMAC-SHA256 of
// timestamp + "." + body. Like TalkJS, it waits at most 5 s for an answer
// (and Close ends it); it sends once (TalkJS retries a non-200 answer once: call it again to
// play that).
//
// The answer's body is read in full (up to 1 MiB) and the connection
// released, so the caller need not close it.
func (s *Server) DeliverTalkJS(ctx context.Context, url, eventType string, data any) (*http.Response, error) {
	now := time.Now()
	body, err := json.Marshal(map[string]any{
		"id":        "evt_" + randomBase62(22),
		"createdAt": now.UnixMilli(),
		"type":      eventType,
		"data":      data,
	})
	if err != nil {
		return nil, fmt.Errorf("convotest: encoding the TalkJS event: %w", err)
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	ctx, cancel := context.WithTimeout(ctx, talkJSWebhookTimeout)
	defer cancel()
	return s.post(ctx, url, body, http.Header{
		"X-Talkjs-Timestamp": {ts},
		"X-Talkjs-Signature": {convo.SignTalkJSWebhook(s.secret, ts, body)},
	})
}

// post sends body as JSON, through the fake's own client, and returns the
// answer with its body read. Close ends it.
func (s *Server) post(ctx context.Context, url string, body []byte, h http.Header) (*http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("convotest: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hooks.Do(req)
	if err != nil {
		return nil, fmt.Errorf("convotest: delivering the webhook: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxDeliveryAnswer))
	if err != nil {
		return nil, fmt.Errorf("convotest: reading the webhook's answer: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	return resp, nil
}
