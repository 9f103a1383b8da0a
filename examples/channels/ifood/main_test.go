package main

import (
	"context"
	"testing"
)

func TestRunsOffline(t *testing.T) {
	for _, k := range []string{"TALQUI_TENANT", "TALQUI_CONNECTION_ID", "TALQUI_TOKEN"} {
		t.Setenv(k, "")
	}
	if err := run(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
}
