package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

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
// off, the SDK hands it exactly one request per call.
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
	return nil, errDryRun
}

// apiCall is one SDK call made by a command: the client options (with
// credentials), the secrets they hold (never printed), and the call,
// which returns what to print on success.
type apiCall struct {
	name    string // "session start", for messages
	dryRun  bool
	opts    []convo.Option
	secrets []string
	do      func(*convo.Client) ([]byte, error)
}

// runCall makes the client, runs the call (or captures it, with -dry-run)
// and prints the result or the error.
func runCall(c cmdIO, call apiCall) int {
	var capture *captureTransport
	opts := call.opts
	if call.dryRun {
		capture = &captureTransport{}
		opts = append(opts[:len(opts):len(opts)],
			convo.WithHTTPClient(&http.Client{Transport: capture}),
			convo.WithRetry(convo.RetryPolicy{MaxRetries: 0}))
	}
	client, err := convo.NewClient(opts...)
	if err != nil {
		c.errorf(call.name, "%s", redact(err.Error(), call.secrets))
		return exitUsage
	}
	defer client.CloseIdleConnections()
	out, err := call.do(client)
	if call.dryRun && (err == nil || errors.Is(err, errDryRun)) && capture != nil && len(capture.got) > 0 {
		for _, r := range capture.got {
			fmt.Fprint(c.stdout, formatRequest(r, call.secrets))
		}
		c.errorf(call.name, "dry run: nothing was sent")
		return exitOK
	}
	if err != nil {
		return reportCallError(c, call.name, redactErr{err, call.secrets})
	}
	fmt.Fprintf(c.stdout, "%s\n", redact(string(out), call.secrets))
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

// redact replaces every secret in s. The SDK already keeps secrets out of
// its errors; this is the command's own guard for what it prints.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// redactErr is err with its text redacted; errors.Is and errors.As still
// see the original.
type redactErr struct {
	err     error
	secrets []string
}

func (e redactErr) Error() string { return redact(e.err.Error(), e.secrets) }
func (e redactErr) Unwrap() error { return e.err }
