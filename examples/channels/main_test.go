package main

import (
	"bytes"
	"context"
	"testing"
)

func TestEveryChannelOffline(t *testing.T) {
	t.Setenv("TALQUI_TENANT", "")
	t.Setenv("TALQUI_CONNECTION_ID", "")
	t.Setenv("TALQUI_TOKEN", "")
	want := map[string]string{
		"whatsapp-official": `value "order_update"`,
		"whatsapp-business": `value "Hi Maria, your order #391 has shipped."`,
		"ifood":             "external id ORDER-1234-5678",
		"telegram":          "on urn:talqui:telegram:0",
		"invalid":           "ModelID: required",
	}
	for name, line := range want {
		var out bytes.Buffer
		if err := run(context.Background(), &out, name, ""); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Contains(out.Bytes(), []byte(line)) {
			t.Errorf("%s: output lacks %q:\n%s", name, line, out.String())
		}
	}
	if err := run(context.Background(), &bytes.Buffer{}, "fax", ""); err == nil {
		t.Error("an unknown channel must fail")
	}
}
