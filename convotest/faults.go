package convotest

// This file holds the faults: failures a test queues for the fake to play.

import (
	"net"
	"net/http"
	"strconv"
	"time"
)

// Fault is a failure the fake plays instead of (or after) handling a
// matching request. Inject it; the next Times matching requests get it.
//
// There are two kinds, and tests of "at most once" need both:
//   - fail before acting (AfterApply false, the default): the request is
//     not handled at all. Nothing is stored; the client gets Status, or a
//     dropped connection when Drop is set.
//   - act then fail (AfterApply true): the request is handled and its
//     effects stay (a session opened, a message stored), then the real
//     answer is thrown away and the client gets Status, or a dropped
//     connection when Drop is set. The client cannot tell that the server
//     acted.
//
// A fault with neither Status nor Drop only delays the request, which is
// then handled normally; with a client timeout shorter than Delay, that is
// a request the server handled after the client gave up.
type Fault struct {
	// Method matches the request method; empty matches any.
	Method string
	// Path matches the escaped request path exactly, or, when it ends in
	// "*", as a prefix ("/v1/convotest-app/*"). Empty matches any.
	Path string
	// Times is how many matching requests get the fault; 0 means 1.
	Times int
	// Status is the status answered; 0 answers none (see Drop).
	Status int
	// RetryAfter, if not empty, is sent as the Retry-After header with
	// Status: seconds ("2") or an HTTP date.
	RetryAfter string
	// Body is sent with Status; empty sends {"message": "<status text>"}.
	// It is sent as application/json.
	Body string
	// Header holds more headers sent with Status, say a Location for a
	// redirect.
	Header http.Header
	// Trickle sends Status and the headers, announcing the whole body
	// (the handler's answer with AfterApply, else Body), then the body
	// one byte every Trickle, until it is sent, the client gives up or
	// the server closes: a body slower than the client's timeout.
	Trickle time.Duration
	// Delay is waited before the request is handled (or the fault
	// answered). The wait goes on when the client gives up, like a slow
	// server's, and ends early only when the server is closed.
	Delay time.Duration
	// Drop resets the connection (TCP RST) without answering. With
	// AfterApply, the request is handled first.
	Drop bool
	// Truncate sends Status and the headers, announcing the whole body
	// (the handler's answer with AfterApply, else Body), then only half
	// of it, and resets the connection: a reset after the response
	// started.
	Truncate bool
	// AfterApply handles the request before failing it: see the type's
	// documentation.
	AfterApply bool
}

// Inject queues faults. Each request takes the first queued fault that
// matches it; a fault leaves the queue once it has been used Times times.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range faults {
		if f.Times <= 0 {
			f.Times = 1
		}
		s.faults = append(s.faults, &f)
	}
}

// PendingFaults is how many uses are left in the fault queue, added up.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += f.Times
	}
	return n
}

// ClearFaults empties the fault queue.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns a copy of the first queued fault matching the request
// and uses it up once. The caller holds s.mu.
func (s *Server) takeFault(method, path string) *Fault {
	for i, f := range s.faults {
		if !matches(f.Method, f.Path, method, path) {
			continue
		}
		got := *f
		got.Times = 1
		f.Times--
		if f.Times == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		s.stats.FaultsApplied++
		return &got
	}
	return nil
}

// fails reports whether f answers a failure (a status or a dropped
// connection) rather than only delaying the request.
func (f *Fault) fails() bool { return f != nil && (f.Status != 0 || f.Drop) }

// wait sleeps f's Delay, cut short when the server closes.
func (s *Server) wait(f *Fault) {
	if f == nil || f.Delay <= 0 {
		return
	}
	t := time.NewTimer(f.Delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closing:
	}
}

// playFault answers f's status, or resets the connection. handled is the
// handler's answer body when the request was handled (AfterApply). It
// returns the status sent, 0 for a reset.
func (s *Server) playFault(w http.ResponseWriter, r *http.Request, f *Fault, handled []byte) int {
	if f.Drop {
		resetConn(w)
		return 0
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	for k, v := range f.Header {
		w.Header()[http.CanonicalHeaderKey(k)] = v
	}
	body := []byte(f.Body)
	switch {
	case f.Body != "":
	case (f.Truncate || f.Trickle > 0) && handled != nil:
		body = handled
	default:
		body = errorResponse(f.Status, http.StatusText(f.Status)).body
	}
	w.Header().Set("Content-Type", jsonContentType)
	if f.Truncate {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(f.Status)
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		resetConn(w)
		return f.Status
	}
	if f.Trickle > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(f.Status)
		s.trickle(w, r, body, f.Trickle)
		return f.Status
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write(body)
	return f.Status
}

// trickle writes body one byte every d, until it is sent, the client is
// gone or the server closes.
func (s *Server) trickle(w http.ResponseWriter, r *http.Request, body []byte, d time.Duration) {
	fl, _ := w.(http.Flusher)
	t := time.NewTicker(d)
	defer t.Stop()
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
}

// resetConn closes the request's connection with a TCP RST, answering
// nothing.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("convotest: connection cannot be hijacked to drop it")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic("convotest: hijacking the connection: " + err.Error())
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
