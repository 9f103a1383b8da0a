package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/convokit/convo"
)

// sessionFlags are the flags of "convo session start": one per field of
// the channel builders.
type sessionFlags struct {
	channel, connection, phone, name, model, label string
	text, order, contact                           string
	vars                                           stringList
	extra                                          keyValues
	dryRun                                         bool
	timeout                                        time.Duration
}

// channelFlags lists, per -channel, the builder flags it takes; a channel
// URN takes those of "generic" (GenericChannel).
var channelFlags = map[string][]string{
	"whatsapp-official": {"phone", "name", "model", "var", "label"},
	"whatsapp-business": {"phone", "name", "text"},
	"ifood":             {"order", "text", "extra"},
	"generic":           {"contact", "name", "text", "extra"},
}

// namedURNs are the -channel names of GenericChannel URNs, as
// examples/channels names them. urn:talqui:telegram:0 is not documented by
// Talqui: check it against your tenant's installed channel.
var namedURNs = map[string]string{"telegram": "urn:talqui:telegram:0"}

// commonFlags apply to every channel.
var commonFlags = []string{"channel", "connection", "dry-run", "timeout"}

// sessionFlagNames are the flags behind the SDK's problem fields of a
// session start.
var sessionFlagNames = map[string]string{
	"Phone": "phone", "Name": "name", "ModelID": "model", "Variables": "var", "Label": "label",
	"Text": "text", "OrderCode": "order", "Channel": "channel", "ContactID": "contact",
	"Extra": "extra", "ConnectionID": "connection",
}

func sessionFlagSet(f *sessionFlags) *flag.FlagSet {
	fs := newFlagSet("session start", "session start -channel whatsapp-official|whatsapp-business|ifood|telegram|URN [flags]\n\n"+
		"Starts a Talqui session and prints Talqui's answer as JSON. Talqui is configured by\n"+
		"TALQUI_TENANT, TALQUI_CONNECTION_ID and TALQUI_TOKEN, and TALQUI_URL when set (convo.WithEnv);\n"+
		"-dry-run needs none of them. The first line on stderr names the host called.\n"+
		"Per channel: whatsapp-official -phone -model [-name -var... -label];\n"+
		"whatsapp-business -phone -text [-name]; ifood -order -text [-extra k=v...];\n"+
		"telegram (urn:talqui:telegram:0, not documented by Talqui) or any channel URN\n"+
		"(GenericChannel) -contact -text [-name -extra k=v...].")
	f.extra = keyValues{}
	fs.StringVar(&f.channel, "channel", "", "`channel`: whatsapp-official, whatsapp-business, ifood, telegram, or a channel URN\nsuch as urn:talqui:instagram:0 (required)")
	fs.StringVar(&f.connection, "connection", "", "plugin connection `id` (default TALQUI_CONNECTION_ID)")
	fs.StringVar(&f.phone, "phone", "", "contact's `phone`, international format (WhatsApp)")
	fs.StringVar(&f.name, "name", "", "contact's full `name`")
	fs.StringVar(&f.model, "model", "", "approved model `id` (whatsapp-official)")
	fs.Var(&f.vars, "var", "model `variable`, repeatable, in order (whatsapp-official)")
	fs.StringVar(&f.label, "label", "", "internal `label` of the operation (whatsapp-official; default the model)")
	fs.StringVar(&f.text, "text", "", "first message `text`")
	fs.StringVar(&f.order, "order", "", "iFood order `code` (ifood)")
	fs.StringVar(&f.contact, "contact", "", "contact's `id` on the channel (telegram, URN)")
	fs.Var(f.extra, "extra", "plugin field `key=value`, sent as a string, repeatable (ifood, telegram, URN)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the exact request and every problem; send nothing (needs no credentials)")
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout, "bound the whole call, retries included")
	return fs
}

func runSessionStart(c cmdIO, args []string) int {
	const name = "session start"
	var f sessionFlags
	fs := sessionFlagSet(&f)
	if code := parseFlags(c, fs, args); code >= 0 {
		return code
	}
	req, err := f.request(fs)
	if err != nil {
		c.errorf(name, "%v", err)
		return exitUsage
	}
	return runCall(c, apiCall{name: name, provider: convo.ProviderTalqui,
		needs: "TALQUI_TENANT, TALQUI_CONNECTION_ID and TALQUI_TOKEN", dryRun: f.dryRun, timeout: f.timeout,
		standIn: convo.WithTalqui("$TALQUI_TENANT", convo.PluginConnection{ID: "$TALQUI_CONNECTION_ID", Token: "$TALQUI_TOKEN"}),
		flags:   sessionFlagNames,
		do: func(ctx context.Context, cl *convo.Client) ([]byte, error) {
			started, err := cl.Sessions.Start(ctx, req)
			if err != nil {
				return nil, err
			}
			return started.Raw, nil
		}})
}

// request checks that the flags set fit -channel and builds its builder.
func (f *sessionFlags) request(fs *flag.FlagSet) (convo.SessionRequest, error) {
	kind := f.channel
	if _, named := namedURNs[kind]; named || strings.HasPrefix(kind, "urn:") {
		kind = "generic"
	}
	allowed, ok := channelFlags[kind]
	if !ok || f.channel == "generic" {
		return nil, fmt.Errorf("-channel must be whatsapp-official, whatsapp-business, ifood, telegram or a channel URN (urn:talqui:…); got %q", f.channel)
	}
	var stray []string
	fs.Visit(func(fl *flag.Flag) {
		if !slices.Contains(allowed, fl.Name) && !slices.Contains(commonFlags, fl.Name) {
			stray = append(stray, "-"+fl.Name)
		}
	})
	if len(stray) > 0 {
		sort.Strings(stray)
		return nil, fmt.Errorf("%s not used by -channel %s (it takes -%s)", strings.Join(stray, ", "), f.channel, strings.Join(allowed, ", -"))
	}
	return f.builder(kind), nil
}

func (f *sessionFlags) builder(kind string) convo.SessionRequest {
	var extra map[string]any
	if len(f.extra) > 0 {
		extra = make(map[string]any, len(f.extra))
		for k, v := range f.extra {
			extra[k] = v
		}
	}
	switch kind {
	case "whatsapp-official":
		return convo.WhatsAppOfficial{ConnectionID: f.connection, Phone: f.phone, Name: f.name,
			ModelID: f.model, Variables: f.vars, Label: f.label}
	case "whatsapp-business":
		return convo.WhatsAppBusiness{ConnectionID: f.connection, Phone: f.phone, Name: f.name, Text: f.text}
	case "ifood":
		return convo.IFood{ConnectionID: f.connection, OrderCode: f.order, Text: f.text, Extra: extra}
	default:
		urn := f.channel
		if u, named := namedURNs[urn]; named {
			urn = u
		}
		return convo.GenericChannel{Channel: urn, ConnectionID: f.connection, ContactID: f.contact,
			Name: f.name, Text: f.text, Extra: extra}
	}
}
