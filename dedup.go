package convo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// MemoryDedupStore is a DedupStore in memory for one process. It remembers
// the most recently completed ids, up to its capacity, and forgets the
// oldest first; ids in progress are kept until completed or released. Each
// call takes constant time. It is safe for concurrent use.
//
// An id longer than 64 bytes is kept as its SHA-256 digest (71 bytes), so
// the store's memory is bounded by its capacity alone, whatever the length
// of the ids a sender makes up: about 1.5 MB at the handlers' 10,000.
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

// Claim implements DedupStore.
func (s *MemoryDedupStore) Claim(_ context.Context, id string) (ClaimState, error) {
	id = dedupKey(id)
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
	id = dedupKey(id)
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
	id = dedupKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, id)
	return nil
}
