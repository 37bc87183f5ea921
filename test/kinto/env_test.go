//go:build kinto

// Package kinto_test boots the real Kinto server on a real PostgreSQL from exactly what the
// operator's pure builders render for an instance (kinto.ini, commands, environment, the database
// init container and server arguments), then checks the server over HTTP. The steps the pods run
// with the operator's binary (`manager db ...`) run the binary built from this tree. Nothing is mocked; each
// adaptation needed to run outside a pod (paths, ports, 127.0.0.1) is made in one place and
// logged.
//
// Run with `make test-kinto`, or:
//
//	make kinto-server
//	KINTO_BIN=$PWD/bin/kinto-26.5.0/bin/kinto go test -v -count=1 -tags kinto ./test/kinto/...
package kinto_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// Timeouts of the waits: generous for a loaded CI machine, yet bounded.
const (
	startTimeout    = 60 * time.Second
	stopTimeout     = 30 * time.Second
	eventualTimeout = 60 * time.Second
	pollInterval    = 100 * time.Millisecond
)

// operatorBinary is the operator's binary, built from this tree by TestMain: what the operator's
// image holds at /manager.
var operatorBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kinto-test-manager-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The tests run it as the PostgreSQL user too.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	operatorBinary = filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", operatorBinary, "github.com/kinto-storage/kinto-operator")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as the image's binary: static
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the operator's binary: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// kintoBin is the kinto executable under test (KINTO_BIN), as an absolute path.
func kintoBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KINTO_BIN")
	if bin == "" {
		t.Fatalf("KINTO_BIN is not set: run `make test-kinto`, or `make kinto-server` then "+
			"KINTO_BIN=$PWD/bin/kinto-%s/bin/kinto go test -tags kinto ./test/kinto/...", v1alpha1.DefaultKintoVersion)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatalf("KINTO_BIN=%s: %v", bin, err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("KINTO_BIN=%s is not an executable file (install it with `make kinto-server`): %v", bin, err)
	}
	return abs
}

// postgresBinDir is where the PostgreSQL binaries of a major version are: Debian's layout, or
// PG_BINDIR when set.
func postgresBinDir(t *testing.T, major string) string {
	t.Helper()
	dir := os.Getenv("PG_BINDIR")
	if dir == "" {
		dir = "/usr/lib/postgresql/" + major + "/bin"
	}
	for _, b := range []string{"initdb", "postgres", "pg_isready", "psql"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("PostgreSQL %s binaries are missing (%v): install them (apt-get install postgresql-%s) "+
				"or point PG_BINDIR at the directory holding initdb and postgres", major, err, major)
		}
	}
	return dir
}

// postgresCredential is who PostgreSQL runs as: it refuses to run as root, so a root test runs
// it as the unprivileged postgres user (PG_USER to choose another); others run it as themselves.
func postgresCredential(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	name := os.Getenv("PG_USER")
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("running as root, PostgreSQL needs an unprivileged user %q (PG_USER): %v", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on right now, and that it has
// not returned before: the kernel hands a port just closed out again, and two parallel tests
// given the same one would each take the other's server for its own.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, given := portsGiven.LoadOrStore(port, true); !given {
			return port
		}
	}
	t.Fatal("no free port that was not given before")
	return 0
}

// portsGiven are the ports freePort returned.
var portsGiven sync.Map

// tempDir is a directory removed when the test ends, owned by cred (nil: the test's user) and
// reachable by it, unlike t.TempDir whose parent only the test's user may enter.
func tempDir(t *testing.T, prefix string, cred *syscall.Credential) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// processGroup makes a command the leader of its own process group, so that stopping it stops
// whatever it started too.
func processGroup(cmd *exec.Cmd, cred *syscall.Credential) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}

// tail is the end of a log file, for failure messages.
func tail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return strings.TrimRight(string(b), "\n")
}

// Instances. The API server applies the CRD's defaults, then the operator those of the hosting
// class (here none); these tests build instances in Go and apply the same defaults with the API
// server's own code (internal/crddefaults) and the operator's (internal/hostingclass).

// withDefaults returns the instance as the operator's builders get it.
func withDefaults(inst *v1alpha1.KintoInstance) *v1alpha1.KintoInstance {
	inst, _ = hostingclass.Effective(crddefaults.MustDefault(inst), nil)
	if inst.Namespace == "" {
		inst.Namespace = "default"
	}
	if inst.UID == "" {
		inst.UID = types.UID("test-uid-" + inst.Name)
	}
	return inst
}

// newInstance is a defaulted instance whose spec mutate adjusts before defaulting.
func newInstance(name string, mutate func(*v1alpha1.KintoInstanceSpec)) *v1alpha1.KintoInstance {
	inst := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kinto-test"}}
	if mutate != nil {
		mutate(&inst.Spec)
	}
	return withDefaults(inst)
}

// sampleObjects reads a sample manifest of config/samples: its KintoInstance, defaulted, and
// its Secrets, with stringData folded into data as the API server stores it.
func sampleObjects(t *testing.T, file string) (*v1alpha1.KintoInstance, []*corev1.Secret) {
	t.Helper()
	inst, secrets := kintotest.Sample(t, file)
	for _, s := range secrets {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	return withDefaults(inst), secrets
}
