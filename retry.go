package convo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// checkRetry decides whether an attempt is repeated. See the package
// documentation for the rules.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	st := stateOf(ctx)
	if st.ob != nil {
		st.ob.note(resp, err)
	}
	// The call's context: ctx is the attempt's, which ends at its own
	// deadline, and a retry may follow that.
	if ctxErr := st.Err(); ctxErr != nil {
		switch {
		case resp != nil:
			// An answer arrived as the context ended: it still counts
			// (its status, Retry-After, and whether it leaves the
			// outcome unknown), though nothing is retried.
			c.decide(st, resp, nil)
		case err != nil && !isDialError(err) && !isPermanent(err):
			st.reached = true // the context ended an attempt that was sent
		}
		return false, ctxErr
	}
	retry, reason := c.decide(st, resp, err)
	if retry {
		st.retrying()
	}
	if retry && st.ob != nil {
		// The attempt is over: the next one follows, or retries ran out.
		st.ob.attemptDone("")
	}
	if retry && st.logger != nil {
		if reason == "" && resp != nil {
			reason = "status " + strconv.Itoa(resp.StatusCode)
		}
		attrs := []slog.Attr{
			slog.String("provider", string(st.api.provider)), slog.String("method", st.rreq.Method),
			slog.String("path", st.template), slog.Int("attempt", st.attempts), slog.String("reason", reason),
		}
		if err != nil {
			// Not the *url.Error's text, which quotes the filled-in URL.
			text := err.Error()
			if ue, ok := err.(*url.Error); ok {
				text = ue.Err.Error()
			}
			attrs = append(attrs, slog.String("error", c.redactString(st.api, text)))
		}
		st.logger.LogAttrs(ctx, slog.LevelInfo, "convo: retrying", attrs...)
	}
	return retry, err
}

// decide applies the retry rules, in the order of the list in the package
// documentation and the README's table (rule numbers in the comments). A
// call is "safe to repeat" when request.repeatable says so: GET, PUT,
// PATCH, DELETE, a message send whose messages all carry idempotency keys,
// a presence query, MarkAsRead, Selarti's token exchange, and a raw call
// that is a GET or Repeatable; a Talqui session start, a
// TalkJS import or notification trigger, a Selarti send or AddTarget never
// is.
func (c *Client) decide(st *callState, resp *http.Response, err error) (bool, string) {
	if err != nil {
		switch {
		case errors.Is(err, errBodyTooLarge): // 1. a success body over the cap (WithMaxResponseBytes): never
			return false, ""
		case isDialError(err): // 2. a dial failure: always, nothing was sent (but see 12)
			return !st.once, "dial failed"
		case isPermanent(err): // 3. a certificate, scheme or header error: never
			return false, ""
		}
		// 4. a reset, EOF or timeout after sending: when safe to repeat
		st.reached = true
		return st.repeatable, "transport error after sending"
	}
	code := resp.StatusCode
	st.retryAfter, st.hasRetryAfter = 0, false
	if v := resp.Header["Retry-After"]; len(v) > 0 { // a canonical key: no Header.Get
		st.retryAfter, st.hasRetryAfter = parseRetryAfter(v[0])
	}
	st.lastStatus = code
	var retry bool
	switch {
	case code == http.StatusTooManyRequests: // 5. 429: always, but a streamed body that is not repeatable (see 12)
		retry = st.resendable
	case code == http.StatusRequestTimeout: // 6. 408: when safe to repeat
		retry = st.repeatable
	case code == http.StatusNotImplemented: // 7. 501: never
		retry = false
	case code >= 500: // 8. any other 5xx: when safe to repeat
		retry = st.repeatable
	case isRedirect(code): // 9. a redirect (3xx): never, and never followed
		// It answered a request that reached the server: a call that is
		// not safe to repeat may have been applied.
		st.reached = st.reached || !st.repeatable
	} // 10. any other status (4xx): never
	if code == http.StatusRequestTimeout || (code >= 500 && code != http.StatusNotImplemented) {
		st.reached = true
	}
	if st.once {
		// 12. a streamed body that cannot be rewound: never, it was read.
		retry = false
	}
	if retry && st.retryAfter > c.policy.MaxWait {
		// 11. Retry-After beyond MaxWait: stop, and give the caller the
		// error with its RetryAfter at once.
		return false, ""
	}
	return retry, "" // checkRetry names the status when it logs the retry
}

// backoff is exponential with jitter between MinWait and MaxWait; a
// Retry-After of the response (already capped by checkRetry) wins.
func (c *Client) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.Request != nil {
		if st := stateOf(resp.Request.Context()); st.hasRetryAfter && st.retryAfter <= maxWait {
			return st.retryAfter
		}
	}
	d := maxWait
	if attempt < 32 {
		if x := minWait << attempt; x > 0 && x < maxWait {
			d = x
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(365*24*time.Hour/time.Second) {
			n = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// isDialError reports a failure to connect: nothing was sent.
func isDialError(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isPermanent reports a transport error that no retry can mend.
func isPermanent(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) {
		msg := ue.Error()
		for _, s := range []string{"unsupported protocol scheme", "invalid header", "certificate is not trusted"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
	}
	var unknownAuth x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var hostname x509.HostnameError
	return errors.As(err, &unknownAuth) || errors.As(err, &verify) || errors.As(err, &hostname)
}
