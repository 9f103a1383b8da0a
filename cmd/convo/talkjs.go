package main

import (
	"encoding/json"

	"github.com/convokit/convo"
)

func runTalkJSSend(c cmdIO, args []string) int {
	const name = "talkjs send"
	var (
		conv, sender, text, key string
		custom                  = keyValues{}
		dryRun                  bool
	)
	fs := newFlagSet(name, "talkjs send -conversation ID -sender ID -text TEXT [flags]\n\n"+
		"Sends one user message to a TalkJS conversation and prints its id as JSON.\n"+
		"Credentials come from TALKJS_APP_ID and TALKJS_SECRET_KEY; TALKJS_URL overrides the base URL.")
	fs.StringVar(&conv, "conversation", "", "conversation `id` (required)")
	fs.StringVar(&sender, "sender", "", "sending user's `id`, a participant (required)")
	fs.StringVar(&text, "text", "", "message `text` (required)")
	fs.StringVar(&key, "idempotency-key", "", "message idempotency `key` (default a random one; reuse it to resend safely)")
	fs.Var(custom, "custom", "message metadata `key=value`, repeatable")
	fs.BoolVar(&dryRun, "dry-run", false, "print the exact request and every problem; send nothing")
	if code := parseFlags(c, fs, args); code >= 0 {
		return code
	}
	opts, secrets, err := talkjsOptions(c.env)
	if err != nil {
		c.errorf(name, "%v", err)
		return exitUsage
	}
	msg := convo.UserMessage(sender, text)
	msg.IdempotencyKey = key
	if len(custom) > 0 {
		msg.Custom = custom
	}
	return runCall(c, apiCall{name: name, dryRun: dryRun, opts: opts, secrets: secrets,
		do: func(cl *convo.Client) ([]byte, error) {
			ids, err := cl.Conversations.SendMessages(c.ctx, conv, msg)
			if err != nil {
				return nil, err
			}
			return json.Marshal(struct {
				Conversation string   `json:"conversation"`
				MessageIDs   []string `json:"messageIds"`
			}{conv, ids})
		}})
}

// talkjsOptions configures TalkJS from the environment.
func talkjsOptions(env func(string) string) ([]convo.Option, []string, error) {
	v, err := requireEnv(env, "TALKJS_APP_ID", "TALKJS_SECRET_KEY")
	if err != nil {
		return nil, nil, err
	}
	opts := []convo.Option{convo.WithTalkJS(v[0], v[1])}
	if u := env("TALKJS_URL"); u != "" {
		opts = append(opts, convo.WithTalkJSURL(u))
	}
	return opts, []string{v[1]}, nil
}
