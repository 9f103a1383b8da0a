package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/redisdedup"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redisAddr is the Redis the test uses: CONVO_REDIS_ADDR, as CI sets it.
// Without it the test skips, or fails under CONVO_REDIS_REQUIRED.
func redisAddr(t *testing.T) string {
	addr := os.Getenv("CONVO_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CONVO_REDIS_REQUIRED") != "" {
			t.Fatal("CONVO_REDIS_REQUIRED is set but CONVO_REDIS_ADDR is not")
		}
		t.Skip("CONVO_REDIS_ADDR is not set (a running Redis for this test)")
	}
	return addr
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frob"}, {"list", "x"}, {"replay"}, {"replay", "selarti"}, {"replay", "-all", "selarti", "1"},
		{"replay", "talqui", "1"},
	} {
		code, _, stderr := runCLI(args...)
		assert.Equal(t, exitUsage, code, "%q", args)
		assert.NotEmpty(t, stderr, "%q", args)
	}
	code, _, stderr := runCLI("replay", "talqui", "1")
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "convo-inbox replay: PROVIDER must be selarti or talkjs, not \"talqui\"\n", stderr)
}

// TestListAndReplay makes two dead letters with an Inbox, lists them,
// replays one, then all.
func TestListAndReplay(t *testing.T) {
	addr := redisAddr(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "convo:test:cli:" + hex.EncodeToString(b[:]) + ":"
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	in := redisdedup.NewInbox(rdb, redisdedup.WithPrefix(prefix), redisdedup.WithInboxAttempts(1),
		redisdedup.WithInboxLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	in.Handle(convo.ProviderSelarti, func(context.Context, convo.Delivery) error {
		return fmt.Errorf("gone: %w", convo.ErrPermanent)
	})
	at := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for _, d := range []convo.Delivery{
		{Provider: convo.ProviderSelarti, ID: "m1", Key: "chat-1", Body: []byte("{}"), Received: at},
		{Provider: convo.ProviderSelarti, ID: "m2", Body: []byte("{\"a\":1}"), Received: at.Add(time.Second)},
	} {
		_, err := in.Add(ctx, d)
		require.NoError(t, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() { ended <- in.Run(rctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n < 2; {
		require.True(t, time.Now().Before(deadline), "two dead letters after 30s")
		time.Sleep(5 * time.Millisecond)
		n = 0
		for _, err := range in.DeadLetters(ctx) {
			require.NoError(t, err)
			n++
		}
	}
	cancel()
	require.NoError(t, <-ended)

	code, stdout, stderr := runCLI("-addr", addr, "-prefix", prefix, "list")
	require.Equal(t, exitOK, code, stderr)
	lines := []string{
		"PROVIDER  ID  KEY     ATTEMPTS  RECEIVED              BYTES",
		"selarti   m1  chat-1  1         2026-12-07T18:00:00Z  2",
		"selarti   m2          1         2026-12-07T18:00:01Z  7",
	}
	// m1 and m2 became dead letters in either order.
	assert.ElementsMatch(t, lines[1:], splitLines(stdout)[1:])
	assert.Equal(t, lines[0], splitLines(stdout)[0])

	code, stdout, _ = runCLI("-addr", addr, "-prefix", prefix, "replay", "selarti", "m1")
	assert.Equal(t, exitOK, code)
	assert.Equal(t, "replayed selarti m1\n", stdout)
	code, _, stderr = runCLI("-addr", addr, "-prefix", prefix, "replay", "selarti", "m1")
	assert.Equal(t, exitError, code)
	assert.Equal(t, "convo-inbox: redisdedup: inbox: replay selarti \"m1\": convo: inbox: not a dead letter\n", stderr)

	code, stdout, _ = runCLI("-addr", addr, "-prefix", prefix, "replay", "-all")
	assert.Equal(t, exitOK, code)
	assert.Equal(t, "replayed selarti m2\n", stdout)
	code, stdout, _ = runCLI("-addr", addr, "-prefix", prefix, "list")
	assert.Equal(t, exitOK, code)
	assert.Equal(t, []string{"PROVIDER  ID  KEY  ATTEMPTS  RECEIVED  BYTES"}, splitLines(stdout))
}

func splitLines(s string) []string {
	var out []string
	for _, l := range bytes.Split(bytes.TrimRight([]byte(s), "\n"), []byte("\n")) {
		out = append(out, string(bytes.TrimRight(l, " ")))
	}
	return out
}
