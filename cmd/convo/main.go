// Command convo runs the convo SDK from a terminal: a fake of the
// providers for tests in any language, a webhook listener, and one-off
// Talqui session starts, TalkJS sends and Selarti sends, each with a
// -dry-run. The API commands are configured from the environment by
// convo.WithEnv, and say first, on stderr, which host they call.
//
//	go install github.com/convokit/convo/cmd/convo@latest
//	convo -h
//
// Exit codes: 0 ok, 1 an API or transport error, 2 a usage or validation
// error. Errors go to stderr, results to stdout.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitAPI   = 1 // the API answered an error, or the transport failed
	exitUsage = 2 // bad flags, missing environment, or a request that breaks a rule
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usage = `convo: the convo SDK from a terminal.

Usage:
  convo fake [-addr 127.0.0.1:0] [-env] [-selarti-webhook URL]
                                                  serve the convotest fake and print its variables
  convo listen -selarti ADDR -talkjs ADDR [-forward URL]
                                                  print each webhook delivery as a JSON line
  convo session start -channel CHANNEL ...        start a Talqui session (TALQUI_* environment)
  convo talkjs send -conversation ID -sender ID -text TEXT
                                                  send a TalkJS message (TALKJS_* environment)
  convo selarti send -chat ID -text TEXT [-task ID]
                                                  send a person's message to Selarti's AI (SELARTI_*)

The API commands configure the SDK from the environment with convo.WithEnv:
TALQUI_TENANT, TALQUI_CONNECTION_ID, TALQUI_TOKEN, TALQUI_URL, TALKJS_APP_ID,
TALKJS_SECRET_KEY, TALKJS_URL, SELARTI_API_KEY, SELARTI_URL (and SELARTI_TASK_ID);
each names on its first line (stderr) the host it calls. -dry-run sends nothing
and needs no credentials; -timeout bounds a call (default 30s).

Run "convo COMMAND -h" for a command's flags. Exit codes: 0 ok, 1 API or
transport error, 2 usage or validation error.
`

// run is the whole program: args without the program name, env in place of
// os.Getenv. ctx ends the long-running commands (fake, listen) cleanly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	c := cmdIO{ctx: ctx, stdout: stdout, stderr: stderr, env: env}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "fake":
		return runFake(c, rest)
	case "listen":
		return runListen(c, rest)
	case "session":
		return subcommand(c, "session", rest, map[string]func(cmdIO, []string) int{"start": runSessionStart})
	case "talkjs":
		return subcommand(c, "talkjs", rest, map[string]func(cmdIO, []string) int{"send": runTalkJSSend})
	case "selarti":
		return subcommand(c, "selarti", rest, map[string]func(cmdIO, []string) int{"send": runSelartiSend})
	default:
		fmt.Fprintf(stderr, "convo: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}
