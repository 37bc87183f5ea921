// Command imagepack packs a root file system directory into a single-layer container image and
// writes it as an image archive (the `docker save` format) that `ctr images import` and
// `docker load` accept. hack/build-images.sh uses it, because no container engine or registry
// is available where the local cluster runs.
//
// The layer keeps each file's numeric owner, mode, symlinks and hard links as they are on disk
// (images run as uids such as 999 and 10001 that own their files), so run it as root on a tree
// made as root. Device nodes, sockets and FIFOs are left out: the runtime provides /dev.
//
// Usage:
//
//	imagepack -rootfs DIR -ref REF -o FILE [-env K=V]... [-user U] [-workdir DIR]
//	          [-entrypoint '["/bin", "arg"]'] [-cmd '["arg"]'] [-stopsignal SIG] [-filecap /PATH=CAP]...
//
// -filecap gives a file in the image a file capability (as `setcap CAP+ep` would), written into
// the layer rather than onto this host's disk: CoreDNS binds port 53 as a non-root user that way.
package main

import (
	"archive/tar"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
)

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// jsonListFlag is a JSON array of strings, as in a Dockerfile's exec form.
type jsonListFlag []string

func (l *jsonListFlag) String() string { b, _ := json.Marshal([]string(*l)); return string(b) }
func (l *jsonListFlag) Set(v string) error {
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return fmt.Errorf("want a JSON array of strings: %w", err)
	}
	*l = list
	return nil
}

func main() {
	var (
		rootfs, ref, out, user, workdir string
		stopSignal                      string
		env, filecaps                   listFlag
		entrypoint, cmd                 jsonListFlag
	)
	flag.StringVar(&rootfs, "rootfs", "", "directory packed as the image's file system (required)")
	flag.StringVar(&ref, "ref", "", "image reference recorded in the archive, e.g. docker.io/library/postgres:15 (required)")
	flag.StringVar(&out, "o", "", "archive to write (required)")
	flag.Var(&env, "env", "KEY=VALUE of the image's environment (repeatable)")
	flag.StringVar(&user, "user", "", "user the image runs as, e.g. 65532:65532")
	flag.StringVar(&workdir, "workdir", "", "working directory")
	flag.Var(&entrypoint, "entrypoint", `entrypoint as a JSON array, e.g. '["/manager"]'`)
	flag.Var(&cmd, "cmd", "default arguments as a JSON array")
	flag.StringVar(&stopSignal, "stopsignal", "", "signal the runtime stops the container with, e.g. SIGINT")
	flag.Var(&filecaps, "filecap", "/PATH=CAP: give the image's PATH file capability CAP, e.g. /coredns=net_bind_service (repeatable)")
	flag.Parse()
	if rootfs == "" || ref == "" || out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, kv := range env {
		if !strings.Contains(kv, "=") {
			fail(fmt.Errorf("-env %q: want KEY=VALUE", kv))
		}
	}
	// The reference is kept as written: the archive records it verbatim and containerd
	// normalizes it on import (postgres:15 becomes docker.io/library/postgres:15).
	tag, err := name.NewTag(ref)
	if err == nil && !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		err = errors.New("no tag")
	}
	if err != nil {
		fail(fmt.Errorf("-ref %q must name a tag: %w", ref, err))
	}

	caps := map[string]string{}
	for _, fc := range filecaps {
		path, capName, _ := strings.Cut(fc, "=")
		if !strings.HasPrefix(path, "/") {
			fail(fmt.Errorf("-filecap %q: want /PATH=CAP", fc))
		}
		xattr, err := fileCapability(capName)
		if err != nil {
			fail(fmt.Errorf("-filecap %q: %w", fc, err))
		}
		caps[strings.TrimPrefix(path, "/")] = xattr
	}

	cfg := v1.Config{
		Env:        env,
		User:       user,
		WorkingDir: workdir,
		Entrypoint: entrypoint,
		Cmd:        cmd,
		StopSignal: stopSignal,
	}
	if err := pack(rootfs, tag, cfg, caps, out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "imagepack:", err)
	os.Exit(1)
}

func pack(rootfs string, tag name.Tag, cfg v1.Config, caps map[string]string, out string) error {
	// The layer goes to a file next to the archive first: its digests must be known before the
	// archive's manifest is written, and a rootfs can be larger than memory should hold.
	layerFile, err := os.CreateTemp(filepath.Dir(out), ".layer-*.tar.gz")
	if err != nil {
		return err
	}
	defer os.Remove(layerFile.Name())
	zw, err := gzip.NewWriterLevel(layerFile, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := writeLayer(zw, rootfs, caps); err != nil {
		return fmt.Errorf("packing %s: %w", rootfs, err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := layerFile.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromFile(layerFile.Name())
	if err != nil {
		return err
	}

	now := v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      now,
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: now, CreatedBy: "imagepack " + filepath.Base(rootfs)},
	})
	if err != nil {
		return err
	}

	// Written under a temporary name and renamed: a half-written archive never looks complete.
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}

// writeLayer writes the tree under root as an uncompressed tar stream to w, in lexical order,
// with numeric owners only (names would be looked up on this host, not in the image). caps maps
// paths relative to root to the security.capability extended attribute they get.
func writeLayer(w io.Writer, root string, caps map[string]string) error {
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}

	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode()
		if mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket|fs.ModeNamedPipe) != 0 {
			return nil
		}
		link := ""
		if mode&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return errors.New("no owner information for " + path)
		}
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime = info.ModTime().Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if xattr, ok := caps[hdr.Name]; ok {
			if !mode.IsRegular() {
				return fmt.Errorf("-filecap %s: not a regular file", hdr.Name)
			}
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": xattr}
			delete(caps, hdr.Name)
		}
		if mode.IsRegular() && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := seen[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(hdr)
			}
			seen[key] = hdr.Name
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !mode.IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(caps) > 0 {
		return fmt.Errorf("-filecap: %d path(s) not found in %s", len(caps), root)
	}
	return tw.Close()
}

// capabilities are the numbers of the capabilities -filecap accepts (linux/capability.h).
var capabilities = map[string]uint{
	"chown": 0, "dac_override": 1, "fowner": 3, "kill": 5, "setgid": 6, "setuid": 7,
	"net_bind_service": 10, "net_admin": 12, "net_raw": 13, "sys_chroot": 18,
}

// fileCapability is the value of the security.capability extended attribute that makes the
// named capabilities permitted and effective when the file is executed: a vfs_cap_data
// revision 2 (little-endian magic with the effective flag, then permitted and inheritable
// words for capabilities 0-31 and 32-63).
func fileCapability(names string) (string, error) {
	var permitted uint64
	for _, n := range strings.Split(names, ",") {
		c, ok := capabilities[strings.TrimPrefix(strings.ToLower(n), "cap_")]
		if !ok {
			return "", fmt.Errorf("unknown capability %q", n)
		}
		permitted |= 1 << c
	}
	const magicRev2, effective = 0x02000000, 0x1
	data := binary.LittleEndian.AppendUint32(nil, magicRev2|effective)
	data = binary.LittleEndian.AppendUint32(data, uint32(permitted))
	data = binary.LittleEndian.AppendUint32(data, 0)
	data = binary.LittleEndian.AppendUint32(data, uint32(permitted>>32))
	data = binary.LittleEndian.AppendUint32(data, 0)
	return string(data), nil
}
