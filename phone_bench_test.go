package convo

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkPhone: the phone check of a Sessions.Start, as the bench
// module's SessionStart writes the number, and as digits only.
func BenchmarkPhone(b *testing.B) {
	for _, in := range []string{"+55 27 99999-9999", "5527999999999"} {
		b.Run("in="+in, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				var ps problems
				if got := ps.phone("Phone", in, ""); got != "5527999999999" || ps != nil {
					b.Fatalf("%q: got %q, %v", in, got, ps)
				}
			}
		})
	}
}

// BenchmarkNationalPhone: a Brazilian mobile without +55, read with the
// default country BR, by nationalPhone and by the library alone.
func BenchmarkNationalPhone(b *testing.B) {
	for _, read := range []struct {
		name string
		f    func(d, region string) (string, bool)
	}{{"nationalPhone", nationalPhone}, {"library", nationalPhoneLib}} {
		b.Run("by="+read.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if got, ok := read.f("27999999999", "BR"); got != "5527999999999" || !ok {
					b.Fatalf("got %q, %v", got, ok)
				}
			}
		})
	}
}

// startedTransport answers every request with a started session, in
// memory: what is left is the SDK's own work.
type startedTransport struct{}

func (startedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader([]byte(startAnswer))),
		ContentLength: int64(len(startAnswer)), Request: r,
	}, nil
}

// BenchmarkSessionStartNational: a WhatsApp session start whose phone is
// national, with WithDefaultCountry("BR"), on an in-memory transport.
func BenchmarkSessionStartNational(b *testing.B) {
	c, err := NewClient(WithTalqui(testTenant, PluginConnection{ID: "pc-wa", Token: testTokenWA}),
		WithDefaultCountry("BR"), WithHTTPClient(&http.Client{Transport: startedTransport{}}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := WhatsAppBusiness{Phone: "27 99999-9999", Name: "Maria", Text: "Hello! Your order is ready for pickup."}
	b.ReportAllocs()
	for range b.N {
		s, err := c.Sessions.Start(ctx, req)
		if err != nil || s.Session == nil {
			b.Fatal(err)
		}
	}
}
