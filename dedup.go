package convo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"
)

// This file holds the dedup store's contract (ClaimState, DedupStore,
// ErrClaimLost), the adapter for a store of the earlier contract, and the
// in-memory store. The handler's side of the contract (renewal, retried
// Complete and Release, fail-open records) is in dedup_claims.go.

// ClaimState is the answer of DedupStore.Claim.
type ClaimState int

// The states of a delivery id.
const (
	ClaimNew        ClaimState = iota + 1 // not seen: the caller now holds it and handles the delivery
	ClaimInProgress                       // another delivery of the id is being handled
	ClaimDone                             // the id was handled
)

// String names the state.
func (s ClaimState) String() string {
	switch s {
	case ClaimNew:
		return "new"
	case ClaimInProgress:
		return "in progress"
	case ClaimDone:
		return "done"
	}
	return "ClaimState(" + strconv.Itoa(int(s)) + ")"
}

// ErrClaimLost is returned by DedupStore.Renew, Complete and Release when
// another claim holds the id: the caller's lease ran out and another
// delivery claimed the id meanwhile. The other's claim is left as it is.
var ErrClaimLost = errors.New("convo: the id is claimed by another delivery (the lease ran out)")

// DedupStore remembers which webhook deliveries were handled, so that a
// redelivery is not handled twice. Its methods may be called concurrently.
//
// The handlers pass ids prefixed with the provider, as "selarti:<message_id>"
// or "talkjs:<event id>", so one store can serve both, and a token per
// claim, unique, made before Claim is sent. The handler's side of the
// contract, whatever the store does:
//   - it calls Claim, then fn when the claim is new; while fn runs, it calls
//     Renew every third of the Lease; when Renew says ErrClaimLost, or the
//     lease ran out without a renewal, fn's context ends (and it is logged
//     as an error);
//   - it calls Complete when fn succeeded and Release when it failed; one
//     that fails is retried with backoff after the answer (a Release until
//     the lease ends), with the same token;
//   - when Claim fails (the claim may have been made and its reply lost), it
//     releases the claim with its token, so that the sender's next try is
//     handled, not refused until the lease ends;
//   - each call has a deadline (WithDedupTimeout), so that a delivery is
//     answered in time whatever the store does.
//
// The handler calls each method from a goroutine of its own, so that it
// can stop waiting at the deadline even when the store ignores its
// context. A store that also has a method HonorsDeadline() bool returning
// true promises that every call returns by its context's deadline: the
// handler then calls it directly, which saves a goroutine handoff per call
// (MemoryDedupStore is called so; redisdedup.Store is when its client has
// ContextTimeoutEnabled).
//
// To share the store between replicas, back it with a shared database
// (redisdedup does, on Redis). A store of the earlier contract, without
// tokens, works through AdaptDedupStore.
type DedupStore interface {
	// Claim marks id as in progress, held by token for a Lease, when it is
	// new (or its claim's lease ran out), and reports its state before the
	// call: ClaimNew, ClaimInProgress or ClaimDone. An id already held by
	// token is ClaimNew (the caller retried a claim whose reply was lost).
	Claim(ctx context.Context, id, token string) (ClaimState, error)
	// Renew extends token's claim on id to a Lease from now. It returns
	// ErrClaimLost when token does not hold id.
	Renew(ctx context.Context, id, token string) error
	// Complete remembers id as done when token holds its claim or nobody
	// does (a lease that ran out: the work was done all the same). It
	// returns ErrClaimLost, and changes nothing, when another token holds
	// it; nil when id is done already.
	Complete(ctx context.Context, id, token string) error
	// Release forgets token's claim on id: its delivery failed, and a
	// redelivery must be handled. It does nothing for an id that is free or
	// done, and returns ErrClaimLost when another token holds it.
	Release(ctx context.Context, id, token string) error
	// Lease is how long a claim lives without Renew. The handler renews
	// every third of it. Zero: claims never expire, and the handler does
	// not renew.
	Lease() time.Duration
}

// SimpleDedupStore is the DedupStore contract of convo v0.2 and earlier,
// without tokens or leases. AdaptDedupStore makes a DedupStore of one.
type SimpleDedupStore interface {
	Claim(ctx context.Context, id string) (ClaimState, error)
	Complete(ctx context.Context, id string) error
	Release(ctx context.Context, id string) error
}

// AdaptDedupStore makes a DedupStore of a store of the earlier contract.
// The adapter ignores tokens and has no lease (Lease is 0, so the handler
// never renews). The handler still bounds each call's time, retries a
// failed Complete and records fail-open deliveries; but such a store
// cannot tell its own claim from another's: a callback that outlives the
// store's own expiry may be taken over, and a claim whose reply was lost
// is released only when the store lets any caller release it.
func AdaptDedupStore(s SimpleDedupStore) DedupStore {
	if s == nil {
		panic("convo: AdaptDedupStore: nil store")
	}
	return simpleStore{s}
}

type simpleStore struct{ s SimpleDedupStore }

func (a simpleStore) Claim(ctx context.Context, id, _ string) (ClaimState, error) {
	return a.s.Claim(ctx, id)
}
func (a simpleStore) Renew(context.Context, string, string) error { return nil }
func (a simpleStore) Complete(ctx context.Context, id, _ string) error {
	return a.s.Complete(ctx, id)
}
func (a simpleStore) Release(ctx context.Context, id, _ string) error {
	return a.s.Release(ctx, id)
}
func (a simpleStore) Lease() time.Duration { return 0 }

// DefaultMemoryLease is the lease of a MemoryDedupStore's claims.
const DefaultMemoryLease = 2 * time.Minute

// MemoryDedupStore is a DedupStore in memory for one process. It remembers
// the most recently completed ids, up to its capacity, and forgets the
// oldest first; ids in progress are kept until completed or released, or
// until their lease runs out unrenewed. Each call takes constant time. It
// is safe for concurrent use.
//
// An id longer than 64 bytes is kept as its SHA-256 digest (71 bytes), so
// the store's memory is bounded by its capacity alone, whatever the length
// of the ids a sender makes up: about 1.5 MB at the handlers' 10,000.
type MemoryDedupStore struct {
	mu       sync.Mutex
	capacity int
	lease    time.Duration
	inFlight map[string]memoryClaim
	done     map[string]struct{}
	order    []string // done ids, oldest at next once len(order) == capacity
	next     int
}

type memoryClaim struct {
	token   string
	expires time.Time
}

// MemoryDedupOption configures a MemoryDedupStore.
type MemoryDedupOption func(*MemoryDedupStore)

// WithMemoryLease sets how long a claim lives unrenewed (default
// DefaultMemoryLease, 2 minutes). The handlers renew it while the callback
// runs, so it matters only for a callback that is stuck without returning.
// It panics if d is less than a millisecond.
func WithMemoryLease(d time.Duration) MemoryDedupOption {
	if d < time.Millisecond {
		panic("convo: WithMemoryLease: the lease must be at least 1ms")
	}
	return func(s *MemoryDedupStore) { s.lease = d }
}

// NewMemoryDedupStore returns a store that remembers the last capacity
// completed ids. It panics if capacity is less than 1. The handlers use one
// of capacity 10,000 unless WithDedupStore gives another store.
func NewMemoryDedupStore(capacity int, opts ...MemoryDedupOption) *MemoryDedupStore {
	if capacity < 1 {
		panic("convo: NewMemoryDedupStore: capacity must be at least 1")
	}
	s := &MemoryDedupStore{
		capacity: capacity,
		lease:    DefaultMemoryLease,
		inFlight: make(map[string]memoryClaim),
		done:     make(map[string]struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// maxKeptID is the longest id MemoryDedupStore keeps as it is.
const maxKeptID = 64

// dedupKey is id itself up to maxKeptID bytes, or "sha256:" and the hex
// digest of id: 71 bytes, which no id kept as it is can equal.
func dedupKey(id string) string {
	if len(id) <= maxKeptID {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// holder returns the token of the live claim on id, "" when none; a claim
// whose lease ran out is dropped. s.mu is held.
func (s *MemoryDedupStore) holder(id string, now time.Time) string {
	c, ok := s.inFlight[id]
	if !ok {
		return ""
	}
	if !now.Before(c.expires) {
		delete(s.inFlight, id)
		return ""
	}
	return c.token
}

// Claim implements DedupStore.
func (s *MemoryDedupStore) Claim(_ context.Context, id, token string) (ClaimState, error) {
	id = dedupKey(id)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.done[id]; ok {
		return ClaimDone, nil
	}
	if h := s.holder(id, now); h != "" && h != token {
		return ClaimInProgress, nil
	}
	s.inFlight[id] = memoryClaim{token: token, expires: now.Add(s.lease)}
	return ClaimNew, nil
}

// Renew implements DedupStore.
func (s *MemoryDedupStore) Renew(_ context.Context, id, token string) error {
	id = dedupKey(id)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder(id, now) != token {
		return ErrClaimLost
	}
	s.inFlight[id] = memoryClaim{token: token, expires: now.Add(s.lease)}
	return nil
}

// Complete implements DedupStore.
func (s *MemoryDedupStore) Complete(_ context.Context, id, token string) error {
	id = dedupKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.done[id]; ok {
		return nil
	}
	if h := s.holder(id, time.Now()); h != "" && h != token {
		return ErrClaimLost
	}
	delete(s.inFlight, id)
	s.done[id] = struct{}{}
	if len(s.order) < s.capacity {
		s.order = append(s.order, id)
		return nil
	}
	delete(s.done, s.order[s.next])
	s.order[s.next] = id
	s.next = (s.next + 1) % s.capacity
	return nil
}

// Release implements DedupStore.
func (s *MemoryDedupStore) Release(_ context.Context, id, token string) error {
	id = dedupKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch h := s.holder(id, time.Now()); h {
	case "":
		return nil
	case token:
		delete(s.inFlight, id)
		return nil
	}
	return ErrClaimLost
}

// Lease implements DedupStore.
func (s *MemoryDedupStore) Lease() time.Duration { return s.lease }
