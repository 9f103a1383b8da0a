//go:build !race

package convo_test

// raceEnabled reports a build with the race detector.
const raceEnabled = false
