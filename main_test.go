package convo

import (
	"io"
	"log/slog"
	"os"
	"testing"
)

// TestMain keeps the webhook handlers' default logging (slog.Default) out
// of the test output; the tests of that logging set their own default and
// restore this one.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
