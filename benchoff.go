//go:build convo_benchoff

package convo

import (
	"os"
	"strings"
)

// This file is compiled only with the build tag convo_benchoff, which
// bench/run.sh uses to measure what each guarantee costs; it never ships.
// CONVO_BENCH_OFF lists the mechanisms switched off, comma-separated:
// deadline, retry, redirect, cap.

// mechanismNames names the mechanisms for CONVO_BENCH_OFF (here, so that
// a build without the tag holds no unused name).
var mechanismNames = map[string]mechanism{
	"deadline": offDeadline, "retry": offRetry, "redirect": offRedirect, "cap": offCap,
}

var switchedOff = func() mechanism {
	var m mechanism
	for _, name := range strings.Split(os.Getenv("CONVO_BENCH_OFF"), ",") {
		m |= mechanismNames[strings.TrimSpace(name)]
	}
	return m
}()

// off reports whether m is switched off.
func off(m mechanism) bool { return switchedOff&m != 0 }
