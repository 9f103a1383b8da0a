package convo

import (
	"context"
	"sync"
)

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
