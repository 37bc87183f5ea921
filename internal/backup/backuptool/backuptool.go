// Package backuptool is the storage step of a backup Job: the operator's binary runs it as
// `manager backup <command>` after pg_dump, to upload the dump to object storage; a restore runs
// it to download a dump, and the KintoBackup controller to delete one (from the bucket or a
// backup volume) with its KintoBackup, or to find the dump of a backup whose result was lost. It is a thin command line over internal/backup/objectstore and
// internal/backup/dumps.
//
// The destination comes from flags, or from the environment when a flag is absent (so that the
// Job's containers can share one env block); the credentials come only from the environment,
// filled from a Secret, never from flags, which anyone who can read the pod spec or the process
// list would see.
package backuptool

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

// Exit codes of Main.
const (
	exitOK      = 0
	exitFailure = 1 // the operation failed
	exitUsage   = 2 // the command line is wrong
)

// command is one subcommand: run parses its flags from args and does the work.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"upload":   {"upload the dump of a dump directory and print its result {file,size,sha256,key}", runUpload},
	"download": {"download a dump, verifying its checksum, and write its result beside it", runDownload},
	"list":     {"list the objects under the prefix (or one instance's dumps)", runList},
	"delete":   {"delete one dump, from the bucket or from a directory", runDelete},
	"find":     {"find the recorded dump started in a time window (a backup's lost result) and print its result", runFind},
}

// commandOrder is the order of the commands in the usage text.
var commandOrder = []string{"upload", "download", "list", "delete", "find"}

// usageError is a mistake on the command line: Main prints it with the usage and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Main runs `manager backup <command> [flags]`: args are the arguments after "backup". It
// returns the process exit code: 0 on success, 1 when the operation failed, 2 for a wrong command
// line. SIGTERM (the Job's deadline) and SIGINT cancel the operation cleanly: an interrupted
// upload leaves no partial object.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		printUsage(stdout)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "backup: unknown command %q\n", name)
		printUsage(stderr)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:], stdout, stderr)
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "backup %s: %v (see `backup %s -h`)\n", name, err, name)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "backup %s: %v\n", name, err)
		return exitFailure
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: manager backup <command> [flags]   (`manager backup <command> -h` for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, name := range commandOrder {
		fmt.Fprintf(w, "  %-9s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(w, "\nThe S3 destination is given by flags or, for a flag not given, by %s.\n", destinationEnvSummary())
	fmt.Fprintf(w, "The credentials are read from %s and %s only.\n", backupenv.AccessKeyID, backupenv.SecretAccessKey)
	fmt.Fprintf(w, "With %s set (a URL the operator pre-signed for one object), upload, download and delete\n", backupenv.PresignedURL)
	fmt.Fprintf(w, "reach that object only, with no destination nor credentials (%s: the CA bundle, PEM).\n", backupenv.PresignedCABundle)
	fmt.Fprintln(w, "delete --dir and find --dir work on a directory (a backup volume) and need no S3 destination.")
}
