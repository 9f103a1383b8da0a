// Command telegram starts a Talqui session on Telegram with
// GenericChannel, which takes any installed channel by its URN.
//
// The URN urn:talqui:telegram:0 is NOT documented by Talqui (its generic
// channels guide leaves the URN as a placeholder): check it against the
// channel installed in your tenant before you rely on it. The same goes
// for Instagram, Messenger and custom channels. The contact is the
// channel's own id for the user (a Telegram user id here).
//
// It runs on a convotest fake unless TALQUI_TENANT, TALQUI_CONNECTION_ID
// and TALQUI_TOKEN are set; then -to must name a Telegram user of yours.
//
//	go run ./examples/channels/telegram
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

func main() {
	to := flag.String("to", "", "the contact's Telegram user id (required with TALQUI_* set)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := run(ctx, *to)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "telegram:", err)
		os.Exit(1)
	}
}

// telegramURN is a guess, unverified: see the package comment.
const telegramURN = "urn:talqui:telegram:0"

func run(ctx context.Context, to string) error {
	c, to, done, err := talqui(to, "123456789")
	if err != nil {
		return err
	}
	defer done()
	started, err := c.Sessions.Start(ctx, convo.GenericChannel{
		Channel:   telegramURN,
		ContactID: to,
		Name:      "Maria",
		Text:      "Hi Maria, your order #391 has shipped.",
	})
	if err != nil {
		return err
	}
	printSession(started)
	return nil
}

// talqui returns a client on the real Talqui API when the TALQUI_*
// variables are set, else on a convotest fake, and the contact to use.
func talqui(to, example string) (c *convo.Client, contact string, done func(), err error) {
	tenant, id, token := os.Getenv("TALQUI_TENANT"), os.Getenv("TALQUI_CONNECTION_ID"), os.Getenv("TALQUI_TOKEN")
	if tenant == "" && id == "" && token == "" {
		srv := convotest.NewServer()
		fmt.Println("offline, on a convotest fake")
		if to == "" {
			to = example
		}
		c, err := srv.Client()
		return c, to, srv.Close, err
	}
	if to == "" {
		return nil, "", nil, errors.New("-to is required with TALQUI_* set: the contact receives a real message")
	}
	c, err = convo.NewClient(convo.WithTalqui(tenant, convo.PluginConnection{ID: id, Token: token}))
	return c, to, func() {}, err
}

// printSession prints the ids Talqui answered. A part it sent in an
// unexpected shape is nil; s.Raw holds the whole answer.
func printSession(s *convo.StartedSession) {
	if s.Session != nil {
		fmt.Println("session:", s.Session.SessionID, "on", s.Session.SessionChannel)
	}
	if s.Contact != nil {
		fmt.Println("contact:", s.Contact.ContactID, "external id", s.Contact.ContactExternalID)
	}
	if s.Message != nil {
		fmt.Printf("message: %s value %q\n", s.Message.MessageID, s.Message.MessageValue)
	}
}
