package backuptool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// The dumps of a directory: the output directory of `manager db dump`, or a backup volume, where dumps
// stay as it wrote them, each with its result file.

// dirDumps lists the names of the dumps in dir, oldest first: the regular files named by
// dumps.FileName, never a hidden temporary file nor anything else a user keeps there.
func dirDumps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, e := range entries { // ReadDir sorts by name, which is time order for dumps
		if _, ok := dumps.ParseFileName(e.Name()); ok && e.Type().IsRegular() {
			found = append(found, e.Name())
		}
	}
	return found, nil
}

// findDump returns the name of the one finished dump in dir, the output directory of `manager db
// dump`: a dump with its result file beside it (the dump writes its result last).
func findDump(dir string) (string, error) {
	found, err := dirDumps(dir)
	if err != nil {
		return "", err
	}
	var finished, unfinished []string
	for _, name := range found {
		info, err := os.Stat(filepath.Join(dir, name+dumps.ResultSuffix))
		switch {
		case err == nil && info.Mode().IsRegular():
			finished = append(finished, name)
		case err == nil, errors.Is(err, fs.ErrNotExist):
			unfinished = append(unfinished, name)
		default:
			return "", err
		}
	}
	switch {
	case len(finished) == 1:
		return finished[0], nil
	case len(finished) > 1:
		return "", fmt.Errorf("%s holds %d dumps with a result file (%s), not one: which to upload is unclear",
			dir, len(finished), strings.Join(finished, ", "))
	case len(unfinished) > 0:
		return "", fmt.Errorf("%s holds no finished dump: %s has no result file beside it (the dump did not finish)",
			dir, strings.Join(unfinished, ", "))
	}
	return "", fmt.Errorf("%s holds no dump (<UTC time>.dump with its result file <UTC time>.dump%s)", dir, dumps.ResultSuffix)
}

// deleteDirDumps deletes the dumps names from dir, each with its result file. A file already gone
// is no failure, so that an interrupted delete can run again. The result file goes
// first: a dump without one is still a dump that a second run finds, and a result file whose
// dump is gone would be found by none.
func deleteDirDumps(dir string, names ...string) error {
	// A missing directory is a wrong --dir, not dumps already gone.
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	for _, name := range names {
		for _, path := range []string{filepath.Join(dir, name+dumps.ResultSuffix), filepath.Join(dir, name)} {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
