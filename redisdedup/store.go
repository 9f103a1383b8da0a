// Package redisdedup is a convo.DedupStore on Redis, so that several
// replicas of a webhook receiver share one memory of the deliveries they
// handled: a redelivery that lands on another replica is not handled again.
//
// It lives in its own module (github.com/convokit/convo/redisdedup) so that
// the SDK does not depend on a Redis client. It takes a go-redis v9
// UniversalClient, so a single node, Sentinel and Cluster all work (every
// call touches one key).
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	store := redisdedup.New(rdb)
//	http.Handle("/hooks/selarti", convo.NewSelartiHandler(fn, convo.WithDedupStore(store)))
//
// Each id is one key under the prefix (default "convo:dedup:"): while a
// delivery is handled, the key holds the claim's token and expires after
// the lease (default 2 minutes), so a replica that dies in the callback does
// not block the redelivery forever; once handled, it holds "done" for the
// retention (default 24 hours). Memory in Redis is thus bounded by retention
// × delivery rate; ids longer than 64 bytes are stored as their SHA-256.
//
// A handler answers 503 when the store cannot reach Redis, so that the
// sender may retry. Of the providers, TalkJS retries a failed delivery once
// and Selarti not at all. The guarantee that a delivery is handled once
// holds across a Redis restart only when Redis persists its data: run it
// with appendonly yes (and appendfsync always to survive a crash of the
// host without losing the last second of claims).
package redisdedup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
)

// The defaults of New.
const (
	DefaultLease     = 2 * time.Minute
	DefaultRetention = 24 * time.Hour
	DefaultPrefix    = "convo:dedup:"
)

// maxIDLen is the longest id kept as it is in a key; longer ones are hashed.
const maxIDLen = 64

// ErrClaimLost is returned by Complete and Release when the id is claimed by
// another Store: this Store's lease expired and another replica claimed the
// id meanwhile. The other's claim is left as it is. Complete also returns it
// for an id this Store never claimed that another Store is handling.
var ErrClaimLost = errors.New("redisdedup: the id is claimed by another store (lease expired)")

// claimScript claims KEYS[1] for the token ARGV[1] with a lease of ARGV[2]
// milliseconds when the key is free, and tells the state before the call:
// 1 new, 2 in progress, 3 done. A key that already holds the token was
// claimed by this very claim (a retry after a lost reply): it is new.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then return 1 end
if v == 'done' then return 3 end
return 2
`)

// completeScript marks KEYS[1] done for ARGV[2] milliseconds when it holds
// the token ARGV[1] or is free: 1 marked, 0 already done, -1 claimed by
// another token.
var completeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if (not v) or (ARGV[1] ~= '' and v == ARGV[1]) then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
if v == 'done' then return 0 end
return -1
`)

// releaseScript deletes KEYS[1] when it holds the token ARGV[1]: 1 deleted,
// 0 free or done, -1 claimed by another token.
var releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if (not v) or v == 'done' then return 0 end
return -1
`)

// Store is a convo.DedupStore on Redis. Create it with New; it is safe for
// concurrent use. Several Store values, in one process or in several, that
// use the same Redis and prefix share their deliveries.
//
// Each Store remembers the token of each claim it holds until Complete or
// Release, so it changes only its own claims in Redis. Calls on one id
// through one Store count as one holder: if that Store claims an id again
// after its own lease expired, a late Complete or Release of the first claim
// acts on the second.
type Store struct {
	rdb       redis.UniversalClient
	lease     time.Duration
	retention time.Duration
	prefix    string

	tokenBase string        // random, per Store
	seq       atomic.Uint64 // makes each claim's token unique

	mu     sync.Mutex
	tokens map[string]string // key -> token of the claim this Store holds

	inbox inboxOptions // the options only NewInbox reads (inbox.go)
}

var _ convo.DedupStore = (*Store)(nil)

// Option configures a Store in New.
type Option func(*Store)

// WithLease sets how long an in-progress claim lives when it is neither
// completed nor released (the replica died in the callback): after it, a
// redelivery of the id is handled. Make it longer than the callback can
// take. The default is DefaultLease (2 minutes). It panics if d is less than
// a millisecond.
func WithLease(d time.Duration) Option {
	if d < time.Millisecond {
		panic("redisdedup: WithLease: the lease must be at least 1ms")
	}
	return func(s *Store) { s.lease = d }
}

// WithRetention sets how long a handled id is remembered: a redelivery
// within it is not handled again. The default is DefaultRetention (24
// hours). It panics if d is less than a millisecond.
func WithRetention(d time.Duration) Option {
	if d < time.Millisecond {
		panic("redisdedup: WithRetention: the retention must be at least 1ms")
	}
	return func(s *Store) { s.retention = d }
}

// WithPrefix sets the prefix of the keys, to keep them apart from other
// data or to give several receivers separate memories on one Redis. The
// default is DefaultPrefix ("convo:dedup:"). It panics if prefix is empty.
func WithPrefix(prefix string) Option {
	if prefix == "" {
		panic("redisdedup: WithPrefix: empty prefix")
	}
	return func(s *Store) { s.prefix = prefix }
}

// New returns a Store on rdb. It does not contact Redis: an unreachable
// Redis shows as an error of Claim, which the handlers answer with 503. It
// panics if rdb is nil.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	if rdb == nil {
		panic("redisdedup: New: nil client")
	}
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	s := &Store{
		rdb:       rdb,
		lease:     DefaultLease,
		retention: DefaultRetention,
		prefix:    DefaultPrefix,
		tokenBase: hex.EncodeToString(b[:]),
		tokens:    make(map[string]string),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Key returns the Redis key that holds id: the prefix and the id, or the
// prefix and "sha256:" and the id's SHA-256 in hex when the id is longer
// than 64 bytes (a hashed key never equals a plain one).
func (s *Store) Key(id string) string {
	if len(id) > maxIDLen {
		sum := sha256.Sum256([]byte(id))
		return s.prefix + "sha256:" + hex.EncodeToString(sum[:])
	}
	return s.prefix + id
}

// Claim implements convo.DedupStore in one round trip: it claims id for
// the lease when id is neither in progress nor done, and reports the state
// before the call.
func (s *Store) Claim(ctx context.Context, id string) (convo.ClaimState, error) {
	key := s.Key(id)
	token := s.tokenBase + ":" + strconv.FormatUint(s.seq.Add(1), 36)
	n, err := claimScript.Run(ctx, s.rdb, []string{key}, token, ms(s.lease)).Int64()
	if err != nil {
		// The claim may have been made and its reply lost: it then ends
		// with the lease.
		return 0, fmt.Errorf("redisdedup: claim: %w", err)
	}
	switch n {
	case 1:
		s.mu.Lock()
		s.tokens[key] = token
		s.mu.Unlock()
		return convo.ClaimNew, nil
	case 2:
		return convo.ClaimInProgress, nil
	case 3:
		return convo.ClaimDone, nil
	}
	return 0, fmt.Errorf("redisdedup: claim: unexpected answer %d", n)
}

// Complete implements convo.DedupStore: it marks id done for the retention
// when this Store holds its claim, or when nobody does (a claim whose lease
// expired, or no claim). It returns ErrClaimLost, and changes nothing, when
// another Store holds the claim. When it fails (Redis unreachable), the
// claim stays in progress until the lease ends; a redelivery after that is
// handled again.
func (s *Store) Complete(ctx context.Context, id string) error {
	key := s.Key(id)
	token := s.takeToken(key)
	n, err := completeScript.Run(ctx, s.rdb, []string{key}, token, ms(s.retention)).Int64()
	if err != nil {
		// The claim, if it is still this Store's, ends with the lease.
		return fmt.Errorf("redisdedup: complete: %w", err)
	}
	if n < 0 {
		return ErrClaimLost
	}
	return nil
}

// Release implements convo.DedupStore: it forgets id when this Store holds
// its claim, so a redelivery is handled. It does nothing for an id this
// Store does not hold, and returns ErrClaimLost when another Store holds
// the claim. When it fails, the claim ends with the lease.
func (s *Store) Release(ctx context.Context, id string) error {
	key := s.Key(id)
	token := s.takeToken(key)
	if token == "" {
		return nil
	}
	n, err := releaseScript.Run(ctx, s.rdb, []string{key}, token).Int64()
	if err != nil {
		return fmt.Errorf("redisdedup: release: %w", err)
	}
	if n < 0 {
		return ErrClaimLost
	}
	return nil
}

// takeToken removes and returns the token of this Store's claim on key, ""
// when it holds none.
func (s *Store) takeToken(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	token := s.tokens[key]
	delete(s.tokens, key)
	return token
}

// ms is d in whole milliseconds, at least 1, as Redis's PX wants.
func ms(d time.Duration) int64 {
	if n := d.Milliseconds(); n > 0 {
		return n
	}
	return 1
}
