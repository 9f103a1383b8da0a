package main

import (
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/convokit/convo"
)

// sessionFlags are the flags of "convo session start": one per field of
// the channel builders.
type sessionFlags struct {
	channel, connection, phone, name, model, label string
	text, order, urn, contact                      string
	vars                                           stringList
	extra                                          keyValues
	dryRun                                         bool
}

// channelFlags lists, per -channel, the builder flags it takes.
var channelFlags = map[string][]string{
	"whatsapp-official": {"phone", "name", "model", "var", "label"},
	"whatsapp-business": {"phone", "name", "text"},
	"ifood":             {"order", "text", "extra"},
	"generic":           {"urn", "contact", "name", "text", "extra"},
}

// commonFlags apply to every channel.
var commonFlags = []string{"channel", "connection", "dry-run"}

func sessionFlagSet(f *sessionFlags) *flag.FlagSet {
	fs := newFlagSet("session start", "session start -channel whatsapp-official|whatsapp-business|ifood|generic [flags]\n\n"+
		"Starts a Talqui session and prints Talqui's answer as JSON. Credentials come from\n"+
		"TALQUI_TENANT, TALQUI_CONNECTION_ID and TALQUI_TOKEN; TALQUI_URL overrides the base URL.\n"+
		"Per channel: whatsapp-official -phone -model [-name -var... -label];\n"+
		"whatsapp-business -phone -text [-name]; ifood -order -text [-extra k=v...];\n"+
		"generic -urn -contact -text [-name -extra k=v...].")
	f.extra = keyValues{}
	fs.StringVar(&f.channel, "channel", "", "`channel`: whatsapp-official, whatsapp-business, ifood or generic (required)")
	fs.StringVar(&f.connection, "connection", "", "plugin connection `id` (default TALQUI_CONNECTION_ID)")
	fs.StringVar(&f.phone, "phone", "", "contact's `phone`, international format (WhatsApp)")
	fs.StringVar(&f.name, "name", "", "contact's full `name`")
	fs.StringVar(&f.model, "model", "", "approved model `id` (whatsapp-official)")
	fs.Var(&f.vars, "var", "model `variable`, repeatable, in order (whatsapp-official)")
	fs.StringVar(&f.label, "label", "", "internal `label` of the operation (whatsapp-official; default the model)")
	fs.StringVar(&f.text, "text", "", "first message `text`")
	fs.StringVar(&f.order, "order", "", "iFood order `code` (ifood)")
	fs.StringVar(&f.urn, "urn", "", "channel `URN`, such as urn:talqui:telegram:0 (generic)")
	fs.StringVar(&f.contact, "contact", "", "contact's `id` on the channel (generic)")
	fs.Var(f.extra, "extra", "plugin field `key=value`, sent as a string, repeatable (ifood, generic)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the exact request and every problem; send nothing")
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
	opts, secrets, err := talquiOptions(c.env)
	if err != nil {
		c.errorf(name, "%v", err)
		return exitUsage
	}
	return runCall(c, apiCall{name: name, dryRun: f.dryRun, opts: opts, secrets: secrets,
		do: func(cl *convo.Client) ([]byte, error) {
			started, err := cl.Sessions.Start(c.ctx, req)
			if err != nil {
				return nil, err
			}
			return started.Raw, nil
		}})
}

// request checks that the flags set fit -channel and builds its builder.
func (f *sessionFlags) request(fs *flag.FlagSet) (convo.SessionRequest, error) {
	allowed, ok := channelFlags[f.channel]
	if !ok {
		return nil, fmt.Errorf("-channel must be one of whatsapp-official, whatsapp-business, ifood, generic; got %q", f.channel)
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
	return f.builder(), nil
}

func (f *sessionFlags) builder() convo.SessionRequest {
	var extra map[string]any
	if len(f.extra) > 0 {
		extra = make(map[string]any, len(f.extra))
		for k, v := range f.extra {
			extra[k] = v
		}
	}
	switch f.channel {
	case "whatsapp-official":
		return convo.WhatsAppOfficial{ConnectionID: f.connection, Phone: f.phone, Name: f.name,
			ModelID: f.model, Variables: f.vars, Label: f.label}
	case "whatsapp-business":
		return convo.WhatsAppBusiness{ConnectionID: f.connection, Phone: f.phone, Name: f.name, Text: f.text}
	case "ifood":
		return convo.IFood{ConnectionID: f.connection, OrderCode: f.order, Text: f.text, Extra: extra}
	default:
		return convo.GenericChannel{Channel: f.urn, ConnectionID: f.connection, ContactID: f.contact,
			Name: f.name, Text: f.text, Extra: extra}
	}
}

// talquiOptions configures Talqui from the environment.
func talquiOptions(env func(string) string) ([]convo.Option, []string, error) {
	v, err := requireEnv(env, "TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN")
	if err != nil {
		return nil, nil, err
	}
	opts := []convo.Option{convo.WithTalqui(v[0], convo.PluginConnection{ID: v[1], Token: v[2]})}
	if u := env("TALQUI_URL"); u != "" {
		opts = append(opts, convo.WithTalquiURL(u))
	}
	return opts, []string{v[2]}, nil
}
