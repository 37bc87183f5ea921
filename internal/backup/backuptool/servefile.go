package backuptool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// runServeFile serves one dump of a backup volume to the operator, which passes it on to a
// member's download: GET resources.BackupReaderPath answers the file once, then the command
// ends; GET resources.BackupReaderReadyPath answers once the file is open (the pod's readiness).
func runServeFile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve-file", stderr)
	dir := fs.String("dir", "", "the directory of the dump (a backup volume, mounted read-only)")
	file := fs.String("file", "", "the name of the dump in --dir")
	listen := fs.String("listen", ":"+strconv.Itoa(resources.BackupReaderPort), "the address to serve on")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return subcommand.UsageErrorf("--dir is required")
	}
	if _, ok := dumps.ParseFileName(*file); !ok {
		return subcommand.UsageErrorf("--file %q is not the name of a dump (<UTC time>.dump, without a directory)", *file)
	}
	f, err := openDump(filepath.Join(*dir, *file))
	if err != nil {
		return err
	}
	defer f.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	return serveFile(ctx, ln, f)
}

// openDump opens the regular file path (never a directory, a device or a symbolic link).
func openDump(path string) (*os.File, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, info.Mode().Type())
	}
	return os.Open(path)
}

// serveFile answers f to the first GET resources.BackupReaderPath on ln, and returns once that
// answer is sent (an error if it was cut short) or when ctx ends. Other requests of the file
// are refused: one reader serves one download.
func serveFile(ctx context.Context, ln net.Listener, f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	var taken atomic.Bool
	served := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+resources.BackupReaderReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+resources.BackupReaderPath, func(w http.ResponseWriter, _ *http.Request) {
		if !taken.CompareAndSwap(false, true) {
			http.Error(w, "this reader has served its download already", http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(info.Size(), 10))
		n, err := io.Copy(w, f)
		if err == nil && n != info.Size() {
			err = fmt.Errorf("%s: read %d bytes of %d", info.Name(), n, info.Size())
		}
		served <- err
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		err = errors.New("stopped before the file was downloaded")
	}
	// The answer's last bytes are flushed when its handler returns: Shutdown waits for that.
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if err != nil {
		return fmt.Errorf("serving %s: %w", info.Name(), err)
	}
	return nil
}
