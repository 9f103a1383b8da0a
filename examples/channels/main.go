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
// It runs on a convotest fake started in-process, whatever the environment
// holds. With -live it calls the Talqui host that convo.WithEnv configures
// (TALQUI_TENANT, TALQUI_CONNECTION_ID, TALQUI_TOKEN, and TALQUI_URL when
// set: "convo fake" exports one); -to must then name a contact of yours (a
// phone, an order code or a Telegram user id), since it receives a real
// message. Its first line says which host it calls.
//
//	go run ./examples/channels -channel whatsapp-official [-live -to CONTACT]
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
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain is main with its arguments and outputs: -h prints the usage to
// stdout and gives 0 before anything is started or dialled.
func realMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("channels", flag.ContinueOnError)
	name := fs.String("channel", "whatsapp-official", "one of "+strings.Join(slices.Sorted(maps.Keys(channels)), ", "))
	to := fs.String("to", "", "the contact (required with -live)")
	live := fs.Bool("live", false, "call the Talqui host the environment configures (TALQUI_*: see convo.WithEnv)\ninstead of an in-process convotest fake")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: channels [-channel NAME] [-live -to CONTACT]\n\nStarts one Talqui session, offline on an in-process convotest fake unless -live.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		if err == nil {
			err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		fmt.Fprintln(stderr, "channels:", err)
		fs.SetOutput(stderr)
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, stdout, *name, *to, *live); err != nil {
		fmt.Fprintln(stderr, "channels:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, w io.Writer, name, to string, live bool) error {
	ch, ok := channels[name]
	if !ok {
		return fmt.Errorf("unknown -channel %q", name)
	}
	c, done, err := client(w, to, live)
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

// client is on an in-process convotest fake, or with live on the Talqui
// host the environment configures. It prints which host it calls.
func client(w io.Writer, to string, live bool) (*convo.Client, func(), error) {
	if !live {
		srv := convotest.NewServer()
		fmt.Fprintln(w, "channels: offline: calls only a convotest fake in this process, at "+srv.URL+" (-live calls the Talqui host the environment configures)")
		c, err := srv.Client()
		return c, srv.Close, err
	}
	if to == "" {
		return nil, nil, errors.New("-to is required with -live: the contact receives a real message")
	}
	c, err := convo.NewClient(convo.WithEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("-live: %w", err)
	}
	u := c.BaseURL(convo.ProviderTalqui)
	if u == "" {
		return nil, nil, errors.New("-live needs Talqui: set TALQUI_TENANT, TALQUI_CONNECTION_ID and TALQUI_TOKEN")
	}
	fmt.Fprintln(w, "channels: live: calls talqui "+u)
	return c, c.CloseIdleConnections, nil
}
