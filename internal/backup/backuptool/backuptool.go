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
	"fmt"
	"io"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

var tool = subcommand.Tool{
	Name:     "backup",
	Synopsis: "usage: manager backup <command> [flags]   (`manager backup <command> -h` for its flags)",
	Notes:    printNotes,
	Commands: []subcommand.Command{
		{Name: "upload", Summary: "upload the dump of a dump directory and print its result {file,size,sha256,key}", Run: runUpload},
		{Name: "download", Summary: "download a dump, verifying its checksum, and write its result beside it", Run: runDownload},
		{Name: "list", Summary: "list the objects under the prefix (or one instance's dumps)", Run: runList},
		{Name: "delete", Summary: "delete one dump, from the bucket or from a directory", Run: runDelete},
		{Name: "find", Summary: "find the recorded dump started in a time window (a backup's lost result) and print its result", Run: runFind},
		{Name: "serve-file", Summary: "serve one dump of a directory (a backup volume) to one download over HTTP, then end", Run: runServeFile},
	},
}

// Main runs `manager backup <command> [flags]`: args are the arguments after "backup". It
// returns the process exit code: 0 on success, 1 when the operation failed, 2 for a wrong command
// line. SIGTERM (the Job's deadline) and SIGINT cancel the operation cleanly: an interrupted
// upload leaves no partial object.
func Main(args []string, stdout, stderr io.Writer) int {
	return tool.Main(args, stdout, stderr)
}

func printNotes(w io.Writer) {
	fmt.Fprintf(w, "The S3 destination is given by flags or, for a flag not given, by %s.\n", destinationEnvSummary())
	fmt.Fprintf(w, "The credentials are read from %s and %s only.\n", backupenv.AccessKeyID, backupenv.SecretAccessKey)
	fmt.Fprintf(w, "With %s set (a URL the operator pre-signed for one object), upload, download and delete\n", backupenv.PresignedURL)
	fmt.Fprintf(w, "reach that object only, with no destination nor credentials (%s: the CA bundle, PEM).\n", backupenv.PresignedCABundle)
	fmt.Fprintln(w, "delete --dir and find --dir work on a directory (a backup volume) and need no S3 destination.")
}
