package redisdedup

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/convokit/convo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clusterNode is a redis-server of a test Cluster.
type clusterNode struct {
	bin, dir string
	port     int
	addr     string
	cmd      *exec.Cmd
	exited   chan struct{}
}

func (n *clusterNode) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// startCluster starts a Redis Cluster of 3 masters with a replica each
// (cluster-node-timeout 1 s, so that a replica takes over a dead master
// within seconds), its files under a temporary folder, and stops it when
// t ends (also the nodes the caller restarts in the slice it returns). It
// needs redis-server and redis-cli.
func startCluster(t *testing.T) []*clusterNode {
	t.Helper()
	bin, err := redisBinary()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		skipOrFail(t, "no redis-cli on PATH (install redis-tools): "+err.Error())
	}
	dir := t.TempDir()
	var nodes []*clusterNode
	t.Cleanup(func() {
		for _, n := range nodes {
			n.kill()
		}
	})
	for i := range 6 {
		var n *clusterNode
		for try := 0; n == nil; try++ {
			port, err := freePort()
			require.NoError(t, err)
			n, err = startClusterNode(bin, filepath.Join(dir, strconv.Itoa(i)), port)
			if err != nil && try == 4 {
				t.Fatalf("starting a cluster node: %v", err)
			}
		}
		nodes = append(nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range nodes {
		args = append(args, n.addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node knows every slot is served, and every replica is in sync.
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.addr})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			repl, rerr := c.Info(context.Background(), "replication").Result()
			if err == nil && rerr == nil && strings.Contains(info, "cluster_state:ok") &&
				(strings.Contains(repl, "role:master") || strings.Contains(repl, "master_link_status:up")) {
				break
			}
			if time.Now().After(deadline) {
				_ = c.Close()
				t.Fatalf("the cluster is not ready after 60s: %v %v\n%s\n%s", err, rerr, info, repl)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
	}
	return nodes
}

func startClusterNode(bin, dir string, port int) (*clusterNode, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := strconv.Itoa(port)
	cmd := exec.Command(bin, "--port", p, "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &clusterNode{bin: bin, dir: dir, port: port, addr: net.JoinHostPort("127.0.0.1", p), cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return nil, fmt.Errorf("redis-server on %s exited", n.addr)
		default:
		}
		if pid, ok := serverPID(n.addr); ok {
			if pid == cmd.Process.Pid {
				return n, nil
			}
			n.kill()
			return nil, fmt.Errorf("another redis-server answers on %s", n.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.kill()
	return nil, fmt.Errorf("redis-server on %s did not answer in 15s", n.addr)
}

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
	nodes := startCluster(t)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr)
	}
	newClient := func() *redis.ClusterClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolTimeout: 30 * time.Second})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	prefix := "convo:test:cluster:"
	rec := newRecorder()
	var ins []*Inbox
	for _, name := range []string{"a", "b"} {
		in := newTestInbox(newClient(), prefix, WithLease(5*time.Second))
		in.opt.waitReplicas, in.opt.waitTimeout = 1, time.Second
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

	master, err := ins[0].rdb.(*redis.ClusterClient).MasterForKey(ctx, ins[0].base+"ready")
	require.NoError(t, err)
	killed := false
	for _, nd := range nodes {
		if nd.addr == master.Options().Addr {
			nd.kill()
			killed = true
		}
	}
	require.True(t, killed, "the master %s is not one of the nodes", master.Options().Addr)
	killedAt := time.Now()
	// Once its replica has taken over, the dead master comes back (empty:
	// no persistence) as the new master's replica, so that WAIT is
	// answered again.
	slot := keySlot(ins[0].base + "ready")
	var survivor string
	for _, nd := range nodes {
		if nd.addr != master.Options().Addr {
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
						return net.JoinHostPort(nd.IP, strconv.FormatInt(nd.Port, 10)) != master.Options().Addr
					}
				}
			}
		}
		return false
	})
	t.Logf("failed over %v after the kill", time.Since(killedAt))
	for i, nd := range nodes {
		if nd.addr == master.Options().Addr {
			back, err := startClusterNode(nd.bin, nd.dir, nd.port)
			require.NoError(t, err, "restarting the dead master")
			nodes[i] = back
		}
	}
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
