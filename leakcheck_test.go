package convo

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// leakWait is how long GoroutineCheck lets goroutines wind down.
var leakWait = 5 * time.Second

// GoroutineCheck records the goroutines running now; calling the returned
// function fails t unless every goroutine started since then, other than
// the caller's, has ended within leakWait. It compares goroutines by id,
// not by count, so a goroutine of an earlier test that ends meanwhile
// cannot hide a leak. It is our own small stand-in for goleak, which is
// not one of our dependencies. Exported for the external test package
// (convo_test) only.
func GoroutineCheck(t testing.TB) func() {
	t.Helper()
	before := make(map[uint64]bool)
	for _, g := range goroutines() {
		before[g.id] = true
	}
	return func() {
		t.Helper()
		self := currentGoroutine()
		deadline := time.Now().Add(leakWait)
		for {
			var leaked []string
			for _, g := range goroutines() {
				if !before[g.id] && g.id != self {
					leaked = append(leaked, g.stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("goroutines leaked: %d started during the test still run\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// goroutineStack is one goroutine of a runtime.Stack dump: its id and its
// stack as printed.
type goroutineStack struct {
	id    uint64
	stack string
}

// goroutines lists the goroutines running now, as runtime.Stack prints
// them (system goroutines left out).
func goroutines() []goroutineStack {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutineStack
	for _, s := range strings.Split(string(buf), "\n\n") {
		if id, ok := goroutineID(s); ok {
			gs = append(gs, goroutineStack{id: id, stack: s})
		}
	}
	return gs
}

// currentGoroutine is the id of the calling goroutine.
func currentGoroutine() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _ := goroutineID(string(buf))
	return id
}

// goroutineID reads the id of a stack that begins "goroutine 42 [...]:".
func goroutineID(stack string) (uint64, bool) {
	rest, ok := strings.CutPrefix(stack, "goroutine ")
	if !ok {
		return 0, false
	}
	i := strings.IndexByte(rest, ' ')
	if i < 0 {
		return 0, false
	}
	id, err := strconv.ParseUint(rest[:i], 10, 64)
	return id, err == nil
}

func TestGoroutineCheckCatchesALeak(t *testing.T) {
	defer func(w time.Duration) { leakWait = w }(leakWait)
	leakWait = 100 * time.Millisecond
	// Goroutines that were running before the check began and end while
	// it runs, as an earlier test's may: they must not hide the leak.
	earlier, earlierDone := make(chan struct{}), make(chan struct{})
	for range 3 {
		go func() { <-earlier; earlierDone <- struct{}{} }()
	}
	stop := make(chan struct{})
	ft := &fakeTB{TB: t}
	check := GoroutineCheck(ft)
	close(earlier)
	for range 3 {
		<-earlierDone
	}
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

	// Goroutines that end before the check are no leak.
	leakWait = 5 * time.Second
	ft = &fakeTB{TB: t}
	check = GoroutineCheck(ft)
	ended := make(chan struct{})
	go func() { close(ended) }()
	<-ended
	done = make(chan struct{})
	go func() {
		defer close(done)
		check()
	}()
	<-done
	if ft.failed {
		t.Fatal("a goroutine that ended was reported")
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
