package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/convokit/convo"
)

// errDryRun is what the capturing transport answers instead of sending.
var errDryRun = errors.New("dry run: request captured, not sent")

// capturedRequest is a request as the SDK handed it to the transport.
type capturedRequest struct {
	method string
	url    string
	header http.Header
	body   []byte
}

// captureTransport records each request and sends nothing. With retries
// off, the SDK hands it exactly one request per call. A Selarti token
// exchange (/wf/auth) is answered with a stand-in token, so that the dry
// run goes on to show the send it serves.
type captureTransport struct {
	got []capturedRequest
}

func (t *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	t.got = append(t.got, capturedRequest{method: r.Method, url: r.URL.String(), header: r.Header.Clone(), body: body})
	if strings.HasSuffix(r.URL.Path, "/wf/auth") {
		return &http.Response{
			StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:  http.Header{"Content-Type": {"application/json"}},
			Body:    io.NopCloser(strings.NewReader(`{"status":"success","response":{"token":"dry-run-token"}}`)),
			Request: r,
		}, nil
	}
	return nil, errDryRun
}

// Defaults of the flags every API command has.
const (
	defaultTimeout = 30 * time.Second
)

// cliRetry is the retry policy of the commands: a person waits at the
// terminal, so a failure that repeating may mend (a refused connection, a
// 503) is tried twice more within a fraction of a second, not four times
// over several seconds; -timeout bounds the whole call.
var cliRetry = convo.RetryPolicy{MaxRetries: 2, MinWait: 100 * time.Millisecond, MaxWait: time.Second}

// apiCall is one SDK call made by a command: the provider it calls, the
// stand-ins for its credentials in a dry run, the flags behind the SDK's
// field names, and the call, which returns what to print on success.
type apiCall struct {
	name     string // "session start", for messages
	provider convo.Provider
	needs    string // the variables the provider needs, for the message when they are unset
	dryRun   bool
	timeout  time.Duration
	// standIn configures the provider with "$NAME" in place of each
	// credential, for a dry run without them; WithEnv, after it, puts the
	// environment's where it has them.
	standIn convo.Option
	flags   map[string]string // SDK problem field → flag name (see flagOf)
	do      func(context.Context, *convo.Client) ([]byte, error)
}

// secretVars are the variables whose values are never printed.
var secretVars = []string{"TALQUI_TOKEN", "TALKJS_SECRET_KEY", "SELARTI_API_KEY"}

// runCall makes the client from the environment (convo.WithEnv), says on
// stderr which host it calls, runs the call (or captures it, with
// -dry-run) and prints the result or the error.
func runCall(c cmdIO, call apiCall) int {
	if call.timeout <= 0 {
		c.errorf(call.name, "-timeout must be more than zero")
		return exitUsage
	}
	var secrets []string
	for _, k := range secretVars {
		secrets = append(secrets, c.env(k))
	}
	var capture *captureTransport
	var opts []convo.Option
	if call.dryRun {
		capture = &captureTransport{}
		opts = append(opts, call.standIn, convo.WithEnv(),
			convo.WithHTTPClient(&http.Client{Transport: capture}),
			convo.WithRetry(convo.RetryPolicy{MaxRetries: 0}))
	} else {
		opts = append(opts, convo.WithEnv(), convo.WithRetry(cliRetry))
	}
	client, err := convo.NewClient(opts...)
	var verr *convo.ValidationError
	switch {
	case errors.As(err, &verr) && len(verr.Problems) == 1 && verr.Problems[0].Field == "opts":
		c.errorf(call.name, "set %s in the environment (-dry-run needs none)", call.needs)
		return exitUsage
	case errors.As(err, &verr):
		c.errorf(call.name, "the environment is not usable:")
		for _, p := range verr.Problems {
			fmt.Fprintf(c.stderr, "  %s: %s\n", p.Field, redact(p.Reason, secrets))
		}
		return exitUsage
	case err != nil:
		c.errorf(call.name, "%s", redact(sdkMessage(err), secrets))
		return exitUsage
	}
	defer client.CloseIdleConnections()
	base := client.BaseURL(call.provider)
	if base == "" {
		c.errorf(call.name, "set %s in the environment", call.needs)
		return exitUsage
	}
	if call.dryRun {
		c.errorf(call.name, "dry run: calls no host (would call %s %s)", call.provider, base)
	} else {
		c.errorf(call.name, "calls %s %s", call.provider, base)
	}
	ctx, cancel := context.WithTimeout(c.ctx, call.timeout)
	defer cancel()
	out, err := call.do(ctx, client)
	if call.dryRun && (err == nil || errors.Is(err, errDryRun)) && capture != nil && len(capture.got) > 0 {
		for _, r := range capture.got {
			fmt.Fprint(c.stdout, formatRequest(r, secrets))
		}
		c.errorf(call.name, "dry run: nothing was sent")
		return exitOK
	}
	if err != nil {
		return reportCallError(c, call.name, redactErr{err, secrets}, call.flags)
	}
	fmt.Fprintf(c.stdout, "%s\n", redact(string(out), secrets))
	return exitOK
}

// formatRequest writes r as an HTTP message: the request line, the
// headers sorted (Authorization keeps its scheme only), a blank line and
// the body exactly as the SDK encoded it.
func formatRequest(r capturedRequest, secrets []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.method, r.url)
	keys := make([]string, 0, len(r.header))
	for k := range r.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.header[k] {
			if strings.EqualFold(k, "Authorization") {
				scheme, _, _ := strings.Cut(v, " ")
				v = scheme + " [redacted]"
			}
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	b.Write(r.body)
	if !bytes.HasSuffix(r.body, []byte("\n")) {
		b.WriteString("\n")
	}
	return redact(b.String(), secrets)
}

// redact replaces every secret in s, also in the forms a server echoes it
// in (escaped in a JSON string by Go, with "\/" by PHP, escaped in a URL).
// A secret shorter than 8 bytes (a test key such as "k") is replaced only
// where it stands as a whole token. The SDK already keeps secrets out of
// its errors; this is the command's own guard for what it prints.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		for _, f := range secretForms(sec) {
			if len(sec) >= 8 {
				s = strings.ReplaceAll(s, f, "[redacted]")
				continue
			}
			s = regexp.MustCompile(`(^|[^\w])`+regexp.QuoteMeta(f)+`($|[^\w])`).ReplaceAllString(s, "${1}[redacted]${2}")
		}
	}
	return s
}

// secretForms are sec and the forms a server may echo it in, longest
// first, none empty.
func secretForms(sec string) []string {
	if sec == "" {
		return nil
	}
	var forms []string
	add := func(f string) {
		if f != "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(sec)
	html, _ := json.Marshal(sec)
	for _, j := range []string{strings.TrimSpace(plain.String()), string(html)} {
		j = j[1 : len(j)-1]
		add(j)
		add(strings.ReplaceAll(j, "/", `\/`))
	}
	add(sec)
	add(url.QueryEscape(sec))
	add(url.PathEscape(sec))
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return forms
}

// redactErr is err with its text redacted; errors.Is and errors.As still
// see the original.
type redactErr struct {
	err     error
	secrets []string
}

func (e redactErr) Error() string { return redact(e.err.Error(), e.secrets) }
func (e redactErr) Unwrap() error { return e.err }
