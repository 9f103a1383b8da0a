package convo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seq answers the requests in turn with rs, the last one for the rest.
func seq(rs ...httpmock.Responder) httpmock.Responder {
	var mu sync.Mutex
	n := 0
	return func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		i := min(n, len(rs)-1)
		n++
		mu.Unlock()
		return rs[i](r)
	}
}

var dialRefused = httpmock.NewErrorResponder(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})

func TestRawRefusesPathsOutsideThePrefix(t *testing.T) {
	env := NewTestEnv(t, WithSelarti(testSelartiKey))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, `{}`))
	for _, tc := range []struct {
		provider Provider
		path     string
		reason   string
	}{
		{ProviderTalkJS, "https://evil.example/v1/app1/users", "not a URL"},
		{ProviderTalkJS, "//evil.example/users", "not a URL"},
		{ProviderTalkJS, "users", `must begin with "/"`},
		{ProviderTalkJS, "", "is required"},
		{ProviderTalkJS, "/v1/" + testAppID + "/users", "leave the prefix out"},
		{ProviderTalkJS, "/v1/other-app/users", "leave the prefix out"},
		{ProviderTalkJS, "/v1", "leave the prefix out"},
		{ProviderTalkJS, "/../other-app/users", `"." or ".."`},
		{ProviderTalkJS, "/users/..", `"." or ".."`},
		{ProviderTalkJS, "/%2e%2e/other-app/users", `"." or ".."`},
		{ProviderTalkJS, "/users/%2E", `"." or ".."`},
		{ProviderTalkJS, "/users/..%2F..%2Fx", `"." or ".."`},
		{ProviderTalkJS, "/users/a%5C..%5Cb", `"." or ".."`},
		{ProviderTalkJS, "/users//alice", "empty segment"},
		{ProviderTalkJS, "/users/", "empty segment"},
		{ProviderTalkJS, "/users?limit=1", "put the query in Query"},
		{ProviderTalkJS, "/users#x", "put the query in Query"},
		{ProviderTalkJS, "/users/a b", "escape each segment"},
		{ProviderTalkJS, `/users\..\x`, "escape each segment"},
		{ProviderTalkJS, "/users/{id}", "escape each segment"},
		{ProviderTalkJS, "/reactions/👍", "escape each segment"},
		{ProviderTalkJS, "/users/%zz", "malformed escape"},
		{ProviderTalkJS, "/users/%00", "control character"},
		{ProviderSelarti, "/api/1.1/wf/auth", "leave the prefix out"},
		{ProviderSelarti, "/wf/../../x", `"." or ".."`},
	} {
		err := env.c.Raw(context.Background(), RawRequest{Provider: tc.provider, Method: http.MethodGet, Path: tc.path}, nil)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, tc.path)
		require.Len(t, ve.Problems, 1, tc.path)
		assert.Equal(t, "Path", ve.Problems[0].Field, tc.path)
		assert.Contains(t, ve.Problems[0].Reason, tc.reason, tc.path)
	}
	err := env.c.Raw(context.Background(), RawRequest{Provider: ProviderTalkJS, Method: http.MethodGet, Path: "/users?token=" + testTalkJSToken}, nil)
	require.ErrorIs(t, err, ErrValidation)
	assertNoSecret(t, "error", err.Error())
	assert.Empty(t, env.Calls(), "nothing sent")

	// Escaped segments that stay inside are fine, sent as given.
	require.NoError(t, env.c.Raw(context.Background(), RawRequest{Provider: ProviderTalkJS, Method: http.MethodGet,
		Path: "/conversations/order%2F391/messages/msg_1/reactions/%F0%9F%91%8D/alice"}, nil))
	require.Len(t, env.Calls(), 1)
	assert.Equal(t, "/v1/app1/conversations/order%2F391/messages/msg_1/reactions/%F0%9F%91%8D/alice", env.Calls()[0].Path)
}

func TestRawRefusesBadRequests(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, `{}`))
	ctx := context.Background()
	for _, tc := range []struct {
		r    RawRequest
		want []Problem
	}{
		{RawRequest{Provider: "slack", Method: "GET", Path: "/x"}, []Problem{{"Provider", "must be ProviderTalkJS, ProviderTalqui or ProviderSelarti"}}},
		{RawRequest{Provider: ProviderTalkJS, Method: "TRACE", Path: "/x"}, []Problem{{"Method", "must be GET, POST, PUT, PATCH or DELETE"}}},
		{RawRequest{Provider: ProviderTalkJS, Method: "GET", Path: "/x", Body: map[string]int{"a": 1}}, []Problem{{"Body", "a GET takes no body"}}},
		{RawRequest{Provider: ProviderTalkJS, Method: "POST", Path: "/x", Body: []byte(`{}`)},
			[]Problem{{"Body", "a []byte would be sent as a base64 JSON string: give a json.RawMessage for JSON, or a bytes.Reader with ContentType"}}},
		{RawRequest{Provider: ProviderTalkJS, Method: "POST", Path: "/files", Body: strings.NewReader("x")},
			[]Problem{{"ContentType", "is required with an io.Reader Body (say, a multipart.Writer's FormDataContentType())"}}},
		{RawRequest{Provider: ProviderTalkJS, Method: "POST", Path: "/files", Body: strings.NewReader("x"), ContentType: "text/plain\r\nX-Evil: 1"},
			[]Problem{{"ContentType", "must be a media type, such as multipart/form-data; boundary=…"}}},
		{RawRequest{Provider: ProviderTalkJS, Method: "POST", Path: "/x", Body: map[string]any{"a": 1}, ContentType: "text/plain"},
			[]Problem{{"ContentType", "takes an io.Reader Body: any other Body is sent as application/json"}}},
		{RawRequest{Provider: ProviderTalkJS, Method: "POST", Path: "/x", ContentType: "text/plain"}, []Problem{{"ContentType", "takes a Body"}}},
		{RawRequest{Provider: ProviderTalkJS, Method: "GET", Path: "/x", Connection: "pc-wa"}, []Problem{{"Connection", "only a Talqui call takes a plugin connection"}}},
		{RawRequest{Provider: ProviderTalqui, Method: "GET", Path: "/x"}, []Problem{{"Connection", "required: 2 plugin connections are configured"}}},
		{RawRequest{Provider: ProviderTalqui, Method: "GET", Path: "/x", Connection: testTokenWA}, []Problem{{"Connection", `unknown plugin connection "[redacted]"`}}},
	} {
		err := env.c.Raw(ctx, tc.r, nil)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, "%+v", tc.r)
		assert.Equal(t, tc.want, ve.Problems)
		assertNoSecret(t, "error", err.Error())
	}
	assert.Empty(t, env.Calls(), "nothing sent")

	// A provider left out sends nothing either.
	c, err := NewClient(WithTalkJS(testAppID, testTalkJSToken))
	require.NoError(t, err)
	assert.ErrorIs(t, c.Raw(ctx, RawRequest{Provider: ProviderSelarti, Method: "POST", Path: "/wf/x"}, nil), ErrNotConfigured)
	assert.ErrorIs(t, c.Raw(ctx, RawRequest{Provider: ProviderTalqui, Method: "GET", Path: "/x"}, nil), ErrNotConfigured)
}

func TestRawWireForm(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, `{"data":[{"id":"alice"}]}`))
	ctx := context.Background()

	var out struct {
		Data []struct{ ID string } `json:"data"`
	}
	require.NoError(t, env.c.Raw(ctx, RawRequest{Provider: ProviderTalkJS, Method: http.MethodGet, Path: "/users",
		Query: url.Values{"limit": {"1"}, "isOnline": {"true"}}}, &out))
	assert.Equal(t, "alice", out.Data[0].ID)
	var raw json.RawMessage
	require.NoError(t, env.c.Raw(ctx, RawRequest{Provider: ProviderTalkJS, Method: http.MethodPost, Path: "/conversations/c1/messages",
		Body: []map[string]string{{"text": "hi", "type": "SystemMessage"}}}, &raw))
	assert.JSONEq(t, `{"data":[{"id":"alice"}]}`, string(raw))
	require.NoError(t, env.c.Raw(ctx, RawRequest{Provider: ProviderTalkJS, Method: http.MethodPut, Path: "/x",
		Body: json.RawMessage(`{"a": [1, 2]}`)}, nil))
	require.NoError(t, env.c.Raw(ctx, RawRequest{Provider: ProviderTalqui, Connection: "pc-food", Method: http.MethodPost, Path: "/tenants/t/things",
		Body: strings.NewReader("a,b\n1,2\n"), ContentType: "text/csv"}, nil))

	calls := env.Calls()
	require.Len(t, calls, 4)
	get, post, put, csv := calls[0], calls[1], calls[2], calls[3]
	assert.Equal(t, "GET /v1/app1/users isOnline=true&limit=1", get.Method+" "+get.Path+" "+get.Query)
	assert.Equal(t, "Bearer "+testTalkJSToken, get.Header.Get("Authorization"))
	assert.Equal(t, DefaultTalkJSVersion, get.Header.Get("TalkJS-REST-Version"))
	assert.Equal(t, "application/json", get.Header.Get("Accept"))
	assert.Equal(t, "convo-go/"+Version, get.Header.Get("User-Agent"))
	assert.Empty(t, get.Header.Get("Content-Type"))
	assert.Empty(t, get.Body)

	assert.Equal(t, "POST /v1/app1/conversations/c1/messages", post.Method+" "+post.Path)
	assert.Equal(t, "application/json", post.Header.Get("Content-Type"))
	assert.Equal(t, `[{"text":"hi","type":"SystemMessage"}]`, string(post.Body))
	assert.Equal(t, `{"a":[1,2]}`, string(put.Body))

	assert.Equal(t, "POST /tenants/t/things", csv.Method+" "+csv.Path)
	assert.Equal(t, "PluginConnection "+testTokenFood, csv.Header.Get("Authorization"))
	assert.Equal(t, "text/csv", csv.Header.Get("Content-Type"))
	assert.Equal(t, "a,b\n1,2\n", string(csv.Body))
}

// rawRetryCase is a raw call against answers, and what must follow.
type rawRetryCase struct {
	name    string
	r       func() RawRequest
	answers []httpmock.Responder
	tries   int
	is      []error // nil: the call succeeds
}

func TestRawRetriesOnlyWhatIsSafe(t *testing.T) {
	ok := httpmock.NewStringResponder(200, `{}`)
	s503 := httpmock.NewStringResponder(503, `{}`)
	s429 := httpmock.NewStringResponder(429, `{}`)
	reset := httpmock.NewErrorResponder(errors.New("read tcp: connection reset by peer"))
	upload := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b--\r\n"
	raw := func(method string, repeatable bool, body func() any) func() RawRequest {
		return func() RawRequest {
			r := RawRequest{Provider: ProviderTalkJS, Method: method, Path: "/files", Repeatable: repeatable}
			if body != nil {
				r.Body = body()
				if _, stream := r.Body.(io.Reader); stream {
					r.ContentType = "multipart/form-data; boundary=b"
				}
			}
			return r
		}
	}
	rewinds := func() any { return strings.NewReader(upload) }
	once := func() any { return bytes.NewBufferString(upload) } // cannot be rewound
	jsonBody := func() any { return map[string]string{"a": "b"} }
	for _, tc := range []rawRetryCase{
		{"GET after a 503", raw("GET", false, nil), []httpmock.Responder{s503, ok}, 2, nil},
		{"GET after a reset", raw("GET", false, nil), []httpmock.Responder{reset, ok}, 2, nil},
		{"POST after a 503", raw("POST", false, jsonBody), []httpmock.Responder{s503, ok}, 1, []error{ErrServer, ErrOutcomeUnknown}},
		{"PUT after a 503: only a GET is repeatable by its method", raw("PUT", false, jsonBody), []httpmock.Responder{s503, ok}, 1, []error{ErrOutcomeUnknown}},
		{"DELETE after a reset", raw("DELETE", false, nil), []httpmock.Responder{reset, ok}, 1, []error{ErrOutcomeUnknown}},
		{"Repeatable POST after a 503", raw("POST", true, jsonBody), []httpmock.Responder{s503, ok}, 2, nil},
		{"POST after a 429", raw("POST", false, jsonBody), []httpmock.Responder{s429, ok}, 2, nil},
		{"POST after a dial failure", raw("POST", false, jsonBody), []httpmock.Responder{dialRefused, ok}, 2, nil},

		{"upload after a dial failure: nothing was sent", raw("POST", false, rewinds), []httpmock.Responder{dialRefused, ok}, 2, nil},
		{"upload after a 429: it was sent", raw("POST", false, rewinds), []httpmock.Responder{s429, ok}, 1, []error{ErrRateLimited}},
		{"upload after a 503", raw("POST", false, rewinds), []httpmock.Responder{s503, ok}, 1, []error{ErrOutcomeUnknown}},
		{"Repeatable upload after a 503", raw("POST", true, rewinds), []httpmock.Responder{s503, reset, ok}, 3, nil},
		{"Repeatable upload after a 429", raw("POST", true, rewinds), []httpmock.Responder{s429, ok}, 2, nil},

		{"unrewindable upload after a dial failure", raw("POST", true, once), []httpmock.Responder{dialRefused, ok}, 1, nil},
		{"unrewindable upload after a 429", raw("POST", true, once), []httpmock.Responder{s429, ok}, 1, []error{ErrRateLimited}},
		{"unrewindable upload after a 503", raw("POST", true, once), []httpmock.Responder{s503, ok}, 1, []error{ErrServer, ErrOutcomeUnknown}},
		{"unrewindable upload after a reset", raw("POST", true, once), []httpmock.Responder{reset, ok}, 1, []error{ErrOutcomeUnknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := NewTestEnv(t)
			env.mt.RegisterNoResponder(seq(tc.answers...))
			err := env.c.Raw(context.Background(), tc.r(), nil)
			calls := env.Calls()
			assert.Len(t, calls, tc.tries, "tries")
			if tc.is == nil && tc.name == "unrewindable upload after a dial failure" {
				// A dial failure is not retried: the call fails, and matches
				// no ErrOutcomeUnknown, nothing was sent.
				require.Error(t, err)
				assert.NotErrorIs(t, err, ErrOutcomeUnknown)
				return
			}
			for _, target := range tc.is {
				assert.ErrorIs(t, err, target)
			}
			if tc.is == nil {
				require.NoError(t, err)
			}
			for _, c := range calls {
				if c.Header.Get("Content-Type") == "multipart/form-data; boundary=b" {
					assert.Equal(t, upload, string(c.Body), "every attempt sends the whole body")
				}
			}
		})
	}
}

func TestRawStreamRewindsFromWhereItWas(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterNoResponder(seq(httpmock.NewStringResponder(503, `{}`), httpmock.NewStringResponder(200, `{}`)))
	body := strings.NewReader("skip:payload")
	_, err := body.Seek(5, io.SeekStart)
	require.NoError(t, err)
	require.NoError(t, env.c.Raw(context.Background(), RawRequest{Provider: ProviderTalkJS, Method: http.MethodPost, Path: "/files",
		Body: body, ContentType: "text/plain", Repeatable: true}, nil))
	calls := env.Calls()
	require.Len(t, calls, 2)
	for _, c := range calls {
		assert.Equal(t, "payload", string(c.Body))
	}
}

func TestRawRedirectNotFollowed(t *testing.T) {
	env := NewTestEnv(t)
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(302, `moved`).HeaderSet(http.Header{"Location": {"https://evil.example/?k=" + testTalkJSToken}}))
	err := env.c.Raw(context.Background(), RawRequest{Provider: ProviderTalkJS, Method: http.MethodPost, Path: "/files",
		Body: strings.NewReader("x"), ContentType: "text/plain"}, nil)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 302, ae.StatusCode)
	assert.ErrorIs(t, err, ErrOutcomeUnknown)
	assert.Len(t, env.Calls(), 1)
	assertNoSecret(t, "error", err.Error())
}

func TestRawSelartiRenewsARefusedToken(t *testing.T) {
	refusal := func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("Authorization") == "Bearer "+testSelartiToken(1) {
			return httpmock.NewStringResponse(401, bubbleUnauthorizedBody), nil
		}
		return httpmock.NewStringResponse(200, `{"status":"success","response":{"ok":true}}`), nil
	}
	t.Run("JSON body", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("list_tasks", refusal)
		var out struct {
			Response struct{ OK bool } `json:"response"`
		}
		require.NoError(t, env.c.Raw(context.Background(), RawRequest{Provider: ProviderSelarti, Method: http.MethodPost, Path: "/wf/list_tasks",
			Body: map[string]string{"task": testTask}}, &out))
		assert.True(t, out.Response.OK)
		assert.Equal(t, 2, env.count("list_tasks"), "one repeat with a new token")
		assert.EqualValues(t, 2, env.exchanges.Load())
	})
	t.Run("a stream that is not repeatable is not sent again", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("upload", refusal)
		err := env.c.Raw(context.Background(), RawRequest{Provider: ProviderSelarti, Method: http.MethodPost, Path: "/wf/upload",
			Body: strings.NewReader("x"), ContentType: "text/plain"}, nil)
		assert.ErrorIs(t, err, ErrUnauthorized)
		assert.Equal(t, 1, env.count("upload"))
	})
}

const bubbleUnauthorizedBody = `{"error_class":"Unauthorized","args":{"code":"1x1"},"message":null,"translation":"Invalid or expired token"}`

func TestRawObserved(t *testing.T) {
	var calls []CallInfo
	env := NewTestEnv(t, WithObserver(Observer{CallStart: func(ctx context.Context, c CallInfo) context.Context {
		calls = append(calls, c)
		return ctx
	}}))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, `{}`))
	require.NoError(t, env.c.Raw(context.Background(), RawRequest{Provider: ProviderTalkJS, Method: http.MethodDelete, Path: "/conversations/alice-and-bob"}, nil))
	require.Len(t, calls, 1)
	assert.Equal(t, "talkjs.raw.delete", calls[0].Operation)
	assert.Equal(t, "/v1/{appID}/{rawPath}", calls[0].PathTemplate, "never the path, which may hold ids")
	assert.Equal(t, http.MethodDelete, calls[0].Method)
}

func TestRawStreamLengthOnTheWire(t *testing.T) {
	type seen struct {
		length  int64
		chunked bool
		body    string
	}
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.ContentLength, slices.Contains(r.TransferEncoding, "chunked"), string(b)})
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(WithTalkJS(testAppID, testTalkJSToken), WithTalkJSURL(srv.URL))
	require.NoError(t, err)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("piped"))
		pw.Close()
	}()
	for _, body := range []io.Reader{strings.NewReader("sized"), bytes.NewBufferString("buffered"), pr} {
		require.NoError(t, c.Raw(context.Background(), RawRequest{Provider: ProviderTalkJS, Method: http.MethodPost, Path: "/files",
			Body: body, ContentType: "text/plain"}, nil))
	}
	assert.Equal(t, []seen{{5, false, "sized"}, {8, false, "buffered"}, {-1, true, "piped"}}, got)
}
