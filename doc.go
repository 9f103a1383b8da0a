// Package convo is a Go client for software that opens and runs
// conversations with people over messaging channels.
package convo
