package main

import (
	"context"
	"encoding/json"

	"github.com/convokit/convo"
)

// selartiFlagNames are the flags behind the SDK's problem fields of a send.
var selartiFlagNames = map[string]string{"TaskID": "task", "ChatID": "chat", "Text": "text", "Extra": "extra"}

func runSelartiSend(c cmdIO, args []string) int {
	const name = "selarti send"
	var (
		task, chat, text string
		extra            = keyValues{}
		dryRun           bool
		timeout          = defaultTimeout
	)
	fs := newFlagSet(name, "selarti send -chat ID -text TEXT [-task ID] [flags]\n\n"+
		"Sends a person's message to Selarti's AI (send_external_message) and prints Selarti's\n"+
		"answer as JSON; the AI's reply comes later, to the \"All messages\" webhook (see convo listen,\n"+
		"and convo fake -selarti-webhook). Never repeated once it may have reached Selarti. Selarti is\n"+
		"configured by SELARTI_API_KEY, and SELARTI_URL when set (convo.WithEnv); -dry-run needs neither.\n"+
		"The first line on stderr names the host called.")
	fs.StringVar(&task, "task", "", "the `id` of the task whose AI answers (default SELARTI_TASK_ID)")
	fs.StringVar(&chat, "chat", "", "your stable `id` of the person's chat, sent as chat_id (required)")
	fs.StringVar(&text, "text", "", "the person's message `text` (required)")
	fs.Var(extra, "extra", "body field `key=value`, sent as a string, repeatable")
	fs.BoolVar(&dryRun, "dry-run", false, "print the exact requests (the token exchange and the send); send nothing (needs no credentials)")
	fs.DurationVar(&timeout, "timeout", defaultTimeout, "bound the whole call, token exchange and retries included")
	if code := parseFlags(c, fs, args); code >= 0 {
		return code
	}
	if task == "" {
		task = c.env("SELARTI_TASK_ID")
	}
	m := convo.SelartiMessage{TaskID: task, ChatID: chat, Text: text}
	if len(extra) > 0 {
		m.Extra = make(map[string]any, len(extra))
		for k, v := range extra {
			m.Extra[k] = v
		}
	}
	return runCall(c, apiCall{name: name, provider: convo.ProviderSelarti,
		needs: "SELARTI_API_KEY", dryRun: dryRun, timeout: timeout,
		standIn: convo.WithSelarti("$SELARTI_API_KEY"),
		flags:   selartiFlagNames,
		do: func(ctx context.Context, cl *convo.Client) ([]byte, error) {
			res, err := cl.Selarti.Send(ctx, m)
			if err != nil {
				return nil, err
			}
			if len(res.Raw) == 0 || !json.Valid(res.Raw) {
				return json.Marshal(struct {
					Body string `json:"body"`
				}{string(res.Raw)})
			}
			return res.Raw, nil
		}})
}
