// Package redisdedup is a convo.DedupStore on Redis, so that several
// replicas of a webhook receiver share one memory of the deliveries they
// handled: a redelivery that lands on another replica is not handled again.
//
// It lives in its own module (github.com/convokit/convo/redisdedup) so that
// the SDK does not depend on a Redis client. It takes a go-redis v9
// UniversalClient, so a single node, Sentinel (redis.NewFailoverClient) and
// Cluster (redis.NewClusterClient) all work (every call touches one key).
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	store := redisdedup.New(rdb)
//	http.Handle("/hooks/selarti", convo.NewSelartiHandler(fn, convo.WithDedupStore(store)))
//
// Each id is one key under the prefix (default "convo:dedup:"): while a
// delivery is handled, the key holds the claim's token and expires after
// the lease (default 2 minutes), which the handler renews every third of it
// while the callback runs, so a replica that dies in the callback does not
// block the redelivery for longer; once handled, it holds "done" for the
// retention (default 24 hours). Memory in Redis is thus bounded by
// retention × delivery rate; ids longer than 64 bytes are stored as their
// SHA-256.
//
// Through a failover (a Sentinel or Cluster master that dies), a call that
// meets a refused connection or a MOVED, CLUSTERDOWN, READONLY, LOADING,
// MASTERDOWN or TRYAGAIN answer makes a ClusterClient reload its slot map
// and is tried again with backoff within the call's deadline (the
// handler's WithDedupTimeout, 2 s by default). The first call checks the
// server: a single address that is a Cluster node is refused with
// ErrClusterNode, and a maxmemory-policy that can evict the store's keys is
// logged as a warning. See the README's "Production" section for the
// settings and what each failure costs.
package redisdedup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// ErrClaimLost is convo.ErrClaimLost: Renew, Complete and Release return it
// when another claim holds the id (this claim's lease ran out and another
// replica claimed the id meanwhile). The other's claim is left as it is.
var ErrClaimLost = convo.ErrClaimLost

// ErrClusterNode is returned by every call of a Store whose client is a
// single-node client (redis.NewClient, or NewUniversalClient with one
// address) of a Redis Cluster node: two keys in three would fail with MOVED.
// Use redis.NewClusterClient, or NewUniversalClient with the nodes'
// addresses and IsClusterMode.
var ErrClusterNode = errors.New("redisdedup: the server is a Redis Cluster node: use redis.NewClusterClient (or NewUniversalClient with IsClusterMode)")

// The scripts. Each answers a number: see the comment of each.
const (
	// claimSrc claims KEYS[1] for the token ARGV[1] with a lease of ARGV[2]
	// milliseconds when the key is free, and tells the state before the
	// call: 1 new, 2 in progress, 3 done. A key that already holds the
	// token was claimed by this very claim (a retry after a lost reply): it
	// is new.
	claimSrc = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then return 1 end
if v == 'done' then return 3 end
return 2
`
	// renewSrc extends KEYS[1] to ARGV[2] milliseconds when it holds the
	// token ARGV[1]: 1 renewed, -1 not held by the token.
	renewSrc = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return -1
`
	// completeSrc marks KEYS[1] done for ARGV[2] milliseconds when it holds
	// the token ARGV[1] or is free: 1 marked, 0 already done, -1 claimed by
	// another token.
	completeSrc = `
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
if v == 'done' then return 0 end
return -1
`
	// releaseSrc deletes KEYS[1] when it holds the token ARGV[1]: 1
	// deleted, 0 free or done, -1 claimed by another token.
	releaseSrc = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if (not v) or v == 'done' then return 0 end
return -1
`
)

var (
	claimScript    = redis.NewScript(claimSrc)
	renewScript    = redis.NewScript(renewSrc)
	completeScript = redis.NewScript(completeSrc)
	releaseScript  = redis.NewScript(releaseSrc)

	// The scripts as the arguments of EVALSHA and EVAL, boxed once.
	claimLua    = luaArgs{claimScript.Hash(), claimSrc}
	renewLua    = luaArgs{renewScript.Hash(), renewSrc}
	completeLua = luaArgs{completeScript.Hash(), completeSrc}
	releaseLua  = luaArgs{releaseScript.Hash(), releaseSrc}
)

// luaArgs is a script's hash and source, as command arguments.
type luaArgs struct{ sha, src any }

// Store is a convo.DedupStore on Redis. Create it with New; it is safe for
// concurrent use. Several Store values, in one process or in several, that
// use the same Redis and prefix share their deliveries. A claim is held by
// its token (the handler makes one per claim): only that token renews,
// completes or releases it.
type Store struct {
	rdb redis.UniversalClient
	options

	// The lease and the retention in milliseconds, boxed once for the
	// scripts' arguments.
	leaseArg, retentionArg any

	checked atomic.Bool // the server was checked (checkServer)
	checkMu sync.Mutex
	refused error // ErrClusterNode once found; under checkMu, then read-only
}

var _ convo.DedupStore = (*Store)(nil)

// options are the settings an Option sets.
type options struct {
	lease, retention time.Duration
	prefix           string
	waitReplicas     int
	waitTimeout      time.Duration
	logger           *slog.Logger
	inbox            inboxOptions // the options only NewInbox reads (inbox.go)
}

// Option configures a Store in New.
type Option func(*options)

// WithLease sets how long an in-progress claim lives unrenewed: the handler
// renews it every third of the lease while the callback runs, so it is how
// long a replica that died in the callback blocks the redelivery. The
// default is DefaultLease (2 minutes). It panics if d is less than a
// millisecond.
func WithLease(d time.Duration) Option {
	if d < time.Millisecond {
		panic("redisdedup: WithLease: the lease must be at least 1ms")
	}
	return func(o *options) { o.lease = d }
}

// WithRetention sets how long a handled id is remembered: a redelivery
// within it is not handled again. The default is DefaultRetention (24
// hours). It panics if d is less than a millisecond.
func WithRetention(d time.Duration) Option {
	if d < time.Millisecond {
		panic("redisdedup: WithRetention: the retention must be at least 1ms")
	}
	return func(o *options) { o.retention = d }
}

// WithPrefix sets the prefix of the keys, to keep them apart from other
// data or to give several receivers separate memories on one Redis. The
// default is DefaultPrefix ("convo:dedup:"). It panics if prefix is empty.
func WithPrefix(prefix string) Option {
	if prefix == "" {
		panic("redisdedup: WithPrefix: empty prefix")
	}
	return func(o *options) { o.prefix = prefix }
}

// WithWaitReplicas makes a claim and a done mark wait until n replicas
// have acknowledged it (Redis WAIT n timeout), so that a failover to one of
// them does not forget it: the handler answers only once the mark is on
// the replicas. A master that dies during the wait fails the call, which is
// tried again on the new master. A write that fewer than n replicas
// acknowledged in time (a replica down or lagging) is kept on the master
// and logged as a warning: a failover then may forget it. Each write costs
// the time the replicas take, up to timeout (keep it well under the
// handler's WithDedupTimeout): while fewer than n replicas are up, every
// Claim and Complete waits the whole timeout. An Inbox waits so after each
// of its writes (see NewInbox). It panics if n is less than 1 or timeout
// less than a millisecond.
func WithWaitReplicas(n int, timeout time.Duration) Option {
	if n < 1 || timeout < time.Millisecond {
		panic("redisdedup: WithWaitReplicas: want at least 1 replica and a timeout of at least 1ms")
	}
	return func(o *options) { o.waitReplicas, o.waitTimeout = n, timeout }
}

// WithLogger sets the logger of the store's warnings (an eviction policy
// that can drop its keys, a claim not replicated in time). The default is
// slog.Default(), as found when it logs.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// New returns a Store on rdb. It does not contact Redis: the first call
// checks the server (see ErrClusterNode and the eviction warning), and an
// unreachable Redis shows as an error of Claim, which the handlers answer
// with 503 or handle fail-open. It panics if rdb is nil.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	if rdb == nil {
		panic("redisdedup: New: nil client")
	}
	s := &Store{rdb: rdb, options: options{lease: DefaultLease, retention: DefaultRetention, prefix: DefaultPrefix}}
	for _, o := range opts {
		o(&s.options)
	}
	s.leaseArg, s.retentionArg = ms(s.lease), ms(s.retention)
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

// HonorsDeadline reports whether every call returns by its context's
// deadline: when the client has ContextTimeoutEnabled (go-redis then sets
// the socket deadlines from the context). The handlers then call the store
// directly rather than from a goroutine each, which saves a goroutine
// handoff per call: on a loaded machine, serial deliveries took 2 to 3
// times as long without it. Without it, the handlers still answer in time,
// from their own goroutines.
func (s *Store) HonorsDeadline() bool {
	switch c := s.rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Lease implements convo.DedupStore.
func (s *Store) Lease() time.Duration { return s.lease }

// Claim implements convo.DedupStore in one round trip (two with
// WithWaitReplicas): it claims id for token for the lease when id is
// neither in progress nor done, and reports the state before the call.
func (s *Store) Claim(ctx context.Context, id, token string) (convo.ClaimState, error) {
	n, err := s.run(ctx, "claim", &claimLua, id, token, s.leaseArg)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return convo.ClaimNew, nil
	case 2:
		return convo.ClaimInProgress, nil
	case 3:
		return convo.ClaimDone, nil
	}
	return 0, fmt.Errorf("redisdedup: claim: unexpected answer %d", n)
}

// Renew implements convo.DedupStore: it extends token's claim on id to a
// lease from now, or returns ErrClaimLost when token does not hold it.
func (s *Store) Renew(ctx context.Context, id, token string) error {
	n, err := s.run(ctx, "renew", &renewLua, id, token, s.leaseArg)
	if err == nil && n < 0 {
		err = ErrClaimLost
	}
	return err
}

// Complete implements convo.DedupStore: it marks id done for the retention
// when token holds its claim, or when nobody does (a claim whose lease
// ended, or none). It returns ErrClaimLost, and changes nothing, when
// another token holds the claim.
func (s *Store) Complete(ctx context.Context, id, token string) error {
	n, err := s.run(ctx, "complete", &completeLua, id, token, s.retentionArg)
	if err == nil && n < 0 {
		err = ErrClaimLost
	}
	return err
}

// Release implements convo.DedupStore: it forgets token's claim on id, so a
// redelivery is handled. It does nothing for an id that is free or done,
// and returns ErrClaimLost when another token holds the claim.
func (s *Store) Release(ctx context.Context, id, token string) error {
	n, err := s.run(ctx, "release", &releaseLua, id, token, nil)
	if err == nil && n < 0 {
		err = ErrClaimLost
	}
	return err
}

// Bounds of the retries through a failover.
const (
	retryBackoffMin   = 20 * time.Millisecond
	retryBackoffMax   = 250 * time.Millisecond
	retriesNoDeadline = 4 // attempts when ctx has no deadline
)

// run runs a script on id's key, and again through a failover (see
// transient): a ClusterClient reloads its slot map first, and the attempts
// end with ctx's deadline (or after retriesNoDeadline without one). Each
// script may run twice safely: a claim retried with its token is new, and
// the others are idempotent.
func (s *Store) run(ctx context.Context, op string, script *luaArgs, id, token string, arg any) (int64, error) {
	if err := s.checkServer(ctx); err != nil {
		return 0, err
	}
	key := s.Key(id)
	deadline, hasDeadline := ctx.Deadline()
	// The retries end a quarter before the deadline (at most 250 ms), so
	// that the caller gets the error itself, not a timeout, and has time
	// left: a handler releases a claim that may have been made.
	stop := deadline.Add(-min(time.Until(deadline)/4, 250*time.Millisecond))
	backoff := retryBackoffMin
	for attempt := 1; ; attempt++ {
		n, err := s.runOnce(ctx, op, script, key, token, arg)
		out := !hasDeadline && attempt >= retriesNoDeadline || hasDeadline && time.Now().Add(backoff).After(stop)
		if err == nil || !transient(err) || out {
			if err != nil {
				return n, fmt.Errorf("redisdedup: %s: %w", op, err)
			}
			return n, nil
		}
		if cc, ok := s.rdb.(*redis.ClusterClient); ok {
			cc.ReloadState(ctx)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("redisdedup: %s: %w (after %d attempts: %w)", op, err, attempt, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

// runOnce runs the script once; with WithWaitReplicas, a claim that was
// made and a done mark are followed by WAIT on the same connection (of the
// key's master).
func (s *Store) runOnce(ctx context.Context, op string, script *luaArgs, key, token string, arg any) (int64, error) {
	if s.waitReplicas == 0 || (op != "claim" && op != "complete") {
		return evalKey(ctx, s.rdb, script, key, token, arg).Int64()
	}
	var node *redis.Client
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		m, err := c.MasterForKey(ctx, key)
		if err != nil {
			return 0, err
		}
		node = m
	case *redis.Client:
		node = c
	default:
		return evalKey(ctx, s.rdb, script, key, token, arg).Int64()
	}
	conn := node.Conn()
	defer conn.Close()
	n, err := evalKey(ctx, conn, script, key, token, arg).Int64()
	if err != nil || n != 1 { // nothing written: nothing to wait for
		return n, err
	}
	acked, err := conn.Do(ctx, "WAIT", s.waitReplicas, ms(s.waitTimeout)).Int64()
	if err != nil && transient(err) {
		return 0, err // the master may have died: tried again on the new one
	}
	if err == nil && int(acked) >= s.waitReplicas {
		return n, nil
	}
	s.log(ctx, slog.LevelWarn, "redisdedup: a write is not acknowledged by enough replicas in time; a failover now may forget it",
		slog.String("op", op), slog.Int64("acked", acked), slog.Int("want", s.waitReplicas), slog.Duration("timeout", s.waitTimeout), slog.Any("error", err))
	return n, nil
}

// evalKey runs script on key with the arguments token and arg (none when
// nil), as redis.Script's Run does: EVALSHA, then EVAL on NOSCRIPT. The
// command's arguments are built in one slice, rather than in the three
// slices and the boxed values of Script.Run's variadic path.
func evalKey(ctx context.Context, c interface {
	Process(context.Context, redis.Cmder) error
}, script *luaArgs, key, token string, arg any) *redis.Cmd {
	cmd := newEval(ctx, "evalsha", script.sha, key, token, arg)
	_ = c.Process(ctx, cmd)
	if err := cmd.Err(); err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")) {
		cmd = newEval(ctx, "eval", script.src, key, token, arg)
		_ = c.Process(ctx, cmd)
	}
	return cmd
}

// newEval builds the command EVAL or EVALSHA body 1 key token [arg].
func newEval(ctx context.Context, verb string, body any, key, token string, arg any) *redis.Cmd {
	var cmd *redis.Cmd
	if arg == nil {
		cmd = redis.NewCmd(ctx, verb, body, 1, key, token)
	} else {
		cmd = redis.NewCmd(ctx, verb, body, 1, key, token, arg)
	}
	cmd.SetFirstKeyPos(3) // the key, for a cluster's slot
	return cmd
}

// transient reports whether err may pass with a failover or a reconnect:
// a connection refused, reset or cut, or a MOVED, ASK, CLUSTERDOWN,
// READONLY, LOADING, MASTERDOWN or TRYAGAIN answer.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrClusterNode) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"MOVED ", "ASK ", "CLUSTERDOWN ", "READONLY ", "LOADING ", "MASTERDOWN ", "TRYAGAIN "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return strings.Contains(msg, "connection refused")
}

// checkServer checks the server once it answers: a single-node client of
// a Cluster node is refused (ErrClusterNode), and a maxmemory-policy that
// can evict keys with an expiry (every policy but noeviction) is logged as
// a warning. A server that does not answer, or refuses the commands (as
// managed Redis may refuse CONFIG), is checked on a later call or not at
// all.
func (s *Store) checkServer(ctx context.Context) error {
	if s.checked.Load() {
		return s.refused
	}
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	if s.checked.Load() {
		return s.refused
	}
	var policy string
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			p, err := maxmemoryPolicy(ctx, n)
			mu.Lock()
			if p != "" && p != "noeviction" {
				policy = p
			} else if policy == "" {
				policy = p
			}
			mu.Unlock()
			return err
		})
		if err != nil && transient(err) {
			return nil
		}
	default:
		info, err := s.rdb.Info(ctx, "cluster").Result()
		if err != nil {
			if transient(err) {
				return nil // not reachable yet: checked on a later call
			}
		} else if strings.Contains(info, "cluster_enabled:1") {
			s.refused = ErrClusterNode
		}
		policy, _ = maxmemoryPolicy(ctx, s.rdb)
	}
	if policy != "" && policy != "noeviction" {
		s.log(ctx, slog.LevelWarn, "redisdedup: Redis may evict the dedup keys under memory pressure: "+
			"an evicted done mark lets a redelivery run again, an evicted claim lets a second replica run the callback; "+
			"set maxmemory-policy noeviction (or give Redis memory enough for retention × delivery rate)",
			slog.String("maxmemory-policy", policy))
	}
	s.checked.Store(true)
	return s.refused
}

// maxmemoryPolicy is the server's maxmemory-policy, "" when it refuses to
// say.
func maxmemoryPolicy(ctx context.Context, c redis.Cmdable) (string, error) {
	m, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return "", err
	}
	return m["maxmemory-policy"], nil
}

func (s *Store) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	l := s.logger
	if l == nil {
		l = slog.Default()
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}

// ms is d in whole milliseconds, at least 1, as Redis's PX wants.
func ms(d time.Duration) int64 {
	if n := d.Milliseconds(); n > 0 {
		return n
	}
	return 1
}
