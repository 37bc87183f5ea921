package subcommand

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"
)

func TestToolMain(t *testing.T) {
	run := func(err error) func(context.Context, []string, io.Writer, io.Writer) error {
		return func(_ context.Context, args []string, stdout, _ io.Writer) error {
			fmt.Fprintf(stdout, "ran with %q", args)
			return err
		}
	}
	tool := Tool{
		Name: "demo", Synopsis: "usage: manager demo <command>",
		Notes: func(w io.Writer) { fmt.Fprintln(w, "Input comes from the environment.") },
		Commands: []Command{
			{Name: "ok", Summary: "succeeds", Run: run(nil)},
			{Name: "wrong", Summary: "refuses its command line", Run: run(UsageErrorf("--x is required"))},
			{Name: "fails", Summary: "fails", Run: run(errors.New("disk full"))},
			{Name: "helps", Summary: "prints its flags", Run: run(flag.ErrHelp)},
		},
	}
	withHook := tool
	withHook.Failed = func(stderr io.Writer, command string, err error) int {
		fmt.Fprintf(stderr, "%s went wrong: %v", command, err)
		return 143
	}
	usage := "usage: manager demo <command>\n\ncommands:\n  ok     succeeds\n  wrong  refuses its command line\n  fails  fails\n  helps  prints its flags\n\nInput comes from the environment.\n"
	cases := []struct {
		name           string
		tool           Tool
		args           []string
		code           int
		stdout, stderr string
	}{
		{"no command", tool, nil, ExitUsage, "", usage},
		{"help", tool, []string{"help"}, ExitOK, usage, ""},
		{"unknown command", tool, []string{"shell"}, ExitUsage, "", "demo: unknown command \"shell\"\n" + usage},
		{"success", tool, []string{"ok", "a", "b"}, ExitOK, `ran with ["a" "b"]`, ""},
		{"usage error", tool, []string{"wrong"}, ExitUsage, `ran with []`, "demo wrong: --x is required (see `manager demo help`)\n"},
		{"failure", tool, []string{"fails"}, ExitFailure, `ran with []`, "demo fails: disk full\n"},
		{"failure reported by the tool", withHook, []string{"fails"}, 143, `ran with []`, "fails went wrong: disk full"},
		{"flag help", tool, []string{"helps"}, ExitOK, `ran with []`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := tc.tool.Main(tc.args, &stdout, &stderr)
			if code != tc.code || stdout.String() != tc.stdout || stderr.String() != tc.stderr {
				t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
