package redisdedup

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInboxSentinelMasterKill: two replicas run an inbox through Sentinel
// (a master, its replica, one Sentinel); the master is killed (SIGKILL)
// after 50 of 200 deliveries over 10 keys have completed, and more are
// added while Sentinel fails over to the replica (the sender retrying an
// Add that failed). Every delivery completes, in order per key, each run
// exactly once. Each write waits for a replica (WithWaitReplicas(1, 100
// ms)); after the kill there is none, and each write waits the timeout.
func TestInboxSentinelMasterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master, a replica and a Sentinel")
	}
	g := startSentinelGroup(t)
	ctx := context.Background()
	rec := newRecorder()
	prefix := testPrefix(t)
	var ins []*Inbox
	for _, name := range []string{"a", "b"} {
		in := newTestInbox(g.client(t), prefix, WithLease(5*time.Second), WithWaitReplicas(1, 100*time.Millisecond))
		in.Handle(convo.ProviderSelarti, rec.handler(name, nil))
		ins = append(ins, in)
		startRun(t, in)
	}
	const n, keys = 200, 10
	add := func(i int) {
		d := delivery("m"+strconv.Itoa(i), "chat"+strconv.Itoa(i%keys))
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, err := ins[i%2].Add(ctx, d)
			if err == nil {
				return
			}
			require.True(t, time.Now().Before(deadline), "Add failing for 60s: %v", err)
			time.Sleep(50 * time.Millisecond) // the sender's retry
		}
	}
	for i := range n / 2 {
		add(i)
	}
	eventually(t, "50 completed", func() bool { return rec.completedCount() >= 50 })
	g.master.stop(syscall.SIGKILL)
	killedAt := time.Now()
	for i := n / 2; i < n; i++ {
		add(i)
	}
	t.Logf("added the other half %v after the kill", time.Since(killedAt))
	eventually(t, "all completed", func() bool { return rec.completedCount() == n })
	eventually(t, "nothing pending", func() bool {
		c, err := ins[0].rdb.ZCard(ctx, ins[0].base+"pending").Result()
		return err == nil && c == 0
	})
	assert.Contains(t, info(g.replica.addr, "replication"), "role:master", "the replica took over")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, c := range rec.runs {
		assert.Equal(t, 1, c, "runs of %s", id)
	}
	assert.Empty(t, rec.overlap)
	for k := range keys {
		key := "chat" + strconv.Itoa(k)
		var want []string
		for i := k; i < n; i += keys {
			want = append(want, "m"+strconv.Itoa(i))
		}
		assert.Equal(t, want, rec.order[key], key)
	}
}
