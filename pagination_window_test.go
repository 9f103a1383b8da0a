package convo

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The window remembers cursors in flat memory: a short cycle is caught at
// its first repeat, a long one within a few rounds, and distinct cursors
// are never taken for repeats.
func TestCursorWindow(t *testing.T) {
	var w cursorWindow
	for i := range 10_000 {
		c := "m" + strconv.Itoa(i)
		require.False(t, w.seen(c), "cursor %d taken for a repeat", i)
		w.add(c)
	}

	for _, cycle := range []int{1, 2, cursorWindowSize, cursorWindowSize + 1, 1000} {
		var w cursorWindow
		w.add("") // the first page
		pages := 0
		for i := 0; ; i++ {
			c := "m" + strconv.Itoa(i%cycle)
			if w.seen(c) {
				break
			}
			w.add(c)
			pages++
			require.Less(t, pages, 4*cycle+cursorWindowSize, "a cycle of %d not caught", cycle)
		}
		if cycle <= cursorWindowSize {
			assert.Equal(t, cycle, pages, "a cycle of %d is caught at its first repeat", cycle)
		}
	}
}
