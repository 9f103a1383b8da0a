package convo

import (
	"runtime"
	"testing"
	"time"
)

// leakWait is how long GoroutineCheck lets goroutines wind down.
var leakWait = 5 * time.Second

// GoroutineCheck records the goroutine count now; calling the returned
// function fails t unless the count settles back to it within leakWait. It is
// our own small stand-in for goleak, which is not one of our dependencies.
// Exported for the external test package (convo_test) only.
func GoroutineCheck(t testing.TB) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(leakWait)
		for {
			now := runtime.NumGoroutine()
			if now <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutines leaked: %d before, %d after\n%s", before, now, buf)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestGoroutineCheckCatchesALeak(t *testing.T) {
	defer func(w time.Duration) { leakWait = w }(leakWait)
	leakWait = 100 * time.Millisecond
	stop := make(chan struct{})
	ft := &fakeTB{TB: t}
	check := GoroutineCheck(ft)
	go func() { <-stop }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		check()
	}()
	<-done
	close(stop)
	if !ft.failed {
		t.Fatal("a goroutine left running was not reported")
	}
}

// fakeTB records a Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}
