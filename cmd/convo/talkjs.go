package main

import (
	"context"
	"encoding/json"

	"github.com/convokit/convo"
)

// talkjsFlagNames are the flags behind the SDK's problem fields of a send.
var talkjsFlagNames = map[string]string{
	"conversationID": "conversation", "Sender": "sender", "Text": "text",
	"IdempotencyKey": "idempotency-key", "Custom": "custom",
}

func runTalkJSSend(c cmdIO, args []string) int {
	const name = "talkjs send"
	var (
		conv, sender, text, key string
		custom                  = keyValues{}
		dryRun                  bool
		timeout                 = defaultTimeout
	)
	fs := newFlagSet(name, "talkjs send -conversation ID -sender ID -text TEXT [flags]\n\n"+
		"Sends one user message to a TalkJS conversation and prints its id as JSON. TalkJS is\n"+
		"configured by TALKJS_APP_ID and TALKJS_SECRET_KEY, and TALKJS_URL when set (convo.WithEnv);\n"+
		"-dry-run needs none of them. The first line on stderr names the host called.")
	fs.StringVar(&conv, "conversation", "", "conversation `id` (required)")
	fs.StringVar(&sender, "sender", "", "sending user's `id`, a participant (required)")
	fs.StringVar(&text, "text", "", "message `text` (required)")
	fs.StringVar(&key, "idempotency-key", "", "message idempotency `key` (default a random one; reuse it to resend safely)")
	fs.Var(custom, "custom", "message metadata `key=value`, repeatable")
	fs.BoolVar(&dryRun, "dry-run", false, "print the exact request and every problem; send nothing (needs no credentials)")
	fs.DurationVar(&timeout, "timeout", defaultTimeout, "bound the whole call, retries included")
	if code := parseFlags(c, fs, args); code >= 0 {
		return code
	}
	msg := convo.UserMessage(sender, text)
	msg.IdempotencyKey = key
	if len(custom) > 0 {
		msg.Custom = custom
	}
	return runCall(c, apiCall{name: name, provider: convo.ProviderTalkJS,
		needs: "TALKJS_APP_ID and TALKJS_SECRET_KEY", dryRun: dryRun, timeout: timeout,
		standIn: convo.WithTalkJS("$TALKJS_APP_ID", "$TALKJS_SECRET_KEY"),
		flags:   talkjsFlagNames,
		do: func(ctx context.Context, cl *convo.Client) ([]byte, error) {
			ids, err := cl.Conversations.SendMessages(ctx, conv, msg)
			if err != nil {
				return nil, err
			}
			return json.Marshal(struct {
				Conversation string   `json:"conversation"`
				MessageIDs   []string `json:"messageIds"`
			}{conv, ids})
		}})
}
