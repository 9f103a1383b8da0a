package convotest

// This file holds the routing: which provider, then which endpoint, serves
// a request. A new provider is one line in providers; a new endpoint is one
// line in its provider's route table.

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// providers maps a path's first segment to the API served below it.
var providers = map[string]func(*Server, call) response{
	"tenants": (*Server).serveTalqui,  // Talqui: /tenants/...
	"v1":      (*Server).serveTalkJS,  // TalkJS: /v1/{appId}/...
	"api":     (*Server).serveSelarti, // Selarti: /api/1.1/wf/{workflow}
}

// call is one request as a provider and an endpoint see it.
type call struct {
	r    *http.Request
	path string // the escaped path, as sent
	body []byte
	// segs are the unescaped path segments below the provider's prefix;
	// a provider may consume more of them (TalkJS its app id) before
	// dispatch.
	segs []string
	// params are the segments the route's pattern names, set by dispatch.
	params map[string]string
}

// param is the path segment the route's pattern names {name}.
func (c call) param(name string) string { return c.params[name] }

// route is one endpoint: a method and a pattern of the path below the
// provider's prefix, such as "conversations/{conversation}/messages",
// where a segment in braces matches any one segment and names it.
type route struct {
	method  string
	pattern string
	handle  func(*Server, call) response
}

// route serves a request by its path's first segment. The caller holds
// s.mu.
func (s *Server) route(r *http.Request, path string, body []byte) response {
	segs, ok := splitPath(path)
	if !ok {
		return notFound(path)
	}
	serve, ok := providers[segs[0]]
	if !ok {
		return notFound(path)
	}
	return serve(s, call{r: r, path: path, body: body, segs: segs[1:]})
}

// dispatch serves c with the route of routes matching its method and path:
// an unknown path is 404 and a known path with another method 405.
// check, when not nil, runs between finding the route and handling the
// request; an answer from it is sent instead.
func (s *Server) dispatch(routes []route, c call, check func(call) *response) response {
	var allow []string
	for _, rt := range routes {
		params, ok := matchPattern(rt.pattern, c.segs)
		if !ok {
			continue
		}
		if rt.method != c.r.Method {
			allow = append(allow, rt.method)
			continue
		}
		if check != nil {
			if resp := check(c); resp != nil {
				return *resp
			}
		}
		c.params = params
		return rt.handle(s, c)
	}
	if allow == nil {
		return notFound(c.path)
	}
	slices.Sort(allow)
	return methodNotAllowed(slices.Compact(allow)...)
}

// matchPattern matches path segments against a route pattern and returns
// the named segments.
func matchPattern(pattern string, segs []string) (map[string]string, bool) {
	parts := strings.Split(pattern, "/")
	if len(parts) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range parts {
		name, isParam := strings.CutPrefix(p, "{")
		switch {
		case isParam:
			if params == nil {
				params = map[string]string{}
			}
			params[strings.TrimSuffix(name, "}")] = segs[i]
		case p != segs[i]:
			return nil, false
		}
	}
	return params, true
}

// splitPath splits an escaped path into unescaped segments, so that an
// escaped "/" stays inside its segment. An empty segment (a double or
// trailing slash) or a bad escape makes it fail.
func splitPath(escaped string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, "/")
	if !ok || rest == "" {
		return nil, false
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil || v == "" {
			return nil, false
		}
		parts[i] = v
	}
	return parts, true
}
