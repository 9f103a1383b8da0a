package convo

// A mechanism of the pipeline that keeps a guarantee. bench/ measures
// what each costs by switching it off in a benchmark build only (the
// build tag convo_benchoff, see benchoff.go); in every other build, off
// is a constant false and the switches compile away.
type mechanism uint

const (
	// offDeadline: no per-attempt deadline (the call's context only).
	offDeadline mechanism = 1 << iota
	// offRetry: no retryablehttp: one attempt through the http.Client, no
	// retry rules, no tracking of what may have reached the server.
	offRetry
	// offRedirect: the http.Client follows redirects (net/http's default).
	offRedirect
	// offCap: the body is read with io.ReadAll, without a cap.
	offCap
)
