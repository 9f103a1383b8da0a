package convotest

// This file holds the request log: what the fake received, for a test's
// assertions.

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RecordedRequest is one request the fake received, as it received it.
// Header holds the Authorization header too: this is a test fake. Do not
// log a RecordedRequest's Header.
type RecordedRequest struct {
	Method string
	// Path is the escaped path as sent, such as /v1/app/users/a%2Fb.
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	// Time is when the fake received the request.
	Time time.Time
	// Status is what the fake answered, or 0 when it dropped the
	// connection instead.
	Status int
	// Fault is the injected fault this request got, or nil.
	Fault *Fault
}

// Requests returns a copy of every request received, oldest first.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordedRequest, len(s.requests))
	for i, r := range s.requests {
		out[i] = r.clone()
	}
	return out
}

// ClearRequests forgets the recorded requests only.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// RequestCount counts the recorded requests with the method (any when
// empty) and a path matching pattern: the escaped path exactly, or, when
// pattern ends in "*", any path that starts with what comes before it.
func (s *Server) RequestCount(method, pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if matches(method, pattern, r.Method, r.Path) {
			n++
		}
	}
	return n
}

// record logs a request as it arrives and takes the fault it gets, if
// any. It returns the request's index in the log, for setStatus.
func (s *Server) record(r *http.Request, path string, body []byte) (int, *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.takeFault(r.Method, path)
	s.requests = append(s.requests, RecordedRequest{
		Method: r.Method,
		Path:   path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
		Body:   body,
		Time:   time.Now(),
		Fault:  f,
	})
	return len(s.requests) - 1, f
}

// setStatus notes the status answered to the request at idx; 0 for a
// dropped connection.
func (s *Server) setStatus(idx, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < len(s.requests) { // Reset may have cleared the log meanwhile
		s.requests[idx].Status = code
	}
}

// matches reports whether a request's method and escaped path match a
// method (any when empty) and a pattern (see RequestCount).
func matches(method, pattern, gotMethod, gotPath string) bool {
	if method != "" && !strings.EqualFold(method, gotMethod) {
		return false
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(gotPath, prefix)
	}
	return pattern == "" || pattern == gotPath
}

// clone is a deep copy, so that a caller cannot change the log.
func (r RecordedRequest) clone() RecordedRequest {
	out := r
	out.Query = cloneValues(r.Query)
	out.Header = r.Header.Clone()
	out.Body = bytes.Clone(r.Body)
	if r.Fault != nil {
		f := *r.Fault
		out.Fault = &f
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
