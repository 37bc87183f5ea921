package dbtool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// kintoObjectsTable holds every Kinto object, each with its resource_name, tombstones marked
// deleted.
const kintoObjectsTable = "objects"

// dumpCounts counts the live objects of each dumps.CountedResources type in the dump at path,
// reading the rows of kintoObjectsTable back from it (pg_restore's COPY text, never a
// database): what a restore of the dump must give back. A dump with no such table (not Kinto's)
// counts nothing.
func dumpCounts(ctx context.Context, path string, stderr io.Writer) (map[string]int64, error) {
	cmd := program(ctx, nil, stderr, "pg_restore", "--data-only", "--table="+kintoObjectsTable, "--file=-", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting pg_restore: %w", err)
	}
	counts, parseErr := countCopyRows(out)
	// Read to the end, so that pg_restore is not stopped by a closed pipe.
	_, _ = io.Copy(io.Discard, out)
	err = cmd.Wait()
	if ctx.Err() != nil {
		return nil, errInterrupted
	}
	if err := exitError("pg_restore", err); err != nil {
		return nil, err
	}
	return counts, parseErr
}

// countCopyRows counts, in the COPY statement of kintoObjectsTable of a pg_restore script, the
// rows of each dumps.CountedResources type that are not deleted. COPY's text format escapes a
// tab or a newline inside a value, so rows are lines and fields are split at tabs.
func countCopyRows(script io.Reader) (map[string]int64, error) {
	counts := map[string]int64{}
	for _, r := range dumps.CountedResources {
		counts[r] = 0
	}
	lines := bufio.NewReader(script)
	resource, deleted := -1, -1
	for {
		line, err := lines.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case resource < 0 && strings.HasPrefix(line, "COPY ") && strings.HasSuffix(line, " FROM stdin;"):
			open, end := strings.Index(line, "("), strings.LastIndex(line, ")")
			if open < 0 || end < open {
				return nil, fmt.Errorf("unexpected COPY statement %q", line)
			}
			columns := strings.Split(line[open+1:end], ", ")
			resource, deleted = slices.Index(columns, "resource_name"), slices.Index(columns, "deleted")
			if resource < 0 || deleted < 0 {
				return nil, fmt.Errorf("table %s has no resource_name or deleted column: %q", kintoObjectsTable, line)
			}
		case resource >= 0 && line == `\.`:
			return counts, nil
		case resource >= 0:
			fields := strings.Split(line, "\t")
			if len(fields) <= max(resource, deleted) {
				return nil, fmt.Errorf("a row of table %s has %d fields", kintoObjectsTable, len(fields))
			}
			if _, counted := counts[fields[resource]]; counted && fields[deleted] == "f" {
				counts[fields[resource]]++
			}
		}
		if errors.Is(err, io.EOF) {
			if resource >= 0 {
				return nil, fmt.Errorf("the rows of table %s end early", kintoObjectsTable)
			}
			return nil, nil
		}
	}
}
