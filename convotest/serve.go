package convotest

// This file holds the HTTP handler of the fake: each request is read,
// recorded, given its fault, handled under the lock, and answered.

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// maxBody is the largest request body the fake reads; a larger one gets
// 413.
const maxBody = 1 << 20

// jsonContentType is the Content-Type of every answer.
const jsonContentType = "application/json; charset=utf-8"

// response is a handler's answer, built under the lock and written after.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	path := r.URL.EscapedPath()
	idx, f := s.record(r, path, body)
	s.wait(f)
	if f.fails() && !f.AfterApply {
		s.setStatus(idx, s.playFault(w, r, f, nil))
		return
	}
	resp := s.handle(r, path, body, readErr)
	if f.fails() {
		s.setStatus(idx, s.playFault(w, r, f, resp.body))
		return
	}
	writeResponse(w, resp)
	s.setStatus(idx, resp.status)
}

// handle answers a request whose body was read (up to one byte more than
// maxBody) with readErr.
func (s *Server) handle(r *http.Request, path string, body []byte, readErr error) response {
	switch {
	case readErr != nil:
		return errorResponse(http.StatusBadRequest, "reading body: "+readErr.Error())
	case len(body) > maxBody:
		return errorResponse(http.StatusRequestEntityTooLarge, "body larger than 1 MiB")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.route(r, path, body)
}

func writeResponse(w http.ResponseWriter, resp response) {
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// jsonResponse marshals v as the body.
func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		panic("convotest: encoding a response: " + err.Error())
	}
	return response{status: status, body: b}
}

// emptyOK is the answer of a write: 200 {}.
func emptyOK() response { return jsonResponse(http.StatusOK, struct{}{}) }

// errorResponse is the error body both fakes use: {"message": "..."}.
func errorResponse(status int, msg string) response {
	return jsonResponse(status, map[string]string{"message": msg})
}

// badRequest answers 400 with every problem found, in order, as a
// message (Talqui's shape).
func badRequest(p problemList) response {
	return errorResponse(http.StatusBadRequest, p.text())
}

// talkJSBadRequest answers 400 the way TalkJS does: the reasons of each
// field, {"reasons": {"participants": ["must be an array of user ids"]}}.
func talkJSBadRequest(p problemList) response {
	return jsonResponse(http.StatusBadRequest, map[string]any{"reasons": p.reasons()})
}

func notFound(path string) response {
	return errorResponse(http.StatusNotFound, "no route for "+path)
}

// methodNotAllowed answers 405 with the Allow header.
func methodNotAllowed(allow ...string) response {
	resp := errorResponse(http.StatusMethodNotAllowed, "method not allowed; allowed: "+strings.Join(allow, ", "))
	resp.header = http.Header{"Allow": {strings.Join(allow, ", ")}}
	return resp
}
