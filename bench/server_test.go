package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convokit/convo"
)

// The credentials and ids every client uses. The three clients send the
// same headers and bodies (TestClientsAgree checks it), so the server does
// the same work for each.
const (
	appID     = "app_bench"
	secretKey = "sk_test_6Yb1QhZ0rN3m"
	tenantID  = "3f1c2a9e-6b7d-4e51-9a0c-2d8e7f4b1a63"
	connID    = "pc-wa"
	connToken = "pct_5Xw9Lk2Qv7"
	userAgent = "convo-go/" + convo.Version // what the SDK sends
	convID    = "order_391_fc"
	userID    = "12081"
	senderID  = "8029"
	phone     = "+55 27 99999-9999"
	phoneWire = "5527999999999"
	pageLimit = 100
)

// Canned answers, in the wire shapes of talkjs.md §2–3 and talqui.md §4/§7.
var (
	upsertResp  = []byte(`{}`)
	sendResp    = []byte(`[{"id":"msg_4kT1Hb2y0cVw8ZqE3nJmR"}]`)
	sessionResp = []byte(`{"contact":{"contactID":"5527999999999","contactFullName":"Maria","contactExternalID":"5527999999999",` +
		`"createdAt":"2023-01-05T21:19:48.317Z","updatedAt":"2023-01-15T03:33:38.338Z"},` +
		`"session":{"sessionID":"d6814578-560a-4b4b-95b8-085d465aa032","contactID":"5527999999999",` +
		`"createdAt":"2023-01-05T21:19:48.317Z","operatorID":"52062885-83a7-465e-887b-3af324acebfa",` +
		`"sessionActive":true,"sessionChannel":"whatsapp","sessionKind":"transactional","sessionLastMessageID":"73b8998b-b022-4a32-96a2-b1e1d927a4dc",` +
		`"sessionMeta":{},"sessionRating":{"comment":null,"stars":0},"sessionStatus":0,"sessionTags":[],` +
		`"sessionType":"auto","tenantID":"3f1c2a9e-6b7d-4e51-9a0c-2d8e7f4b1a63","updatedAt":"2023-01-15T03:33:38.338Z"},` +
		`"message":{"messageID":"73b8998b-b022-4a32-96a2-b1e1d927a4dc","sessionID":"d6814578-560a-4b4b-95b8-085d465aa032",` +
		`"messageKey":"text","messageValue":"Hello! Your order is ready for pickup.","createdAt":"2023-01-05T21:19:48.317Z"}}`)
	messagePage = appendMessagePage(nil, 0, pageLimit)
)

// appendMessage appends message number n (ids msg_00000001, …) as TalkJS
// lists it (talkjs.md §3.7).
func appendMessage(b []byte, n int) []byte {
	b = append(b, `{"attachment":null,"content":[{"type":"text","children":["Hello Alice! Your order #391 shipped."]}],`...)
	b = append(b, `"conversationId":"order_391_fc","createdAt":`...)
	b = strconv.AppendInt(b, 1632919967033+int64(n)*1000, 10)
	b = append(b, `,"custom":{"orderId":"391"},"editedAt":null,"id":"`...)
	b = appendMessageID(b, n)
	b = append(b, `","location":null,"origin":"rest","readBy":["12081"],"referencedMessageId":null,`...)
	b = append(b, `"senderId":"8029","text":"Hello Alice! Your order #391 shipped.","type":"UserMessage"}`...)
	return b
}

func appendMessageID(b []byte, n int) []byte {
	return fmt.Appendf(b, "msg_%08d", n)
}

// appendMessagePage appends {"data":[…]} with messages first+1 … first+count.
func appendMessagePage(b []byte, first, count int) []byte {
	b = append(b, `{"data":[`...)
	for i := range count {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMessage(b, first+i+1)
	}
	return append(b, "]}"...)
}

// fakeAPI answers TalkJS and Talqui calls with canned bodies. It reads the
// request body, like a real server, before answering.
type fakeAPI struct {
	latency  time.Duration // added to every request
	messages int           // when > 0, the message list is generated: this many in all
	requests atomic.Int64
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	if f.latency > 0 {
		time.Sleep(f.latency)
	}
	p := r.URL.Path
	talkjs := strings.HasPrefix(p, "/v1/"+appID+"/")
	switch {
	case r.Method == http.MethodPut && talkjs && strings.HasPrefix(p[len(appID)+4:], "/users"):
		reply(w, upsertResp)
	case r.Method == http.MethodPost && talkjs && strings.HasSuffix(p, "/messages"):
		reply(w, sendResp)
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/tenants/") && strings.HasSuffix(p, "/sessions"):
		reply(w, sessionResp)
	case r.Method == http.MethodGet && talkjs && strings.HasSuffix(p, "/messages"):
		if f.messages == 0 {
			reply(w, messagePage)
			return
		}
		reply(w, f.generatePage(r))
	default:
		http.Error(w, `{"errorCode":"NOT_FOUND","reason":"no such route"}`, http.StatusNotFound)
	}
}

// generatePage builds the page after startingAfter (msg_%08d) of a list of
// f.messages messages, so that a long list costs the server no memory.
func (f *fakeAPI) generatePage(r *http.Request) []byte {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 {
		limit = 10
	}
	after := 0
	if s := q.Get("startingAfter"); s != "" {
		after, _ = strconv.Atoi(strings.TrimPrefix(s, "msg_"))
	}
	count := min(limit, max(0, f.messages-after))
	return appendMessagePage(make([]byte, 0, 64+560*count), after, count)
}

var contentTypeJSON = []string{"application/json"}

func reply(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

func newServer(tb testing.TB, f *fakeAPI) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	return srv
}
