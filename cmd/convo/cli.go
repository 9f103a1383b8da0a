package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/convokit/convo"
)

// cmdIO is what every command gets from run.
type cmdIO struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	env    func(string) string
}

// errorf writes "convo NAME: message" to stderr.
func (c cmdIO) errorf(name, format string, args ...any) {
	fmt.Fprintf(c.stderr, "convo %s: %s\n", name, fmt.Sprintf(format, args...))
}

// subcommand dispatches "convo GROUP SUB ...".
func subcommand(c cmdIO, group string, args []string, subs map[string]func(cmdIO, []string) int) int {
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	help := fmt.Sprintf("usage: convo %s %s ... (see convo %s %s -h)\n", group, strings.Join(names, "|"), group, names[0])
	if len(args) == 0 {
		fmt.Fprint(c.stderr, help)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprint(c.stdout, help)
		return exitOK
	}
	fn, ok := subs[args[0]]
	if !ok {
		c.errorf(group, "unknown subcommand %q", args[0])
		fmt.Fprint(c.stderr, help)
		return exitUsage
	}
	return fn(c, args[1:])
}

// newFlagSet makes a flag set whose usage starts with synopsis.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: convo %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. It returns -1 when the command should go
// on, else the exit code: 0 after -h (usage to stdout), 2 after a bad flag
// or a stray argument (message and usage to stderr).
func parseFlags(c cmdIO, fs *flag.FlagSet, args []string) int {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(c.stdout)
		fs.Usage()
		return exitOK
	default:
		c.errorf(fs.Name(), "%v", err)
		fs.SetOutput(c.stderr)
		fs.Usage()
		return exitUsage
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// keyValues is a repeatable key=value flag.
type keyValues map[string]string

func (m keyValues) String() string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (m keyValues) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	m[k] = val
	return nil
}

// sdkMessage is err's text without the SDK's "convo: " prefix: the
// command's messages already start with "convo NAME: ".
func sdkMessage(err error) string {
	return strings.ReplaceAll(err.Error(), "convo: ", "")
}

// flagOf names the flag behind a problem field of the SDK: the field
// without a leading "msgs[N]." (a command sends one message), its name
// looked up in flags and the rest kept ("Variables[1]" → "-var[1]"). A
// field not in flags is given as is.
func flagOf(field string, flags map[string]string) string {
	f := field
	if strings.HasPrefix(f, "msgs[") {
		if _, rest, ok := strings.Cut(f, "]."); ok {
			f = rest
		}
	}
	end := strings.IndexAny(f, ".[")
	if end < 0 {
		end = len(f)
	}
	if name, ok := flags[f[:end]]; ok {
		return "-" + name + f[end:]
	}
	return field
}

// problemLine says a problem with the flag's name: "-sender is required",
// "-phone: must have 8 to 15 digits, has 7".
func problemLine(p convo.Problem, flags map[string]string) string {
	name := flagOf(p.Field, flags)
	if rest, ok := strings.CutPrefix(p.Reason, "required"); ok {
		return name + " is required" + rest
	}
	if p.Reason == "must not be empty" {
		return name + " is required"
	}
	return name + ": " + p.Reason
}

// reportCallError prints err from an SDK call and gives the exit code:
// 2 for a request refused before sending, 1 for everything else, saying
// plainly when the request may have been applied.
func reportCallError(c cmdIO, name string, err error, flags map[string]string) int {
	var verr *convo.ValidationError
	if errors.As(err, &verr) {
		c.errorf(name, "validation failed, nothing was sent:")
		for _, p := range verr.Problems {
			fmt.Fprintf(c.stderr, "  %s\n", problemLine(p, flags))
		}
		return exitUsage
	}
	c.errorf(name, "%s", sdkMessage(err))
	switch {
	case errors.Is(err, convo.ErrOutcomeUnknown):
		c.errorf(name, "the request may have been applied; do not resend blindly")
	case errors.Is(err, convo.ErrBadResponse):
		c.errorf(name, "the request was applied, but its answer could not be read; do not resend")
	case errors.Is(err, convo.ErrNotConfigured):
		return exitUsage
	}
	return exitAPI
}
