package redisdedup

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInboxClusterMasterKill: two replicas run an inbox on a 3+3 Redis
// Cluster; the master of the inbox's slot is killed (SIGKILL) after 50 of
// 300 deliveries over 10 keys have completed, and more are added while it
// fails over (the sender retrying an Add that failed); once its replica has
// taken over, the dead node comes back as the new master's replica. Every
// delivery completes, in order per key, each run exactly once.
//
// Each write of the inbox waits for a replica (WAIT 1): without it, a
// lease or a done mark that the master acknowledged in its last instant
// may be lost with it, and the delivery would run a second time.
func TestInboxClusterMasterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node cluster")
	}
	c := startTestCluster(t)
	newClient := func() *redis.ClusterClient { return clusterClient(t, c.addrs()) }
	prefix := "convo:test:cluster:"
	rec := newRecorder()
	var ins []*Inbox
	for _, name := range []string{"a", "b"} {
		in := newTestInbox(newClient(), prefix, WithLease(5*time.Second), WithWaitReplicas(1, time.Second))
		in.Handle(convo.ProviderSelarti, rec.handler(name, nil))
		ins = append(ins, in)
		startRun(t, in)
	}
	ctx := context.Background()
	const n, keys = 300, 10
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

	master := masterOf(t, c, ins[0].base+"ready")
	master.stop(syscall.SIGKILL)
	killedAt := time.Now()
	// Once its replica has taken over, the dead master comes back (on its
	// append-only file) as the new master's replica, so that WAIT is
	// answered again.
	slot := keySlot(ins[0].base + "ready")
	var survivor string
	for _, nd := range c.nodes {
		if nd != master {
			survivor = nd.addr
			break
		}
	}
	sc := redis.NewClient(&redis.Options{Addr: survivor})
	defer sc.Close()
	eventually(t, "a replica took over the slot", func() bool {
		shards, err := sc.ClusterShards(ctx).Result()
		if err != nil {
			return false
		}
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if int64(slot) < r.Start || int64(slot) > r.End {
					continue
				}
				for _, nd := range sh.Nodes {
					if nd.Role == "master" && nd.Health == "online" {
						return net.JoinHostPort(nd.IP, strconv.FormatInt(nd.Port, 10)) != master.addr
					}
				}
			}
		}
		return false
	})
	t.Logf("failed over %v after the kill", time.Since(killedAt))
	require.NoError(t, master.start(), "restarting the dead master")
	for i := n / 2; i < n; i++ {
		add(i)
	}
	t.Logf("added the other half %v after the kill", time.Since(killedAt))
	eventually(t, "all completed", func() bool { return rec.completedCount() == n })
	t.Logf("all completed %v after the kill", time.Since(killedAt))
	eventually(t, "nothing pending", func() bool {
		c, err := ins[0].rdb.ZCard(ctx, ins[0].base+"pending").Result()
		return err == nil && c == 0
	})

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
