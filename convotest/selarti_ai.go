package convotest

// This file holds the other end of the Selarti loop: the AI that answers
// each user's message, an operator's reply, and the "All messages" webhook
// that delivers them, and the user's message itself, to the URL set with
// SetSelartiWebhook.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// selartiWebhookTimeout bounds one delivery of an "All messages" webhook,
// the AI's and DeliverSelarti's (Selarti does not publish its own). A
// variable, so that a test can shorten it.
var selartiWebhookTimeout = 10 * time.Second

// The fixed dialog attributes of the fake's webhooks, in the shape of
// Selarti's example.
const (
	selartiChannelID = "5q"
	selartiCompanyID = "1708251850060x460235863640434700"
	selartiManagerID = "4q"
)

// SelartiAI produces the AI's answer to a user's message sent to the fake
// Selarti (msg.Type is "user"). An empty answer sends nothing. It runs on
// a goroutine of its own, once the user's message was echoed to the
// webhook, without the server's lock: it may call the Server's methods.
// ctx ends when the server closes.
type SelartiAI func(ctx context.Context, msg SelartiMessage) string

// DefaultSelartiAI answers every message with "AI: you said " and the
// message's text, so that a test can tell which message an answer is to.
func DefaultSelartiAI(_ context.Context, msg SelartiMessage) string {
	return "AI: you said " + msg.Text
}

// WithSelartiAI sets the AI of the fake Selarti (default
// DefaultSelartiAI).
func WithSelartiAI(ai SelartiAI) ServerOption {
	return func(s *Server) {
		if ai != nil {
			s.selartiAI = ai
		}
	}
}

// SetSelartiWebhook sets the URL of the fake's "All messages" integration,
// where each AI answer and operator reply is posted (Selarti's panel takes
// it under Integrations). An empty url turns delivery off: answers are
// still stored, with WebhookError set. Reset keeps it.
func (s *Server) SetSelartiWebhook(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.selartiHook = url
}

// WaitSelartiReplies waits until every user's message received so far has
// been echoed and answered by the AI, and those deliveries have ended, or
// until ctx ends.
func (s *Server) WaitSelartiReplies(ctx context.Context) error {
	s.mu.Lock()
	idle := s.repliesIdle
	s.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReplyAsOperator adds an operator's reply to the dialog of chatID, as a
// person answering in Selarti's panel would, and delivers it to the
// webhook URL at once (message_type "operator"). The dialog must exist (a
// user's message started it) and a webhook URL must be set. It returns the
// message as stored, with the webhook's status; a delivery that failed is
// an error too.
func (s *Server) ReplyAsOperator(ctx context.Context, chatID, text string) (SelartiMessage, error) {
	s.mu.Lock()
	thread, ok := s.selarti.threads[chatID]
	url := s.selartiHook
	if !ok || url == "" {
		s.mu.Unlock()
		if !ok {
			return SelartiMessage{}, fmt.Errorf("convotest: no Selarti dialog with chat id %q", chatID)
		}
		return SelartiMessage{}, errors.New("convotest: no Selarti webhook URL (SetSelartiWebhook)")
	}
	m := s.addSelartiMessage(s.taskOfThread(thread), chatID, selartiOperator, text)
	s.stats.SelartiReplies++
	msg := m.clone()
	s.mu.Unlock()
	return s.deliverAnswer(ctx, url, m, msg)
}

// taskOfThread is the task of the dialog's latest message. The caller
// holds s.mu.
func (s *Server) taskOfThread(thread string) string {
	for i := len(s.selarti.messages) - 1; i >= 0; i-- {
		if m := s.selarti.messages[i]; m.ThreadID == thread {
			return m.TaskID
		}
	}
	return ""
}

// answerLater, on a goroutine of its own, echoes a user's message to the
// webhook, as Selarti does, then has the AI answer it and delivers the
// answer. The caller holds s.mu.
func (s *Server) answerLater(user *SelartiMessage) {
	if s.closed {
		return
	}
	if s.replying == 0 {
		s.repliesIdle = make(chan struct{})
	}
	s.replying++
	in, url := user.clone(), s.selartiHook
	go func() {
		defer s.replyDone()
		in, _ = s.deliverAnswer(s.ctx, url, user, in)
		text := s.selartiAI(s.ctx, in)
		if text == "" {
			return
		}
		s.mu.Lock()
		m := s.addSelartiMessage(in.TaskID, in.ChatID, selartiBot, text)
		s.stats.SelartiReplies++
		msg, url := m.clone(), s.selartiHook
		s.mu.Unlock()
		_, _ = s.deliverAnswer(s.ctx, url, m, msg)
	}()
}

// replyDone notes the end of an answer begun by answerLater.
func (s *Server) replyDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replying--
	if s.replying == 0 {
		close(s.repliesIdle)
		s.repliesIdle = nil
	}
}

// deliverAnswer posts the "All messages" webhook of msg (a copy of m) to
// url and notes the outcome in m.
func (s *Server) deliverAnswer(ctx context.Context, url string, m *SelartiMessage, msg SelartiMessage) (SelartiMessage, error) {
	var status int
	var err error
	if url == "" {
		err = errors.New("convotest: no Selarti webhook URL (SetSelartiWebhook)")
	} else {
		ctx, cancel := context.WithTimeout(ctx, selartiWebhookTimeout)
		defer cancel()
		body, _ := json.Marshal(selartiWebhook(msg))
		s.mu.Lock()
		s.stats.SelartiWebhooks++
		s.mu.Unlock()
		resp, postErr := s.post(ctx, url, body, nil)
		if err = postErr; resp != nil {
			status = resp.StatusCode
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m.WebhookStatus = status
	if err != nil {
		m.WebhookError = err.Error()
	}
	return m.clone(), err
}

// selartiWebhook is the "All messages" body of a message, in the shape of
// Selarti's example: every key, yes/no flags as strings, ids as strings.
func selartiWebhook(m SelartiMessage) map[string]string {
	operator := "no"
	if m.Type == selartiOperator {
		operator = "yes"
	}
	return map[string]string{
		"channel_id":       selartiChannelID,
		"close":            "no",
		"company_id":       selartiCompanyID,
		"contacts":         m.ChatID,
		"external_chat_id": m.ChatID,
		"get_contact":      "no",
		"interest":         "no",
		"is_bot":           "no",
		"manager_id":       selartiManagerID,
		"message_id":       m.ID,
		"message_text":     m.Text,
		"message_type":     m.Type,
		"operator":         operator,
		"panel_url":        "https://selarti.com/panel?menu=chats&thread=" + m.ThreadID,
		"share_url":        "https://selarti.com/share?thread=" + m.ThreadID,
		"success":          "no",
		"task_id":          m.TaskID,
		"thread_id":        m.ThreadID,
		"title":            "API chat " + m.ChatID,
		"wh_type":          "all_messages",
	}
}
