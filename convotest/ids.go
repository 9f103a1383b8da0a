package convotest

// This file holds the ids and times the fake makes up.

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// newUUID gives a random version-4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomBase62 gives n random characters of [0-9A-Za-z].
func randomBase62(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = base62[int(b[i])%62]
	}
	return string(b)
}

// nowMillis is the time in Unix milliseconds, as TalkJS writes times.
func nowMillis() int64 { return time.Now().UnixMilli() }
