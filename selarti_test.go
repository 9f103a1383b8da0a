package convo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Selarti credentials of the tests: the key, and the tokens the mock
// hands out in turn.
const (
	testSelartiKey = "sel_key_SECRET_a41f"
	testTask       = "1721129985149x478019552540622850"
	selartiBase    = "https://selarti.com/api/1.1/wf/"
)

func testSelartiToken(n int) string { return fmt.Sprintf("sel_tok_SECRET_%d", n) }

// selartiEnv is the harness with Selarti configured and the mock's
// /wf/auth answering a new token on each exchange.
type selartiEnv struct {
	*TestEnv
	exchanges atomic.Int32
}

func newSelartiEnv(t *testing.T, opts ...Option) *selartiEnv {
	t.Helper()
	env := &selartiEnv{TestEnv: NewTestEnv(t, append([]Option{WithSelarti(testSelartiKey)}, opts...)...)}
	env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", func(*http.Request) (*http.Response, error) {
		n := env.exchanges.Add(1)
		return httpmock.NewStringResponse(200, `{"status":"success","response":{"token":"`+testSelartiToken(int(n))+`"}}`), nil
	})
	return env
}

// answer makes the mock answer the workflow with r.
func (env *selartiEnv) answer(workflow string, r httpmock.Responder) {
	env.mt.RegisterResponder(http.MethodPost, selartiBase+workflow, r)
}

// count is how many requests the client sent to the workflow.
func (env *selartiEnv) count(workflow string) int {
	return env.mt.GetCallCountInfo()["POST "+selartiBase+workflow]
}

const okAnswer = `{"status":"success","response":{}}`

func sendMsg() SelartiMessage {
	return SelartiMessage{TaskID: testTask, ChatID: "tg-123456789", Text: "Where is my order?"}
}

// assertNoSelartiSecret fails if the key, a token or a bearer header
// appears in s.
func assertNoSelartiSecret(t *testing.T, what, s string) {
	t.Helper()
	assertNoSecret(t, what, s)
	for _, sec := range []string{testSelartiKey, "sel_tok_", "Bearer sel"} {
		require.NotContains(t, s, sec, "%s leaks a Selarti secret", what)
	}
}

func TestSelartiWireForm(t *testing.T) {
	env := newSelartiEnv(t)
	env.answer("send_external_message", httpmock.NewStringResponder(200, `{"status":"success","response":{"message_id":"m1"}}`))
	env.answer("add_target", httpmock.NewStringResponder(200, okAnswer))
	ctx := context.Background()

	m := sendMsg()
	m.Extra = map[string]any{"metadata": map[string]any{"order": 391}}
	res, err := env.c.Selarti.Send(ctx, m)
	require.NoError(t, err)
	assert.JSONEq(t, `{"message_id":"m1"}`, string(res.Response))
	assert.JSONEq(t, `{"status":"success","response":{"message_id":"m1"}}`, string(res.Raw))
	require.NoError(t, env.c.Selarti.AddTarget(ctx, testTask, "@maria"))

	calls := env.Calls()
	require.Len(t, calls, 3)
	want := []struct{ path, auth, body string }{
		{"/api/1.1/wf/auth", "", `{"key":"` + testSelartiKey + `"}`},
		{"/api/1.1/wf/send_external_message", "Bearer " + testSelartiToken(1),
			`{"task":"` + testTask + `","chat_id":"tg-123456789","text":"Where is my order?","metadata":{"order":391}}`},
		{"/api/1.1/wf/add_target", "Bearer " + testSelartiToken(1), `{"task":"` + testTask + `","target":"@maria"}`},
	}
	for i, w := range want {
		c := calls[i]
		assert.Equal(t, http.MethodPost, c.Method)
		assert.Equal(t, w.path, c.Path)
		assert.Empty(t, c.Query)
		assert.Equal(t, w.auth, c.Header.Get("Authorization"), w.path)
		_, hasAuth := c.Header["Authorization"]
		assert.Equal(t, w.auth != "", hasAuth, "%s: an Authorization header only with a token", w.path)
		assert.Equal(t, "application/json", c.Header.Get("Content-Type"))
		assert.Equal(t, "application/json", c.Header.Get("Accept"))
		assert.Equal(t, "convo-go/"+Version, c.Header.Get("User-Agent"))
		assert.JSONEq(t, w.body, string(c.Body), w.path)
	}
}

func TestSelartiTokenSharedByConcurrentCalls(t *testing.T) {
	env := newSelartiEnv(t)
	release := make(chan struct{})
	env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", func(*http.Request) (*http.Response, error) {
		<-release // every caller is waiting for this exchange
		n := env.exchanges.Add(1)
		return httpmock.NewStringResponse(200, `{"status":"success","response":{"token":"`+testSelartiToken(int(n))+`"}}`), nil
	})
	env.answer("send_external_message", httpmock.NewStringResponder(200, okAnswer))

	const callers = 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	ctxs := make([]*doneWatcher, callers)
	for i := range callers {
		ctxs[i] = watchDone(context.Background())
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := sendMsg()
			m.ChatID = fmt.Sprint("chat-", i)
			_, err := env.c.Selarti.Send(ctxs[i], m)
			errs <- err
		}()
	}
	// Every caller waits for the exchange (or, the one that leads it, is
	// in the transport) before the exchange is answered.
	for _, ctx := range ctxs {
		<-ctx.asked
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, env.exchanges.Load(), "one exchange for all")
	assert.Equal(t, 1, env.count("auth"))
	assert.Equal(t, callers, env.count("send_external_message"))
	for _, c := range env.Calls()[1:] {
		assert.Equal(t, "Bearer "+testSelartiToken(1), c.Header.Get("Authorization"))
	}

	// Later calls use the cached token.
	_, err := env.c.Selarti.Send(context.Background(), sendMsg())
	require.NoError(t, err)
	assert.Equal(t, 1, env.count("auth"))
}

func TestSelartiRefusedTokenExchangedAgainOnce(t *testing.T) {
	for name, refusal := range map[string]httpmock.Responder{
		"401":                 httpmock.NewStringResponder(401, `{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"invalid token"}}`),
		"Bubble UNAUTHORIZED": httpmock.NewStringResponder(400, `{"statusCode":400,"body":{"status":"UNAUTHORIZED","message":"token expired"}}`),
	} {
		t.Run(name, func(t *testing.T) {
			env := newSelartiEnv(t)
			env.answer("send_external_message", func(r *http.Request) (*http.Response, error) {
				if r.Header.Get("Authorization") == "Bearer "+testSelartiToken(1) {
					return refusal(r)
				}
				return httpmock.NewStringResponse(200, okAnswer), nil
			})
			_, err := env.c.Selarti.Send(context.Background(), sendMsg())
			require.NoError(t, err)
			assert.EqualValues(t, 2, env.exchanges.Load(), "one exchange more")
			assert.Equal(t, 2, env.count("send_external_message"), "one repeat")
			paths := []string{}
			for _, c := range env.Calls() {
				paths = append(paths, c.Path+" "+c.Header.Get("Authorization"))
			}
			assert.Equal(t, []string{
				"/api/1.1/wf/auth ",
				"/api/1.1/wf/send_external_message Bearer " + testSelartiToken(1),
				"/api/1.1/wf/auth ",
				"/api/1.1/wf/send_external_message Bearer " + testSelartiToken(2),
			}, paths)
		})
	}

	t.Run("refused again", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("add_target", httpmock.NewStringResponder(401, `{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"no"}}`))
		err := env.c.Selarti.AddTarget(context.Background(), testTask, "@maria")
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.ErrorIs(t, err, ErrUnauthorized)
		assert.Equal(t, "UNAUTHORIZED: no", ae.Message)
		assert.EqualValues(t, 2, env.exchanges.Load(), "one re-exchange only")
		assert.Equal(t, 2, env.count("add_target"), "one repeat only")
	})
}

func TestSelartiSendNotRepeatedOnceItMayHaveArrived(t *testing.T) {
	reset := httpmock.NewErrorResponder(errors.New("read tcp: connection reset by peer"))
	cases := []struct {
		name   string
		answer httpmock.Responder
		is     []error
	}{
		{"500", httpmock.NewStringResponder(500, `{"statusCode":500,"body":{"status":"ERROR","message":"boom"}}`), []error{ErrServer, ErrOutcomeUnknown}},
		{"503", httpmock.NewStringResponder(503, `{}`), []error{ErrServer, ErrOutcomeUnknown}},
		{"reset", reset, []error{ErrOutcomeUnknown}},
	}
	for _, tc := range cases {
		for _, wf := range []string{"send_external_message", "add_target"} {
			t.Run(tc.name+"/"+wf, func(t *testing.T) {
				env := newSelartiEnv(t)
				env.answer(wf, tc.answer)
				var err error
				if wf == "add_target" {
					err = env.c.Selarti.AddTarget(context.Background(), testTask, "@maria")
				} else {
					_, err = env.c.Selarti.Send(context.Background(), sendMsg())
				}
				for _, target := range tc.is {
					assert.ErrorIs(t, err, target)
				}
				assert.Equal(t, 1, env.count(wf), "sent once")
				var ae *APIError
				if errors.As(err, &ae) {
					assert.Equal(t, 1, ae.Attempts)
				}
			})
		}
	}
}

func TestSelartiRetriedWhenNothingArrived(t *testing.T) {
	env := newSelartiEnv(t)
	var n atomic.Int32
	env.answer("send_external_message", func(r *http.Request) (*http.Response, error) {
		switch n.Add(1) {
		case 1:
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		case 2:
			return httpmock.NewStringResponse(429, `{}`), nil
		}
		return httpmock.NewStringResponse(200, okAnswer), nil
	})
	_, err := env.c.Selarti.Send(context.Background(), sendMsg())
	require.NoError(t, err)
	assert.Equal(t, 3, env.count("send_external_message"), "a dial failure and a 429 are retried")

	// The token exchange is safe to repeat.
	env2 := newSelartiEnv(t)
	var m atomic.Int32
	env2.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", func(*http.Request) (*http.Response, error) {
		if m.Add(1) == 1 {
			return httpmock.NewStringResponse(503, `{}`), nil
		}
		return httpmock.NewStringResponse(200, `{"status":"success","response":{"token":"`+testSelartiToken(1)+`"}}`), nil
	})
	env2.answer("send_external_message", httpmock.NewStringResponder(200, okAnswer))
	_, err = env2.c.Selarti.Send(context.Background(), sendMsg())
	require.NoError(t, err)
	assert.Equal(t, 2, env2.count("auth"))
	assert.Equal(t, 1, env2.count("send_external_message"))
}

func TestSelartiValidation(t *testing.T) {
	env := newSelartiEnv(t)
	ctx := context.Background()
	_, err := env.c.Selarti.Send(ctx, SelartiMessage{
		ChatID: " \t", Text: "caf\xe9",
		Extra: map[string]any{"chat_id": 1, "task": "x", "": 2, "ok": 3, strings.Repeat("k", 300): 4},
	})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.ErrorIs(t, err, ErrValidation)
	assert.Equal(t, []Problem{
		{"TaskID", "required"},
		{"ChatID", "required"},
		{"Text", "must be valid UTF-8"},
		{`Extra[""]`, "key must not be empty"},
		{`Extra["chat_id"]`, "collides with the key chat_id that ChatID sends; set ChatID instead"},
		{`Extra["` + strings.Repeat("k", 300) + `"]`, "key must be at most 256 bytes"},
		{`Extra["task"]`, "collides with the key task that TaskID sends; set TaskID instead"},
	}, ve.Problems)

	err = env.c.Selarti.AddTarget(ctx, "", " ")
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []Problem{{"taskID", "required"}, {"target", "required"}}, ve.Problems)
	assert.Empty(t, env.Calls(), "nothing sent, not even the token exchange")

	c, err := NewClient(WithTalkJS("app", "sk"), WithHTTPClient(&http.Client{Transport: env.mt}))
	require.NoError(t, err)
	_, err = c.Selarti.Send(ctx, sendMsg())
	assert.ErrorIs(t, err, ErrNotConfigured)
	assert.ErrorIs(t, c.Selarti.AddTarget(ctx, testTask, "@m"), ErrNotConfigured)
	assert.Empty(t, env.Calls())
}

func TestSelartiWorkflowOverrides(t *testing.T) {
	env := newSelartiEnv(t,
		WithSelartiWorkflows(SelartiWorkflows{Send: "user_message", TextKey: "message"}),
		WithSelartiWorkflows(SelartiWorkflows{TaskKey: "task_id", AddTarget: "add_contact"}),
		WithSelartiURL("https://eu.selarti.example/api/1.1/"),
	)
	env.mt.RegisterResponder(http.MethodPost, "https://eu.selarti.example/api/1.1/wf/auth",
		httpmock.NewStringResponder(200, `{"status":"success","response":{"token":"`+testSelartiToken(1)+`"}}`))
	env.mt.RegisterNoResponder(httpmock.NewStringResponder(200, okAnswer))
	ctx := context.Background()

	m := sendMsg()
	m.Extra = map[string]any{"text": "the default text key is free now"}
	_, err := env.c.Selarti.Send(ctx, m)
	require.NoError(t, err)
	require.NoError(t, env.c.Selarti.AddTarget(ctx, testTask, "@maria"))
	calls := env.Calls()
	require.Len(t, calls, 3)
	assert.Equal(t, "/api/1.1/wf/user_message", calls[1].Path)
	assert.JSONEq(t, `{"task_id":"`+testTask+`","chat_id":"tg-123456789","message":"Where is my order?","text":"the default text key is free now"}`, string(calls[1].Body))
	assert.Equal(t, "/api/1.1/wf/add_contact", calls[2].Path)
	assert.JSONEq(t, `{"task_id":"`+testTask+`","target":"@maria"}`, string(calls[2].Body))

	m.Extra = map[string]any{"message": "x"}
	_, err = env.c.Selarti.Send(ctx, m)
	assert.ErrorIs(t, err, ErrValidation, "the overridden key is taken")

	for name, w := range map[string]SelartiWorkflows{
		"a path":          {Send: "a/b"},
		"dot dot":         {AddTarget: ".."},
		"blank":           {TaskKey: "  "},
		"control":         {TextKey: "te\nxt"},
		"same keys":       {ChatKey: "task"},
		"the target key":  {TaskKey: "target"},
		"a query":         {Send: "send?x=1"},
		"escaped segment": {Send: "a%2Fb"},
	} {
		_, err := NewClient(WithSelarti(testSelartiKey), WithSelartiWorkflows(w))
		assert.ErrorIs(t, err, ErrValidation, name)
	}
	_, err = NewClient(WithSelarti(" "))
	assert.ErrorIs(t, err, ErrValidation)
	_, err = NewClient(WithSelarti(testSelartiKey), WithSelartiURL("http://selarti.com"))
	assert.ErrorIs(t, err, ErrValidation)
}

func TestSelartiErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("Bubble error body", func(t *testing.T) {
		env := newSelartiEnv(t)
		body := `{"statusCode":400,"body":{"status":"MISSING_DATA","message":"Missing parameter for workflow send_external_message: parameter text"}}`
		env.answer("send_external_message", httpmock.NewStringResponder(400, body))
		_, err := env.c.Selarti.Send(ctx, sendMsg())
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.ErrorIs(t, err, ErrInvalidRequest)
		assert.Equal(t, ProviderSelarti, ae.Provider)
		assert.Equal(t, "/api/1.1/wf/send_external_message", ae.Path)
		assert.Equal(t, "MISSING_DATA: Missing parameter for workflow send_external_message: parameter text", ae.Message)
		assert.Equal(t, body, string(ae.Body))
		assert.EqualValues(t, 1, env.exchanges.Load(), "a 400 is not a refused token")
	})
	t.Run("200 with a status that is not success", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("send_external_message", httpmock.NewStringResponder(200, `{"status":"NOT_RUN","message":"task stopped"}`))
		res, err := env.c.Selarti.Send(ctx, sendMsg())
		assert.Nil(t, res)
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 200, ae.StatusCode)
		assert.Equal(t, "NOT_RUN: task stopped", ae.Message)
		assert.ErrorIs(t, err, ErrBadResponse, "the workflow ran: do not send again")
	})
	t.Run("not JSON on success", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.answer("send_external_message", httpmock.NewStringResponder(200, `<html>ok</html>`))
		res, err := env.c.Selarti.Send(ctx, sendMsg())
		assert.ErrorIs(t, err, ErrBadResponse)
		require.NotNil(t, res, "the body is kept")
		assert.Equal(t, `<html>ok</html>`, string(res.Raw))
	})
	t.Run("exchange refused", func(t *testing.T) {
		env := newSelartiEnv(t)
		env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth",
			httpmock.NewStringResponder(401, `{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"bad key `+testSelartiKey+`"}}`))
		_, err := env.c.Selarti.Send(ctx, sendMsg())
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "/api/1.1/wf/auth", ae.Path, "the error names the auth step")
		assert.ErrorIs(t, err, ErrUnauthorized)
		assert.Equal(t, "UNAUTHORIZED: bad key [redacted]", ae.Message)
		assert.Equal(t, 1, env.count("auth"), "a refused key is not exchanged again")
		assert.Zero(t, env.count("send_external_message"))
	})
	for name, body := range map[string]string{
		"no token":    `{"status":"success","response":{}}`,
		"blank token": `{"status":"success","response":{"token":" "}}`,
		"not JSON":    `ok`,
	} {
		t.Run("exchange answers "+name, func(t *testing.T) {
			env := newSelartiEnv(t)
			env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", httpmock.NewStringResponder(200, body))
			_, err := env.c.Selarti.Send(ctx, sendMsg())
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "/api/1.1/wf/auth", ae.Path)
			assert.Contains(t, ae.Message, "token exchange")
			assert.NotErrorIs(t, err, ErrBadResponse, "the exchange's answer, not the send's: the send was not made")
			assert.Zero(t, env.count("send_external_message"))
		})
	}
}

// A failed token exchange leaves the send unsent: its error never says the
// message may have reached the AI, whatever the exchange met, so a caller
// may send it again.
func TestSelartiFailedExchangeIsNotAnUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		answer httpmock.Responder
		class  error
	}{
		"503 until retries run out": {httpmock.NewStringResponder(503, `{"status":"DOWN"}`), ErrServer},
		"a reset after sending":     {httpmock.NewErrorResponder(io.ErrUnexpectedEOF), io.ErrUnexpectedEOF},
	} {
		t.Run(name, func(t *testing.T) {
			env := newSelartiEnv(t)
			env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", tc.answer)
			_, err := env.c.Selarti.Send(ctx, sendMsg())
			require.ErrorIs(t, err, tc.class)
			assert.NotErrorIs(t, err, ErrOutcomeUnknown, "the send was not made")
			assert.Equal(t, 1+fastRetry.MaxRetries, env.count("auth"), "the exchange is repeatable")
			assert.Zero(t, env.count("send_external_message"))
		})
	}
	// The send itself answered 503 still matches ErrOutcomeUnknown.
	env := newSelartiEnv(t)
	env.answer("send_external_message", httpmock.NewStringResponder(503, `{}`))
	_, err := env.c.Selarti.Send(ctx, sendMsg())
	assert.ErrorIs(t, err, ErrOutcomeUnknown)
	assert.Equal(t, 1, env.count("send_external_message"))
}

func TestSelartiNoSecretInErrorsOrLogs(t *testing.T) {
	env := newSelartiEnv(t)
	ctx := context.Background()
	echo := func(status int) httpmock.Responder {
		return func(r *http.Request) (*http.Response, error) {
			return httpmock.NewStringResponse(status, `{"statusCode":`+fmt.Sprint(status)+`,"body":{"status":"ECHO","message":"`+
				r.Header.Get("Authorization")+` key `+testSelartiKey+`"}}`), nil
		}
	}
	env.answer("send_external_message", echo(500))
	env.answer("add_target", echo(401))
	_, sendErr := env.c.Selarti.Send(ctx, sendMsg())
	require.Error(t, sendErr)
	targetErr := env.c.Selarti.AddTarget(ctx, testTask, "@maria")
	require.Error(t, targetErr)

	for _, err := range []error{sendErr, targetErr} {
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			assertNoSelartiSecret(t, "error "+verb, fmt.Sprintf(verb, err))
			assertNoSelartiSecret(t, "APIError "+verb, fmt.Sprintf(verb, *ae))
		}
		assertNoSelartiSecret(t, "APIError.Body", string(ae.Body))
		assert.Contains(t, ae.Message, "[redacted]", "the echo is there, redacted")
	}
	logs := env.logs.String()
	assert.Contains(t, logs, "/api/1.1/wf/auth", "the calls are logged")
	assertNoSelartiSecret(t, "logs", logs)
	assertNoSelartiSecret(t, "client", fmt.Sprintf("%v %+v", env.c.Selarti, env.c.Selarti))
}

func TestSelartiContextEndsWhileWaitingForTheExchange(t *testing.T) {
	env := newSelartiEnv(t)
	release := make(chan struct{})
	exchanging := make(chan struct{}, 2) // one send per exchange begun
	env.mt.RegisterResponder(http.MethodPost, selartiBase+"auth", func(r *http.Request) (*http.Response, error) {
		exchanging <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		return httpmock.NewStringResponse(200, `{"status":"success","response":{"token":"`+testSelartiToken(1)+`"}}`), nil
	})
	env.answer("send_external_message", httpmock.NewStringResponder(200, okAnswer))

	// The first caller leads the exchange, then gives up; a waiter with a
	// live context exchanges for itself.
	leadCtx, cancelLead := context.WithCancel(context.Background())
	leadDone := make(chan error, 1)
	go func() {
		_, err := env.c.Selarti.Send(leadCtx, sendMsg())
		leadDone <- err
	}()
	<-exchanging // the lead's exchange is under way
	waitCtx := watchDone(context.Background())
	waitDone := make(chan error, 1)
	go func() {
		_, err := env.c.Selarti.Send(waitCtx, sendMsg())
		waitDone <- err
	}()
	<-waitCtx.asked // the waiter waits for the lead's exchange
	cancelLead()
	assert.ErrorIs(t, <-leadDone, context.Canceled)
	select {
	case <-exchanging: // the waiter's own exchange
	case err := <-waitDone:
		t.Fatalf("the waiter ended with the lead's exchange: %v", err)
	}
	close(release)
	require.NoError(t, <-waitDone)
	assert.Equal(t, 2, env.count("auth"), "the lead's exchange, then the waiter's own")
	assert.Equal(t, 1, env.count("send_external_message"))
}
