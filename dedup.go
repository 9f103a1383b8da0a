package convo

import (
	"context"
	"strconv"
	"sync"
)

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

// DedupStore remembers which webhook deliveries were handled, so a
// redelivery is not handled twice. The handlers call Claim before they call
// fn, then Complete when fn succeeded or Release when it failed. Its
// methods may be called concurrently.
//
// The handlers pass ids prefixed with the provider, as "selarti:<message_id>"
// or "talkjs:<event id>", so one store can serve both. To share the store
// between replicas, back it with a shared database; such a store should let
// an in-progress claim expire after a while (a replica may die between Claim
// and Complete) and forget done ids after a day or so.
type DedupStore interface {
	// Claim marks id as in progress when it is new and reports its state
	// before the call: ClaimNew, ClaimInProgress or ClaimDone.
	Claim(ctx context.Context, id string) (ClaimState, error)
	// Complete remembers id as done: its delivery was handled.
	Complete(ctx context.Context, id string) error
	// Release forgets id: its delivery failed, and a redelivery must be
	// handled.
	Release(ctx context.Context, id string) error
}

// MemoryDedupStore is a DedupStore in memory for one process. It remembers
// the most recently completed ids, up to its capacity, and forgets the
// oldest first; ids in progress are kept until completed or released. Each
// call takes constant time. It is safe for concurrent use.
type MemoryDedupStore struct {
	mu       sync.Mutex
	capacity int
	inFlight map[string]struct{}
	done     map[string]struct{}
	order    []string // done ids, oldest at next once len(order) == capacity
	next     int
}

// NewMemoryDedupStore returns a store that remembers the last capacity
// completed ids. It panics if capacity is less than 1. The handlers use one
// of capacity 10,000 unless WithDedupStore gives another store.
func NewMemoryDedupStore(capacity int) *MemoryDedupStore {
	if capacity < 1 {
		panic("convo: NewMemoryDedupStore: capacity must be at least 1")
	}
	return &MemoryDedupStore{
		capacity: capacity,
		inFlight: make(map[string]struct{}),
		done:     make(map[string]struct{}),
	}
}

// Claim implements DedupStore.
func (s *MemoryDedupStore) Claim(_ context.Context, id string) (ClaimState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.done[id]; ok {
		return ClaimDone, nil
	}
	if _, ok := s.inFlight[id]; ok {
		return ClaimInProgress, nil
	}
	s.inFlight[id] = struct{}{}
	return ClaimNew, nil
}

// Complete implements DedupStore.
func (s *MemoryDedupStore) Complete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, id)
	if _, ok := s.done[id]; ok {
		return nil
	}
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
func (s *MemoryDedupStore) Release(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, id)
	return nil
}
