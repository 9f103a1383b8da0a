//go:build !convo_benchoff

package convo

// off reports whether m is switched off: never, outside bench/'s
// guarantee-cost build (see guarantee.go).
func off(mechanism) bool { return false }
