// Package subcommand runs the tools the operator's binary carries for its pods (`manager db
// <command>`, `manager backup <command>`): one dispatcher for their usage text, signals and exit
// codes, each tool keeping its commands in its own package.
package subcommand

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of Main.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command failed
	ExitUsage   = 2 // the command line is wrong
)

// Command is one command of a tool.
type Command struct {
	Name, Summary string
	// Run does the work: args are the arguments after the command's name. It ends early, with
	// an error, when ctx ends (SIGTERM or SIGINT).
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Tool is a command line of commands: `manager <Name> <command> ...`.
type Tool struct {
	Name string
	// Synopsis is the first line of the usage text; Notes, when set, writes what follows the
	// list of commands.
	Synopsis string
	Notes    func(w io.Writer)
	// Commands, in the order of the usage text.
	Commands []Command
	// Failed reports a command's error (other than a UsageError) on stderr and returns the exit
	// code. Unset: "<tool> <command>: <error>", ExitFailure.
	Failed func(stderr io.Writer, command string, err error) int
}

// UsageError is a mistake on the command line: Main prints it and exits ExitUsage.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

// UsageErrorf is a UsageError saying what is wrong.
func UsageErrorf(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// Main runs the command args name: args are the arguments after the tool's name. It returns the
// process's exit code. SIGTERM (a Job's deadline, a pod's deletion) and SIGINT cancel the
// command's context.
func (t Tool) Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		t.printUsage(stderr)
		return ExitUsage
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		t.printUsage(stdout)
		return ExitOK
	}
	cmd, ok := t.command(name)
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n", t.Name, name)
		t.printUsage(stderr)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.Run(ctx, args[1:], stdout, stderr)
	var usage *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s %s: %v (see `manager %s help`)\n", t.Name, name, err, t.Name)
		return ExitUsage
	case t.Failed != nil:
		return t.Failed(stderr, name, err)
	default:
		fmt.Fprintf(stderr, "%s %s: %v\n", t.Name, name, err)
		return ExitFailure
	}
}

func (t Tool) command(name string) (Command, bool) {
	for _, c := range t.Commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

func (t Tool) printUsage(w io.Writer) {
	fmt.Fprintln(w, t.Synopsis)
	fmt.Fprintln(w, "\ncommands:")
	width := 0
	for _, c := range t.Commands {
		width = max(width, len(c.Name))
	}
	for _, c := range t.Commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
	if t.Notes != nil {
		fmt.Fprintln(w)
		t.Notes(w)
	}
}
