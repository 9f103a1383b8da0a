// Command convo-inbox lists and replays the dead letters of a
// redisdedup.Inbox: the deliveries whose callback failed every attempt
// (or returned convo.ErrPermanent).
//
//	go install github.com/convokit/convo/redisdedup/cmd/convo-inbox@latest
//	convo-inbox -addr redis:6379 list
//	convo-inbox -addr redis:6379 replay selarti 0b9f3c1e
//	convo-inbox -addr redis:6379 replay -all
//
// -addr takes one address, or several separated by commas (a Cluster's
// nodes, or Sentinels with -master). The password, if any, is read from
// REDIS_PASSWORD (and the user from REDIS_USERNAME), never from a flag.
// A replayed delivery runs on a replica running the inbox (Inbox.Run);
// this command only marks it to run once more.
//
// It lives in the redisdedup module, not in cmd/convo, so that the convo
// command keeps to the standard library.
//
// Exit codes: 0 ok, 1 a Redis error or a delivery that is not a dead
// letter, 2 a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/redisdedup"
	"github.com/redis/go-redis/v9"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usage = `convo-inbox: the dead letters of a redisdedup.Inbox.

Usage:
  convo-inbox [flags] list                      list the dead letters, the oldest first
  convo-inbox [flags] replay PROVIDER ID        run one once more (PROVIDER: selarti or talkjs)
  convo-inbox [flags] replay -all               run every dead letter once more

Flags:
`

// run is the whole program: args without the program name, env in place
// of os.Getenv.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	fs := flag.NewFlagSet("convo-inbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:6379", "Redis address, or several separated by commas (Cluster nodes, Sentinels)")
	master := fs.String("master", "", "the Sentinel master name (with -addr the Sentinels)")
	prefix := fs.String("prefix", redisdedup.DefaultInboxPrefix, "the inbox's key prefix (redisdedup.WithPrefix)")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return exitUsage
	}
	var all bool
	cmd := rest[0]
	switch cmd {
	case "list":
		if len(rest) != 1 {
			fmt.Fprintln(stderr, "convo-inbox list: takes no arguments")
			return exitUsage
		}
	case "replay":
		rfs := flag.NewFlagSet("replay", flag.ContinueOnError)
		rfs.SetOutput(stderr)
		rfs.BoolVar(&all, "all", false, "replay every dead letter")
		if err := rfs.Parse(rest[1:]); err != nil {
			return exitUsage
		}
		rest = rfs.Args()
		if all != (len(rest) == 0) || (!all && len(rest) != 2) {
			fmt.Fprintln(stderr, "convo-inbox replay: give PROVIDER and ID, or -all")
			return exitUsage
		}
		if !all && rest[0] != string(convo.ProviderSelarti) && rest[0] != string(convo.ProviderTalkJS) {
			fmt.Fprintf(stderr, "convo-inbox replay: PROVIDER must be selarti or talkjs, not %q\n", rest[0])
			return exitUsage
		}
	default:
		fmt.Fprintf(stderr, "convo-inbox: unknown command %q\n", rest[0])
		fs.Usage()
		return exitUsage
	}

	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      strings.Split(*addr, ","),
		MasterName: *master,
		Username:   env("REDIS_USERNAME"),
		Password:   env("REDIS_PASSWORD"),
	})
	defer rdb.Close()
	in := redisdedup.NewInbox(rdb, redisdedup.WithPrefix(*prefix))

	switch {
	case cmd == "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROVIDER\tID\tKEY\tATTEMPTS\tRECEIVED\tBYTES")
		for d, err := range in.DeadLetters(ctx) {
			if err != nil {
				tw.Flush()
				fmt.Fprintln(stderr, "convo-inbox:", err)
				return exitError
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", d.Provider, d.ID, d.Key, d.Attempt,
				d.Received.UTC().Format(time.RFC3339), len(d.Body))
		}
		tw.Flush()
		return exitOK
	case all:
		// Collect first: a replayed delivery leaves the list.
		var ds []convo.Delivery
		for d, err := range in.DeadLetters(ctx) {
			if err != nil {
				fmt.Fprintln(stderr, "convo-inbox:", err)
				return exitError
			}
			ds = append(ds, d)
		}
		code := exitOK
		for _, d := range ds {
			if err := in.Replay(ctx, d.Provider, d.ID); err != nil {
				fmt.Fprintln(stderr, "convo-inbox:", err)
				code = exitError
				continue
			}
			fmt.Fprintf(stdout, "replayed %s %s\n", d.Provider, d.ID)
		}
		return code
	default:
		if err := in.Replay(ctx, convo.Provider(rest[0]), rest[1]); err != nil {
			fmt.Fprintln(stderr, "convo-inbox:", err)
			return exitError
		}
		fmt.Fprintf(stdout, "replayed %s %s\n", rest[0], rest[1])
		return exitOK
	}
}
