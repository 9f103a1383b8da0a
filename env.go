package convo

import (
	"os"
	"strings"
)

// The environment variables WithEnv reads, per provider: the credentials
// first, then the base URL.
var envVars = []struct {
	provider Provider
	creds    []string
	url      string
}{
	{ProviderTalqui, []string{"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN"}, "TALQUI_URL"},
	{ProviderTalkJS, []string{"TALKJS_APP_ID", "TALKJS_SECRET_KEY"}, "TALKJS_URL"},
	{ProviderSelarti, []string{"SELARTI_API_KEY"}, "SELARTI_URL"},
}

// WithEnv configures the client from the environment, the way the
// examples and the convo command do. It reads, at NewClient:
//
//	TALQUI_TENANT, TALQUI_CONNECTION_ID, TALQUI_TOKEN   as WithTalqui(tenant, PluginConnection{ID, Token})
//	TALQUI_URL                                          as WithTalquiURL
//	TALKJS_APP_ID, TALKJS_SECRET_KEY                    as WithTalkJS(appID, secretKey)
//	TALKJS_URL                                          as WithTalkJSURL
//	SELARTI_API_KEY                                     as WithSelarti
//	SELARTI_URL                                         as WithSelartiURL
//
// A variable set to "" counts as unset. A provider is configured only when
// all of its credentials are set; some of them without the others make
// NewClient fail, naming the ones missing. A *_URL applies whether or not
// its provider's credentials are in the environment, so that a URL meant
// for a fake (convo fake prints one) is never ignored in favour of the
// real host, also for credentials given by an option. A value that an
// option would refuse (a URL neither https nor http to a loopback host, a
// credential with whitespace) makes NewClient fail with a problem naming
// the variable, never its value.
//
// WithEnv acts as those options given at its place: an option after it
// overrides what it read, and a variable that is set overrides an option
// before it. So NewClient(WithEnv(), WithTalkJSURL(u)) calls u whatever
// TALKJS_URL says. With none of the credentials set, NewClient(WithEnv())
// fails with a *ValidationError saying which variables to set.
// SELARTI_TASK_ID, which the examples and convo also read, is not a client
// setting: it names the task of each SelartiService.Send.
func WithEnv() Option {
	return func(s *settings) error {
		s.fromEnv = true
		var ps problems
		var opts []Option
		for _, p := range envVars {
			vals := make([]string, len(p.creds))
			var set, missing []string
			for i, name := range p.creds {
				if vals[i] = os.Getenv(name); vals[i] == "" {
					missing = append(missing, name)
				} else {
					set = append(set, name)
				}
			}
			if len(set) > 0 {
				s.give(p.provider)
			}
			switch {
			case len(set) > 0 && len(missing) > 0:
				ps.add(strings.Join(missing, ", "), "must be set with "+strings.Join(set, ", ")+" to configure "+string(p.provider))
			case len(set) > 0:
				for i, name := range p.creds {
					ps.credential(name, vals[i])
				}
				opts = append(opts, envProviderOption(p.provider, vals))
			}
			if u := os.Getenv(p.url); u != "" {
				if _, err := checkBaseURL(p.provider, p.url, u); err != nil {
					ps.merge(err)
				} else {
					opts = append(opts, envURLOption(p.provider, u))
				}
			}
		}
		if err := ps.err(); err != nil {
			return err
		}
		for _, o := range opts {
			if err := o(s); err != nil {
				return err
			}
		}
		return nil
	}
}

// envProviderOption is the option configuring p with the credentials read
// by WithEnv (in the order of envVars), already checked.
func envProviderOption(p Provider, v []string) Option {
	switch p {
	case ProviderTalqui:
		return WithTalqui(v[0], PluginConnection{ID: v[1], Token: v[2]})
	case ProviderTalkJS:
		return WithTalkJS(v[0], v[1])
	default:
		return WithSelarti(v[0])
	}
}

// envURLOption is the option setting p's base URL, already checked.
func envURLOption(p Provider, u string) Option {
	switch p {
	case ProviderTalqui:
		return WithTalquiURL(u)
	case ProviderTalkJS:
		return WithTalkJSURL(u)
	default:
		return WithSelartiURL(u)
	}
}

// envHint is what NewClient adds to "configure at least one provider"
// after WithEnv.
const envHint = "; WithEnv found none: set TALQUI_TENANT, TALQUI_CONNECTION_ID and TALQUI_TOKEN, " +
	"or TALKJS_APP_ID and TALKJS_SECRET_KEY, or SELARTI_API_KEY"

// BaseURL is the base URL the client sends p's calls to, as configured by
// WithTalquiURL, WithTalkJSURL, WithSelartiURL or WithEnv (or the
// default), and "" when p is not configured. Programs print it to say
// which hosts they call.
func (c *Client) BaseURL(p Provider) string {
	return c.orNone().baseURLs[p]
}
