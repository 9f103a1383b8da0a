//go:build race

package convo

// RaceEnabled reports a build with the race detector.
const RaceEnabled = true
