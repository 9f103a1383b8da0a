package redisdedup

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startSentinel starts a Sentinel (quorum 1, down-after 1 s) watching the
// master at masterAddr under the name "convo", and stops it when t ends.
func startSentinel(t *testing.T, bin, dir, masterAddr string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(masterAddr)
	for try := 0; ; try++ {
		p, err := freePort()
		require.NoError(t, err)
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(p)+".conf")
		require.NoError(t, os.WriteFile(conf, []byte(
			"port "+strconv.Itoa(p)+"\nbind 127.0.0.1\ndir "+dir+"\n"+
				"sentinel monitor convo "+host+" "+port+" 1\n"+
				"sentinel down-after-milliseconds convo 1000\n"+
				"sentinel failover-timeout convo 5000\n"), 0o600))
		cmd := exec.Command(bin, conf, "--sentinel", "--logfile", filepath.Join(dir, "sentinel.log"))
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if pid, ok := serverPID(addr); ok && pid == cmd.Process.Pid {
				t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); <-exited })
				return addr
			}
			select {
			case <-exited:
				deadline = time.Time{}
			default:
				time.Sleep(20 * time.Millisecond)
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		require.Less(t, try, 4, "could not start redis-sentinel")
	}
}

// TestInboxSentinelMasterKill: two replicas run an inbox through Sentinel
// (a master, its replica, one Sentinel); the master is killed (SIGKILL)
// after 50 of 200 deliveries over 10 keys have completed, and more are
// added while Sentinel fails over to the replica (the sender retrying an
// Add that failed). Every delivery completes, in order per key, each run
// exactly once. Each write waits for the replica (WAIT 1) until the kill;
// after it there is none, and WAIT's timeout (100 ms) passes on each write.
func TestInboxSentinelMasterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master, a replica and a Sentinel")
	}
	bin, err := redisBinary()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	dir := t.TempDir()
	master, err := startRedis(bin, dir, false)
	require.NoError(t, err)
	t.Cleanup(func() { master.stop(syscall.SIGKILL) })
	replica, err := startRedis(bin, dir, false)
	require.NoError(t, err)
	t.Cleanup(func() { replica.stop(syscall.SIGKILL) })
	ctx := context.Background()
	mh, mp, _ := net.SplitHostPort(master.addr)
	rc := redis.NewClient(&redis.Options{Addr: replica.addr})
	defer rc.Close()
	require.NoError(t, rc.ReplicaOf(ctx, mh, mp).Err())
	mc := redis.NewClient(&redis.Options{Addr: master.addr})
	defer mc.Close()
	eventually(t, "the replica in sync", func() bool {
		n, err := mc.Do(ctx, "WAIT", 1, 100).Int()
		return err == nil && n == 1
	})
	sentinel := startSentinel(t, bin, dir, master.addr)

	rec := newRecorder()
	prefix := testPrefix(t)
	var ins []*Inbox
	for _, name := range []string{"a", "b"} {
		rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "convo", SentinelAddrs: []string{sentinel}})
		t.Cleanup(func() { _ = rdb.Close() })
		in := newTestInbox(rdb, prefix, WithLease(5*time.Second))
		in.opt.waitReplicas, in.opt.waitTimeout = 1, 100*time.Millisecond
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
	master.stop(syscall.SIGKILL)
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
	role, err := rc.Do(ctx, "ROLE").Slice()
	require.NoError(t, err)
	assert.Equal(t, "master", role[0], "the replica took over")

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
