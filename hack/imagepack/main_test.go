package main

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The attribute `setcap cap_net_bind_service=+ep FILE` writes, as getfattr -e hex shows it.
func TestFileCapability(t *testing.T) {
	got, err := fileCapability("net_bind_service")
	if err != nil {
		t.Fatal(err)
	}
	if want := "0100000200040000000000000000000000000000"; hex.EncodeToString([]byte(got)) != want {
		t.Errorf("fileCapability(net_bind_service) = %x, want %s", got, want)
	}
	if _, err := fileCapability("net_bind_servce"); err == nil {
		t.Error("a misspelt capability was accepted")
	}
}

func TestWriteLayer(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to give files other owners")
	}
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "var/lib/data"), 0o755))
	must(os.Chown(filepath.Join(root, "var/lib/data"), 999, 999))
	must(os.Chmod(filepath.Join(root, "var/lib/data"), 0o777|os.ModeSticky))
	must(os.WriteFile(filepath.Join(root, "bin"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Link(filepath.Join(root, "bin"), filepath.Join(root, "bin2")))
	must(os.Symlink("/run", filepath.Join(root, "var/run")))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))

	var buf bytes.Buffer
	must(writeLayer(&buf, root, map[string]string{"bin": "cap"}))
	got := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		got[h.Name] = h
	}

	if h := got["var/lib/data/"]; h == nil || h.Uid != 999 || h.Gid != 999 || h.Mode&0o7777 != 0o1777 || h.Uname != "" {
		t.Errorf("var/lib/data/ = %+v, want owner 999:999 without names, mode 1777", h)
	}
	if h := got["bin"]; h == nil || h.Typeflag != tar.TypeReg || h.Size != 10 || h.PAXRecords["SCHILY.xattr.security.capability"] != "cap" {
		t.Errorf("bin = %+v, want a 10-byte file with its capability", h)
	}
	if h := got["bin2"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "bin" {
		t.Errorf("bin2 = %+v, want a hard link to bin", h)
	}
	if h := got["var/run"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/run" {
		t.Errorf("var/run = %+v, want a symlink to /run", h)
	}
	if h := got["fifo"]; h != nil {
		t.Errorf("fifo packed: %+v", h)
	}
	if err := writeLayer(io.Discard, root, map[string]string{"missing": "cap"}); err == nil {
		t.Error("a -filecap path that is not in the tree was accepted")
	}
}
