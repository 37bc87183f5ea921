// Package dbtool is the operator's binary at work beside PostgreSQL, as `manager db <command>`:
// the database's init container prepares the data directory and sets the role's password, the
// backup Job dumps the database, the restore Job restores a dump, and the verification Job
// restores one into a throw-away server to check it. These steps need the
// PostgreSQL tools of the database's image (so that they match the server's major version), so
// they run in that image: an init container of the operator's image first copies the binary
// into a volume the pod shares (`manager db install`), as CloudNativePG does with its manager.
//
// Every program is run with an argument vector, never through a shell; no value is spliced
// into SQL; a dump's result is read and written as dumps.Result. The environment each command
// reads is named in internal/backup/backupenv; the commands never print it (it holds the password).
package dbtool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// exitInterrupted is the exit code of a command that SIGTERM (a Job's deadline, a pod's
// deletion) or SIGINT stopped, having cleaned up after itself: as a shell reports a child stopped
// by SIGTERM.
const exitInterrupted = 128 + int(syscall.SIGTERM)

// errInterrupted is how a command reports that SIGTERM or SIGINT stopped it.
var errInterrupted = errors.New("interrupted")

var tool = subcommand.Tool{
	Name:     "db",
	Synopsis: "usage: manager db <command>",
	Notes: func(w io.Writer) {
		fmt.Fprintln(w, "They read their input from the environment, as the operator's Jobs and pods set it.")
	},
	Commands: []subcommand.Command{
		{Name: "install", Summary: "copy this binary to the path given (the pod's shared volume)", Run: runInstall},
		{Name: "init", Summary: "prepare the data directory (initdb, role, database) and set the role's password", Run: runInit},
		{Name: "dump", Summary: "dump the database into $DUMP_DIR and report its result", Run: runDump},
		{Name: "restore", Summary: "restore the verified dump $DUMP_FILE (or the one dump in $DUMP_DIR) into the empty database", Run: runRestore},
		{Name: "verify", Summary: "restore the dump $DUMP_FILE into a throw-away server in $PGDATA and check it gives back what was dumped", Run: runVerify},
	},
	Failed: failed,
}

// failures are the first words of each command's error message.
var failures = map[string]string{
	"install": "install failed",
	"init":    "database init failed",
	"dump":    "backup failed",
	"restore": "restore failed",
	"verify":  "verification failed",
}

// Main runs `manager db <command>`: args are the arguments after "db". It returns the process
// exit code: 0 on success, 1 on failure, 2 for a wrong command line, 143 when SIGTERM or SIGINT
// stopped it.
func Main(args []string, stdout, stderr io.Writer) int {
	return tool.Main(args, stdout, stderr)
}

// failed reports a command's error: a refused restore says so, an interrupted command exits as
// one stopped by SIGTERM.
func failed(stderr io.Writer, command string, err error) int {
	var refused refusal
	switch {
	case errors.As(err, &refused):
		fmt.Fprintf(stderr, "%s refused: %v\n", command, refused.error)
		return subcommand.ExitFailure
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(stderr, "%s: %v\n", failures[command], err)
		return exitInterrupted
	default:
		fmt.Fprintf(stderr, "%s: %v\n", failures[command], err)
		return subcommand.ExitFailure
	}
}

// noArguments refuses arguments to a command that takes none.
func noArguments(args []string) error {
	if len(args) > 0 {
		return subcommand.UsageErrorf("unexpected argument %q: the input comes from the environment", args[0])
	}
	return nil
}

// requiredEnv is the value of each of names, or an error naming those unset.
func requiredEnv(names ...string) ([]string, error) {
	values := make([]string, len(names))
	var missing []string
	for i, name := range names {
		if values[i] = os.Getenv(name); values[i] == "" {
			missing = append(missing, name)
		}
	}
	if missing != nil {
		return nil, fmt.Errorf("%v must be set", missing)
	}
	return values, nil
}

// databaseLabel names the database $PGDATABASE gives, for messages: a connection URL (an
// external database's) holds a password, and shows as its database and host only.
func databaseLabel(database string) string {
	if !strings.Contains(database, "://") {
		return "database " + database
	}
	u, err := url.Parse(database)
	if err != nil {
		return "the database of the connection URL"
	}
	return fmt.Sprintf("database %s on %s", strings.TrimPrefix(u.Path, "/"), u.Host)
}

// stopGrace is how long a program stopped by SIGTERM has to end before it is killed.
const stopGrace = 10 * time.Second

// program runs a PostgreSQL tool found on PATH with the environment of this process. Its
// output goes to stdout and stderr; when ctx ends it gets SIGTERM, on which pg_dump, pg_restore
// and psql cancel their query and exit.
func program(ctx context.Context, stdout, stderr io.Writer, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	return cmd
}

// runProgram runs a program to its end: errInterrupted if ctx ended meanwhile, else an error
// saying how it failed (its own message is in its output, above).
func runProgram(ctx context.Context, stdout, stderr io.Writer, name string, args ...string) error {
	err := program(ctx, stdout, stderr, name, args...).Run()
	if ctx.Err() != nil {
		return errInterrupted
	}
	return exitError(name, err)
}

// exitError describes how a program failed, nil if it did not.
func exitError(name string, err error) error {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return fmt.Errorf("%s exited with status %d (its message is above)", name, exit.ExitCode())
	default:
		return fmt.Errorf("running %s: %w", name, err)
	}
}

// runInstall copies the running binary to the path given, executable by everyone: the volume
// it goes to is shared with a container of another image. It replaces the file atomically, as an
// init container run again (the pod restarted) finds the copy of its first run there.
func runInstall(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) != 1 {
		return subcommand.UsageErrorf("give the path to copy the binary to")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	err = dumps.WriteAtomically(args[0], func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	})
	if err != nil {
		return err
	}
	// Nothing runs the copy before this container ends.
	if err := os.Chmod(args[0], 0o555); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "installed %s\n", args[0])
	return nil
}
