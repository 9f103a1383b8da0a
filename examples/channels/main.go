// Command channels starts a Talqui session on the channel named by
// -channel, one per builder:
//
//   - whatsapp-official: WhatsApp API Official opens a conversation only
//     with a model (template) Meta approved; the contact receives the
//     model's content, filled with Variables in order.
//   - whatsapp-business: a free-form first message, delivered as is.
//   - ifood: the contact is the iFood order code, not a phone. iFood is
//     operational only: write about the order, never marketing. An
//     installed iFood plugin may require more fields; put them in Extra.
//   - telegram: GenericChannel takes any installed channel by its URN. The
//     URN urn:talqui:telegram:0 is NOT documented by Talqui (its generic
//     channels guide leaves the URN as a placeholder): check it against the
//     channel installed in your tenant. The same goes for Instagram,
//     Messenger and custom channels.
//   - invalid: a start that breaks WhatsApp API Official's rules, refused
//     before anything is sent, problem by problem.
//
// It runs on a convotest fake unless TALQUI_TENANT, TALQUI_CONNECTION_ID
// and TALQUI_TOKEN are set; then -to must name a contact of yours (a
// phone, an order code or a Telegram user id), since it receives a real
// message.
//
//	go run ./examples/channels -channel whatsapp-official
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

// A channel builds the request of one builder for contact to; example is
// the contact used offline.
type channel struct {
	example string
	request func(to string) convo.SessionRequest
}

var channels = map[string]channel{
	"whatsapp-official": {"+55 27 99999-9999", func(to string) convo.SessionRequest {
		return convo.WhatsAppOfficial{
			Phone:     to, // sent as digits only: 5527999999999
			Name:      "Maria",
			ModelID:   "order_update",
			Variables: []string{"Maria", "#391"},
		}
	}},
	"whatsapp-business": {"+55 27 99999-9999", func(to string) convo.SessionRequest {
		return convo.WhatsAppBusiness{Phone: to, Name: "Maria", Text: "Hi Maria, your order #391 has shipped."}
	}},
	"ifood": {"ORDER-1234-5678", func(to string) convo.SessionRequest {
		return convo.IFood{OrderCode: to, Text: "Your order is ready for pickup."}
	}},
	"telegram": {"123456789", func(to string) convo.SessionRequest {
		return convo.GenericChannel{
			Channel:   "urn:talqui:telegram:0", // not documented by Talqui: check your tenant's
			ContactID: to,
			Name:      "Maria",
			Text:      "Hi Maria, your order #391 has shipped.",
		}
	}},
	"invalid": {"+55 9999", func(to string) convo.SessionRequest {
		// No approved model, and a phone of 6 digits.
		return convo.WhatsAppOfficial{Phone: to, Name: "Maria"}
	}},
}

func main() {
	name := flag.String("channel", "whatsapp-official", "one of "+strings.Join(slices.Sorted(maps.Keys(channels)), ", "))
	to := flag.String("to", "", "the contact (required with TALQUI_* set)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := run(ctx, os.Stdout, *name, *to)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "channels:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, name, to string) error {
	ch, ok := channels[name]
	if !ok {
		return fmt.Errorf("unknown -channel %q", name)
	}
	c, done, err := client(w, to)
	if err != nil {
		return err
	}
	defer done()
	if to == "" {
		to = ch.example
	}
	started, err := c.Sessions.Start(ctx, ch.request(to))
	var ve *convo.ValidationError
	if errors.As(err, &ve) {
		fmt.Fprintln(w, "refused before sending:")
		for _, p := range ve.Problems {
			fmt.Fprintf(w, "  %s: %s\n", p.Field, p.Reason)
		}
		return nil
	}
	if err != nil {
		return err
	}
	// A part Talqui sent in an unexpected shape is nil; Raw holds it all.
	if s := started.Session; s != nil {
		fmt.Fprintln(w, "session:", s.SessionID, "on", s.SessionChannel)
	}
	if ct := started.Contact; ct != nil {
		fmt.Fprintln(w, "contact:", ct.ContactID, "external id", ct.ContactExternalID)
	}
	if m := started.Message; m != nil {
		fmt.Fprintf(w, "message: %s value %q\n", m.MessageID, m.MessageValue)
	}
	return nil
}

// client is on the real Talqui API when the TALQUI_* variables are set,
// else on a convotest fake.
func client(w io.Writer, to string) (*convo.Client, func(), error) {
	tenant, id, token := os.Getenv("TALQUI_TENANT"), os.Getenv("TALQUI_CONNECTION_ID"), os.Getenv("TALQUI_TOKEN")
	if tenant == "" && id == "" && token == "" {
		srv := convotest.NewServer()
		fmt.Fprintln(w, "offline, on a convotest fake")
		c, err := srv.Client()
		return c, srv.Close, err
	}
	if to == "" {
		return nil, nil, errors.New("-to is required with TALQUI_* set: the contact receives a real message")
	}
	c, err := convo.NewClient(convo.WithTalqui(tenant, convo.PluginConnection{ID: id, Token: token}))
	return c, func() {}, err
}
