package redisdedup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The topologies of the failover tests: a Sentinel group (1 master, 1
// replica, 1 sentinel) and a Cluster of 3 masters and 3 replicas, all
// redis-server processes on loopback. Their failover timeouts are small,
// so that a test meets a whole failover in seconds:
//
//   - CONVO_REDIS_SENTINEL_ADDR (a sentinel's host:port, master name
//     "mymaster") and CONVO_REDIS_CLUSTER_ADDRS (the nodes' host:port,
//     comma-separated) name topologies that are running (CI starts them);
//     the tests that change nothing use them;
//   - the tests that kill, stop and restart processes always start their
//     own, with startSentinelGroup and startTestCluster, so that nothing else
//     sees their faults;
//   - without redis-server (and redis-cli, for the Cluster) they skip,
//     unless CONVO_REDIS_REQUIRED is set: then they fail.
const (
	sentinelMaster          = "mymaster"
	sentinelDownAfter       = 500 * time.Millisecond
	sentinelFailoverTimeout = 3 * time.Second
	clusterNodeTimeout      = 500 * time.Millisecond
)

// sentinelGroup is a master, its replica and a sentinel monitoring them.
type sentinelGroup struct {
	master, replica, sentinel *redisServer
}

// client is a FailoverClient through the group's sentinel, as users make
// one, closed when t ends.
func (g *sentinelGroup) client(t testing.TB) redis.UniversalClient {
	return failoverClient(t, g.sentinel.addr)
}

func failoverClient(t testing.TB, sentinel string) redis.UniversalClient {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: sentinelMaster, SentinelAddrs: []string{sentinel}})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// startSentinelGroup starts a Sentinel group with AOF on, and waits until
// the sentinel knows the replica (it can fail over).
func startSentinelGroup(t testing.TB) *sentinelGroup {
	t.Helper()
	bin := requireBinary(t, "redis-server")
	dir := t.TempDir()
	g := &sentinelGroup{}
	var err error
	if g.master, err = startRedis(bin, dir, true, "--repl-diskless-sync-delay", "0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.master.stop(syscall.SIGKILL) })
	host, port := splitAddr(g.master.addr)
	if g.replica, err = startRedis(bin, dir, true, "--repl-diskless-sync-delay", "0", "--replicaof", host, port); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.replica.stop(syscall.SIGKILL) })
	waitFor(t, 20*time.Second, "the replica's link to its master", func() bool {
		return strings.Contains(info(g.replica.addr, "replication"), "master_link_status:up")
	})
	if g.sentinel, err = startServer(&redisServer{bin: bin, dir: dir, sentinel: g.master.addr}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.sentinel.stop(syscall.SIGKILL) })
	waitFor(t, 20*time.Second, "the sentinel to know the replica", func() bool {
		out, err := cli(g.sentinel.addr, "SENTINEL", "REPLICAS", sentinelMaster)
		return err == nil && strings.Contains(out, g.replica.addr[strings.LastIndex(g.replica.addr, ":")+1:])
	})
	return g
}

// cluster is 3 masters and 3 replicas.
type cluster struct {
	nodes []*redisServer
}

// addrs are the nodes' addresses.
func (c *cluster) addrs() []string {
	var a []string
	for _, n := range c.nodes {
		a = append(a, n.addr)
	}
	return a
}

// client is a ClusterClient as users make one, closed when t ends.
func clusterClient(t testing.TB, addrs []string) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// startTestCluster starts 6 nodes with AOF on, makes them a Cluster of 3
// masters with a replica each, and waits until every node says the
// Cluster is ok.
func startTestCluster(t testing.TB) *cluster {
	t.Helper()
	bin := requireBinary(t, "redis-server")
	cliBin := requireBinary(t, "redis-cli")
	dir := t.TempDir()
	c := &cluster{}
	for range 6 {
		n, err := startRedis(bin, dir, true, "--repl-diskless-sync-delay", "0", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", fmt.Sprint(clusterNodeTimeout.Milliseconds()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.stop(syscall.SIGKILL) })
		c.nodes = append(c.nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cliBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "cluster_state:ok on every node, each master with its replica", func() bool {
		for _, n := range c.nodes {
			if !strings.Contains(info(n.addr, "cluster-info"), "cluster_state:ok") {
				return false
			}
			r := info(n.addr, "replication")
			if strings.Contains(r, "role:master") && !strings.Contains(r, "connected_slaves:1") ||
				strings.Contains(r, "role:slave") && !strings.Contains(r, "master_link_status:up") {
				return false
			}
		}
		return true
	})
	return c
}

// envTopologyOrNil returns the addresses in the environment variable
// name, nil when it is unset (the test then starts a topology of its own);
// with CONVO_REDIS_REQUIRED set, as CI sets it, an unset one fails t.
func envTopologyOrNil(t testing.TB, name string) []string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CONVO_REDIS_REQUIRED") != "" {
			t.Fatalf("CONVO_REDIS_REQUIRED is set but %s is not: .ci/run starts that topology", name)
		}
		return nil
	}
	return strings.Split(v, ",")
}

// requireBinary finds name on PATH (redis-server: REDIS_SERVER first), or
// skips t (fails it when CONVO_REDIS_REQUIRED is set).
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	if name == "redis-server" {
		bin, err := redisBinary()
		if err != nil {
			skipOrFail(t, err.Error())
		}
		return bin
	}
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, "no "+name+" on PATH (install redis-tools): skipping")
	}
	return p
}

func splitAddr(addr string) (host, port string) {
	i := strings.LastIndex(addr, ":")
	return addr[:i], addr[i+1:]
}

// info is the INFO section of the server at addr ("cluster-info" for
// CLUSTER INFO), "" when it does not answer.
func info(addr, section string) string {
	args := []string{"INFO", section}
	if section == "cluster-info" {
		args = []string{"CLUSTER", "INFO"}
	}
	out, _ := cli(addr, args...)
	return out
}

// cli runs one command on the server at addr with a client of its own.
func cli(addr string, args ...string) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer rdb.Close()
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	v, err := rdb.Do(context.Background(), a...).Result()
	return fmt.Sprint(v), err
}

// waitFor waits until ok, checking every 20 ms, or fails t after d.
func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
