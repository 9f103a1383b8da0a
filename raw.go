package convo

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// RawRequest describes a call that convo does not wrap (TalkJS's file
// upload, reactions or batch endpoint, a Talqui call beyond the session
// start), for Client.Raw.
type RawRequest struct {
	// Provider is the API the call goes to: ProviderTalkJS,
	// ProviderTalqui or ProviderSelarti. The call goes to its base URL
	// with its credential, as every wrapped call does.
	Provider Provider
	// Method is GET, POST, PUT, PATCH or DELETE.
	Method string
	// Path is the path below the provider's API prefix, escaped as in a
	// URL: "/files" for TalkJS's POST /v1/{appId}/files,
	// "/conversations/"+url.PathEscape(id) for an id. The prefix is the
	// base URL's path, plus /v1/{appId} for TalkJS; Selarti's workflows
	// are "/wf/<name>". A Path that is a URL, holds a query or a fragment,
	// repeats the prefix, has an empty segment (a double slash), a "." or
	// ".." segment (escaped too, as %2e%2e), or a character a path may not
	// hold unescaped, is refused before anything is sent.
	Path string
	// Query is the query string, if any.
	Query url.Values
	// Body is the request body: nil for none; an io.Reader (a multipart
	// form, a file) sent as is, with ContentType; anything else encoded
	// as JSON (a json.RawMessage is sent as it is). A GET takes no body.
	Body any
	// ContentType is the Content-Type of an io.Reader Body, such as a
	// multipart.Writer's FormDataContentType(); a JSON body is sent as
	// application/json and takes none.
	ContentType string
	// Repeatable says that the call may be sent again after it may have
	// reached the server (a reset, a 5xx): set it only when a second
	// delivery cannot do harm. A GET is repeatable without it; no other
	// method is. An io.Reader Body is never sent again once it was sent
	// unless the call is Repeatable, and then only when the Reader can be
	// rewound: an io.Seeker that is also an io.ReaderAt (a bytes.Reader, a
	// strings.Reader, an os.File), each attempt reading it from where it
	// was when the call began. A Reader that cannot be rewound is sent
	// once, whatever happens (not even after a dial failure or a 429).
	Repeatable bool
	// Connection names the Talqui plugin connection whose token the call
	// sends; it may be empty when exactly one is configured. Only Talqui
	// calls take it.
	Connection string
}

// Raw sends a call that convo does not wrap through the pipeline every
// wrapped call goes through: the provider's base URL and credential (the
// secret key or app token, the plugin connection's token, Selarti's
// exchanged token, renewed once when refused), User-Agent and the
// provider's headers, retries by the same rules (a dial failure or a 429
// is retried; a reset, a timeout or a 5xx only when the call is
// repeatable), no redirect followed, the response size cap, redaction,
// the Observer (Operation "<provider>.raw.<method>", PathTemplate the
// prefix and "/{rawPath}", never the path itself) and errors that match
// ErrOutcomeUnknown once the call may have reached the server. A 2xx
// body is decoded as JSON into out (a *json.RawMessage keeps it as is);
// a nil out discards it.
//
// Every problem of r (an unknown provider, a method, a path outside the
// provider's API prefix or an absolute URL, a body the method does not
// take) is reported at once in a *ValidationError, and nothing is sent.
func (c *Client) Raw(ctx context.Context, r RawRequest, out any) error {
	c = c.orNone()
	req := &request{
		op:     "raw",
		method: r.Method,
		path:   "/{rawPath}",
		query:  r.Query,
		out:    out,
		// A GET is repeatable by its method (see request.repeatable).
		idempotent: r.Repeatable,
	}
	var ps problems
	req.api = c.rawEndpoint(&ps, r)
	req.op = string(req.api.provider) + ".raw." + strings.ToLower(r.Method)
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		ps.add("Method", "must be GET, POST, PUT, PATCH or DELETE")
		req.op = string(req.api.provider) + ".raw.other"
	}
	if req.api.err == nil {
		req.rawPath = checkRawPath(&ps, req.api, r.Path)
	}
	rawBody(&ps, req, r)
	if len(ps) > 0 {
		req.invalid = ps.err()
	}
	return c.do(ctx, req)
}

// rawEndpoint is the endpoint of r's provider (and Talqui connection);
// one that answers ErrNotConfigured when the provider was left out.
func (c *Client) rawEndpoint(ps *problems, r RawRequest) *endpoint {
	if r.Connection != "" && r.Provider != ProviderTalqui {
		ps.add("Connection", "only a Talqui call takes a plugin connection")
	}
	switch r.Provider {
	case ProviderTalkJS:
		return c.talkjs
	case ProviderSelarti:
		if c.selarti == nil {
			return selartiOff
		}
		return c.selarti.api
	case ProviderTalqui:
		t := c.talqui
		if t == nil {
			return talquiOff
		}
		i := t.connection(r.Connection)
		switch {
		case i >= 0:
			return t.apis[i]
		case r.Connection == "":
			ps.addf("Connection", "required: %d plugin connections are configured", len(t.conns))
		default:
			// A token pasted in place of an id must not reach the error text.
			ps.addf("Connection", "unknown plugin connection %q", truncate(string(c.secrets.redact([]byte(r.Connection))), 100))
		}
		return t.apis[0]
	}
	ps.add("Provider", `must be ProviderTalkJS, ProviderTalqui or ProviderSelarti`)
	return &endpoint{provider: "unknown", err: ps.err()}
}

// checkRawPath checks a raw call's path against ep's API prefix and gives
// it, or "" with the problems noted. A problem never quotes the path,
// which may hold what was pasted in it by mistake.
func checkRawPath(ps *problems, ep *endpoint, p string) string {
	const field = "Path"
	n := len(*ps)
	switch {
	case strings.TrimSpace(p) == "":
		ps.add(field, "is required: the path below the provider's API prefix, such as /files")
	case strings.Contains(p, "://") || strings.HasPrefix(p, "//"):
		ps.add(field, "must be a path below the provider's API prefix, not a URL")
	case p[0] != '/':
		ps.add(field, `must begin with "/"`)
	case strings.ContainsAny(p, "?#"):
		ps.add(field, "must not hold a query or a fragment: put the query in Query")
	}
	if len(*ps) > n {
		return ""
	}
	for i := 0; i < len(p); i++ {
		if !isPathByte(p[i]) {
			ps.add(field, "holds a character a path may not hold unescaped: escape each segment (url.PathEscape)")
			return ""
		}
	}
	if head := prefixHead(ep); head != "" && (p == strings.TrimSuffix(head, "/") || strings.HasPrefix(p, head)) {
		ps.addf(field, "is below the API prefix %s already: leave the prefix out", ep.template)
		return ""
	}
	for _, seg := range strings.Split(p[1:], "/") {
		v, err := url.PathUnescape(seg)
		switch {
		case seg == "":
			ps.add(field, "must not hold an empty segment (a double or trailing slash)")
		case err != nil:
			ps.add(field, "holds a malformed escape")
		case escapes(v):
			ps.add(field, `must not hold a "." or ".." segment, escaped or not: it would leave the API prefix`)
		case strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			ps.add(field, "must not hold an escaped control character")
		default:
			continue
		}
		return ""
	}
	return p
}

// prefixHead is the part of ep's API prefix a path would repeat: the
// prefix up to its first placeholder ("/v1/" for TalkJS), with a
// trailing slash; "" when the prefix is empty.
func prefixHead(ep *endpoint) string {
	head := ep.template
	if i := strings.IndexByte(head, '{'); i >= 0 {
		head = head[:i]
	}
	head = strings.TrimSuffix(head, "/")
	if head == "" {
		return ""
	}
	return head + "/"
}

// escapes reports a decoded segment that a server may take for "." or
// "..": itself, or a part of it between decoded slashes or backslashes.
func escapes(v string) bool {
	for _, part := range strings.FieldsFunc("/"+v+"/", func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == "." || part == ".." {
			return true
		}
	}
	return v == "." || v == ".."
}

// isPathByte reports a byte a path may hold unescaped (RFC 3986 pchar,
// '%' of an escape, and '/').
func isPathByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@%/", b) >= 0
}

// rawBody checks r's body and sets it on req: a stream with its
// Content-Type, or JSON.
func rawBody(ps *problems, req *request, r RawRequest) {
	if r.Body == nil {
		if r.ContentType != "" {
			ps.add("ContentType", "takes a Body")
		}
		return
	}
	if r.Method == http.MethodGet {
		ps.add("Body", "a GET takes no body")
		return
	}
	switch b := r.Body.(type) {
	case io.Reader:
		mt, _, err := mime.ParseMediaType(r.ContentType)
		switch {
		case r.ContentType == "":
			ps.add("ContentType", "is required with an io.Reader Body (say, a multipart.Writer's FormDataContentType())")
		case err != nil || strings.ContainsAny(r.ContentType, "\r\n") || mt == "":
			ps.add("ContentType", "must be a media type, such as multipart/form-data; boundary=…")
		}
		req.stream, req.contentType = b, r.ContentType
	case []byte:
		ps.add("Body", "a []byte would be sent as a base64 JSON string: give a json.RawMessage for JSON, or a bytes.Reader with ContentType")
	default:
		if r.ContentType != "" {
			ps.add("ContentType", "takes an io.Reader Body: any other Body is sent as application/json")
		}
		enc, err := json.Marshal(b)
		if err != nil {
			ps.addf("Body", "must encode as JSON: %v", err)
			return
		}
		req.body = encodedJSON(enc)
	}
}

// encodedJSON is a body already encoded.
type encodedJSON []byte

func (b encodedJSON) encodeBody() ([]byte, error) { return b, nil }

// streamed is the body of a stream: the first attempt's reader, its
// length (0 when unknown: sent chunked), and for a stream that rewinds, a
// fresh reader for each later attempt (nil otherwise).
type streamed struct {
	first   io.ReadCloser
	length  int64
	getBody func() (io.ReadCloser, error)
}

// streamBody reads a stream for the pipeline. A stream that rewinds (see
// rewinder) gives each attempt its own section reader from where the
// stream was when the call began to its end, sent with its
// Content-Length: an attempt the transport is still writing (net/http may
// write a body after the answer came) cannot mix with the next. Any other
// reader is given once (the pipeline never sends it twice), with its
// length when it tells it. The reader is wrapped, so that net/http does
// not take a bytes.Buffer for a body it may read again.
func streamBody(rd io.Reader) (*streamed, error) {
	rw, ok := rd.(rewinder)
	if !ok {
		sb := &streamed{first: io.NopCloser(onlyReader{rd})}
		if l, ok := rd.(interface{ Len() int }); ok {
			sb.length = int64(l.Len())
		}
		return sb, nil
	}
	start, err := rw.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	end, err := rw.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if _, err := rw.Seek(start, io.SeekStart); err != nil {
		return nil, err
	}
	sb := &streamed{length: end - start, getBody: func() (io.ReadCloser, error) {
		return io.NopCloser(onlyReader{io.NewSectionReader(rw, start, end-start)}), nil
	}}
	sb.first, _ = sb.getBody()
	return sb, nil
}

// rewinder is a stream that can be sent again: a bytes.Reader, a
// strings.Reader, an os.File.
type rewinder interface {
	io.ReaderAt
	io.Seeker
}

// onlyReader hides every method of a reader but Read.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
