package main

import (
	"context"
	"testing"
)

func TestRunsOffline(t *testing.T) {
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
