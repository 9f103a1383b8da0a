package convo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Reading and decoding an answer within the caps: a success body up to
// WithMaxResponseBytes, an error body up to 64 KiB (plus the longest
// secret, so that redaction happens before the cut), and the request id.

// bodyDecoder is a success body that decodes itself. The pipeline hands it
// every 2xx body as read, even one it cannot use, so that StartedSession
// keeps Talqui's answer as Raw and decodes it in one pass.
type bodyDecoder interface {
	decodeBody([]byte) error
}

// decodeJSON decodes a success body into out.
func decodeJSON(body []byte, out any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty response body")
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	return nil
}

var errBodyRead = errors.New("reading response body")

var errBodyTooLarge = errors.New("response body too large")

// readBody reads the final response's body within the attempt, so that a
// body cut short can be retried like any other failure after sending. An
// error body is kept up to 64 KiB (read as far again as the longest
// form of a secret or a run-time token, for finish to redact before it
// cuts); a success body up to
// c.maxBody (16 MiB by default), or not at all when the call has no use
// for it.
func (c *Client) readBody(st *callState, resp *http.Response) error {
	defer resp.Body.Close()
	limit := c.maxBody
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if ok && st.discard {
		// The status is the answer; read a little so the connection can
		// be reused, whatever the body holds.
		// (The limit reader is the call's: io.CopyN would allocate one.)
		st.drain = io.LimitedReader{R: resp.Body, N: maxErrorBody}
		_, _ = io.Copy(io.Discard, &st.drain)
		st.drain.R = nil
		st.body, st.bodyErr = []byte{}, nil
		return nil
	}
	if !ok {
		limit = int64(maxErrorBody + c.longestSecret())
	}
	var b []byte
	var over bool
	var err error
	if off(offCap) {
		b, err = io.ReadAll(resp.Body)
	} else {
		b, over, err = readCapped(resp.Body, resp.ContentLength, limit, !ok)
	}
	switch {
	case !ok:
		// An error status is what counts; a body cut short does not
		// change it.
		st.body, st.bodyErr = b, nil
	case err != nil:
		st.body, st.bodyErr = b, fmt.Errorf("%w: %w", errBodyRead, err)
	case over:
		st.body = nil
		st.bodyErr = fmt.Errorf("%w: %w: over %d bytes", errBodyRead, errBodyTooLarge, limit)
	default:
		st.body, st.bodyErr = b, nil
	}
	return st.bodyErr
}

// readCapped reads r to its end, keeping at most limit bytes; over says
// that there was more. hint is the announced length (-1 when unknown):
// within the limit, the body is read into one buffer of that size (and a
// byte, to see the end). Otherwise it is read into chunks that grow to
// 1 MiB, never past limit+1 bytes in all, and joined at the end: a body of
// n bytes costs about 2n, one over the limit about limit, and it is
// dropped unless keepOver asks for its first limit bytes.
func readCapped(r io.Reader, hint, limit int64, keepOver bool) (b []byte, over bool, err error) {
	size := int64(32 << 10)
	if hint >= 0 && hint <= limit {
		size = hint + 1
	}
	var chunks [][]byte
	var total int64
	for {
		size = min(size, limit+1-total)
		buf := make([]byte, size)
		n, rerr := io.ReadFull(r, buf)
		chunks = append(chunks, buf[:n])
		total += int64(n)
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return join(chunks, total), false, nil
		case rerr != nil:
			return join(chunks, total), false, rerr
		case total > limit:
			if !keepOver {
				return nil, true, nil
			}
			return join(chunks, total)[:limit], true, nil
		}
		size = min(2*size, 1<<20)
	}
}

// join gives the chunks as one slice of total bytes, never nil.
func join(chunks [][]byte, total int64) []byte {
	if len(chunks) == 1 {
		return chunks[0]
	}
	b := make([]byte, 0, total)
	for _, c := range chunks {
		b = append(b, c...)
	}
	return b
}

func requestID(h http.Header) string {
	for _, k := range []string{"X-Request-Id", "Request-Id", "X-Correlation-Id"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}
