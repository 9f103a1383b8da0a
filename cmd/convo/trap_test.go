package main

import (
	"os"
	"testing"

	"github.com/convokit/convo/internal/dialtrap"
)

// trap is the proxy of every test of this package (see dialtrap): a
// request to any host but a loopback one reaches it, is recorded and is
// refused. It is how the tests see that nothing dials a real host.
var trap *dialtrap.Trap

func TestMain(m *testing.M) {
	trap = dialtrap.Start()
	code := m.Run()
	trap.Close()
	os.Exit(code)
}

// assertNoDial fails t if anything reached the trap.
func assertNoDial(t *testing.T) {
	t.Helper()
	trap.AssertNone(t)
}
