// Command whatsapp-business starts a Talqui session on WhatsApp Business
// (the "internal" connection) with a free-form first message, delivered
// as is. No approved model is needed.
//
// It runs on a convotest fake unless TALQUI_TENANT, TALQUI_CONNECTION_ID
// and TALQUI_TOKEN are set; then -to must name a phone you own.
//
//	go run ./examples/channels/whatsapp-business
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
	to := flag.String("to", "", "the contact's phone, international format (required with TALQUI_* set)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := run(ctx, *to)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "whatsapp-business:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, to string) error {
	c, to, done, err := talqui(to, "+55 27 99999-9999")
	if err != nil {
		return err
	}
	defer done()
	started, err := c.Sessions.Start(ctx, convo.WhatsAppBusiness{
		Phone: to, // sent as digits only: 5527999999999
		Name:  "Maria",
		Text:  "Hi Maria, your order #391 has shipped.",
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
