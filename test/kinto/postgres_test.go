//go:build kinto

package kinto_test

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// postgresCluster is a throw-away PostgreSQL server run from the managed database's StatefulSet:
// its first init container installs the operator's binary (built by TestMain) into a directory
// of the test standing for the tools volume, its second (`manager db init`) prepares the data
// directory, its main container's command runs the server, its startup probe says when it is
// ready.
type postgresCluster struct {
	t       *testing.T
	binDir  string
	cred    *syscall.Credential
	dir     string // owned by the PostgreSQL user: data directory, socket, logs
	dataDir string
	port    int
	tools   podTools

	initCommand []string
	podEnv      []corev1.EnvVar
	initEnv     []string
	args        []string // the server's command, adapted
	probe       []string // the startup probe's command, adapted

	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	starts  int
}

// startPostgres prepares and starts the managed database of inst, with the password of the
// instance's credentials Secret, and stops it when the test ends.
func startPostgres(t *testing.T, inst *v1alpha1.KintoInstance, creds *corev1.Secret) *postgresCluster {
	t.Helper()
	db := inst.Spec.ManagedDatabase()
	if db == nil {
		t.Fatalf("instance %s has no managed database", inst.Name)
	}
	sts := resources.DatabaseStatefulSet(inst, "", operatorImage, false)
	pod := sts.Spec.Template.Spec
	if len(pod.InitContainers) != 2 || len(pod.Containers) != 1 {
		t.Fatalf("database StatefulSet: want 2 init containers and 1 container, got %d and %d", len(pod.InitContainers), len(pod.Containers))
	}
	installC, initC, mainC := pod.InitContainers[0], pod.InitContainers[1], pod.Containers[0]

	cred := postgresCredential(t)
	p := &postgresCluster{
		t:      t,
		binDir: postgresBinDir(t, db.Version),
		cred:   cred,
		dir:    tempDir(t, "kinto-test-pg-", cred),
		port:   freePort(t),
	}
	p.dataDir = filepath.Join(p.dir, "pgdata")
	p.logPath = filepath.Join(p.dir, "postgres.log")

	// The pod's PGDATA is on its volume; here it is in the temp dir.
	podPGData := envValue(t, initC.Env, "PGDATA")
	p.tools = installTools(t, installC, cred)
	p.initCommand = p.tools.command(t, initC.Command)
	p.podEnv = initC.Env
	p.SetCredentials(creds)

	// The server's command, adapted: data directory, 127.0.0.1 only, a free port, the socket in
	// the temp dir (the pod mounts an emptyDir on /var/run/postgresql, which may not exist here).
	if len(mainC.Command) == 0 || mainC.Command[0] != "postgres" {
		t.Fatalf("database container command %q does not start postgres", mainC.Command)
	}
	p.args = []string{filepath.Join(p.binDir, "postgres")}
	for _, a := range mainC.Command[1:] {
		switch a {
		case podPGData:
			a = p.dataDir
		case "listen_addresses=*":
			a = "listen_addresses=127.0.0.1"
		}
		p.args = append(p.args, a)
	}
	p.args = append(p.args, "-c", "unix_socket_directories="+p.dir)

	// Readiness as the StatefulSet's startup probe sees it, on the test port.
	probe := mainC.StartupProbe
	if probe == nil || probe.Exec == nil || len(probe.Exec.Command) == 0 {
		t.Fatalf("database container has no exec startup probe")
	}
	p.probe = append([]string{filepath.Join(p.binDir, probe.Exec.Command[0])}, probe.Exec.Command[1:]...)
	t.Logf("PostgreSQL %s in %s (adapted: PGDATA, listen_addresses=127.0.0.1, port, unix_socket_directories)", db.Version, p.dir)

	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("PostgreSQL log:\n%s", tail(p.logPath, 4000))
		}
	})
	p.Start()
	return p
}

// UseTemplate takes the environment of the database init container of sts for the next
// SetCredentials, as a StatefulSet's pod restarted at that template.
func (p *postgresCluster) UseTemplate(sts *appsv1.StatefulSet) {
	p.t.Helper()
	for _, c := range sts.Spec.Template.Spec.InitContainers {
		if c.Name == "init-database" {
			p.podEnv = c.Env
			return
		}
	}
	p.t.Fatalf("StatefulSet %s has no init-database container", sts.Name)
}

// SetCredentials resolves the database pod's environment (POSTGRES_PASSWORD) against a
// credentials Secret, for the next Start.
func (p *postgresCluster) SetCredentials(creds *corev1.Secret) {
	p.t.Helper()
	p.initEnv = containerEnv(p.t, p.podEnv, map[string]*corev1.Secret{creds.Name: creds}, map[string]string{
		"PGDATA": p.dataDir,
	})
	p.initEnv = append(p.initEnv, "PATH="+p.binDir+":/usr/local/bin:/usr/bin:/bin")
}

// Start runs the init container's command, as on every pod start, then the server, and waits
// until the startup probe passes.
func (p *postgresCluster) Start() {
	t := p.t
	t.Helper()
	p.starts++
	start := time.Now()

	if out, err := p.runInit(p.initEnv); err != nil {
		t.Fatalf("database init container (%q) failed: %v\n%s", p.initCommand, err, out)
	}
	t.Logf("database init container ran (start %d) in %s", p.starts, time.Since(start).Round(time.Millisecond))

	// A port found free may be taken by another test before postgres binds it: the first start
	// then tries another one.
	for attempt := 1; !p.startServer(); attempt++ {
		if p.starts > 1 || attempt == 3 {
			t.Fatalf("postgres exited while starting (%s):\n%s", p.cmd.ProcessState, tail(p.logPath, 8000))
		}
		t.Logf("port %d taken meanwhile: trying another", p.port)
		p.port = freePort(t)
	}
	t.Logf("PostgreSQL ready on 127.0.0.1:%d (start %d) in %s", p.port, p.starts, time.Since(start).Round(time.Millisecond))
}

// runInit runs the init container's command with env, while the server is stopped, and returns
// its output.
func (p *postgresCluster) runInit(env []string) (string, error) {
	init := exec.Command(p.initCommand[0], p.initCommand[1:]...)
	init.Env = env
	init.Dir = p.dir
	processGroup(init, p.cred)
	out, err := init.CombinedOutput()
	return string(out), err
}

// startServer starts postgres on p.port and waits until the startup probe passes. It reports
// false if postgres could not bind its port.
func (p *postgresCluster) startServer() bool {
	t := p.t
	t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logStart, _ := logFile.Seek(0, io.SeekEnd)
	args := append(append([]string(nil), p.args...), "-c", fmt.Sprintf("port=%d", p.port))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = p.initEnv
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	processGroup(cmd, p.cred)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting postgres: %v", err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(p.exited)

	probe := append([]string(nil), p.probe...)
	for i, a := range probe {
		if strings.HasPrefix(a, "--port=") {
			probe[i] = fmt.Sprintf("--port=%d", p.port)
		}
	}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.logPath)
			if int64(len(b)) >= logStart && strings.Contains(string(b[logStart:]), "could not bind") {
				return false
			}
			t.Fatalf("postgres exited while starting (%s):\n%s", cmd.ProcessState, tail(p.logPath, 8000))
		default:
		}
		c := exec.Command(probe[0], probe[1:]...)
		c.Dir = p.dir
		// The probe may reach another test's server that took the port first, while this one
		// fails to bind it: the server is this one when its own postmaster.pid says so.
		if c.Run() == nil && p.serving(cmd.Process.Pid) {
			return true
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not ready on 127.0.0.1:%d within %s:\n%s", p.port, startTimeout, tail(p.logPath, 8000))
		}
		time.Sleep(pollInterval)
	}
}

// serving says whether the postmaster pid is ready on p.port, by its postmaster.pid: its PID on
// the first line, its port on the fourth and its status, once it listens, on the eighth.
func (p *postgresCluster) serving(pid int) bool {
	b, err := os.ReadFile(filepath.Join(p.dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 && lines[0] == strconv.Itoa(pid) && lines[3] == strconv.Itoa(p.port) &&
		strings.TrimSpace(lines[7]) == "ready"
}

// Stop shuts the server down the way the official postgres image's STOPSIGNAL (SIGINT, a fast
// shutdown) does, killing it if it takes too long.
func (p *postgresCluster) Stop() {
	if p.cmd == nil {
		return
	}
	cmd := p.cmd
	p.cmd = nil
	select {
	case <-p.exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.t.Logf("postgres did not stop within %s: killing it", stopTimeout)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// URL rewrites a database URL of the instance (which names the database's Service) to reach
// this server instead, keeping user, password and database.
func (p *postgresCluster) URL(t *testing.T, podURL string) string {
	t.Helper()
	u, err := url.Parse(podURL)
	if err != nil {
		t.Fatalf("database URL does not parse: %v", err)
	}
	u.Host = fmt.Sprintf("127.0.0.1:%d", p.port)
	return u.String()
}

// SQL runs a query as the postgres superuser over the unix socket and returns its unaligned
// output.
func (p *postgresCluster) SQL(t *testing.T, database, query string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(p.binDir, "psql"), "--no-psqlrc", "-X", "-A", "-t",
		"-h", p.dir, "-p", fmt.Sprint(p.port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-c", query)
	cmd.Dir = p.dir
	processGroup(cmd, p.cred)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", query, err, out)
	}
	return strings.TrimSpace(string(out))
}

// envValue is the literal value of a container's environment variable.
func envValue(t *testing.T, env []corev1.EnvVar, name string) string {
	t.Helper()
	for _, e := range env {
		if e.Name == name {
			if e.ValueFrom != nil {
				t.Fatalf("env %s comes from %v, not a literal value", name, e.ValueFrom)
			}
			return e.Value
		}
	}
	t.Fatalf("container has no env %s", name)
	return ""
}

// containerEnv resolves a container's environment as the kubelet would: literal values, and
// secretKeyRefs against secrets (by name). override replaces the values of some variables, for
// the paths and URLs that differ outside a pod. Any other kind of source fails the test.
func containerEnv(t *testing.T, env []corev1.EnvVar, secrets map[string]*corev1.Secret, override map[string]string) []string {
	t.Helper()
	var out []string
	for _, e := range env {
		v := e.Value
		if src := e.ValueFrom; src != nil {
			ref := src.SecretKeyRef
			if ref == nil {
				t.Fatalf("env %s: only secretKeyRef sources are supported, got %+v", e.Name, src)
			}
			s, ok := secrets[ref.Name]
			if !ok {
				t.Fatalf("env %s refers to Secret %q, which the test does not have", e.Name, ref.Name)
			}
			b, ok := s.Data[ref.Key]
			if !ok && ref.Optional != nil && *ref.Optional {
				continue // as the kubelet leaves an optional key out
			}
			if !ok {
				t.Fatalf("env %s refers to key %q of Secret %q, which has only %v", e.Name, ref.Key, ref.Name, keys(s.Data))
			}
			v = string(b)
		}
		if o, ok := override[e.Name]; ok {
			v = o
		}
		out = append(out, e.Name+"="+v)
	}
	return out
}

func keys(m map[string][]byte) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	return k
}

// operatorImage names the operator's image in the pods the tests render; TestMain's build of the
// operator's binary stands for it.
const operatorImage = "kinto-operator:test"

// podTools is a pod's tools volume: a directory of the test into which the pod's install-tools
// init container copied the operator's binary.
type podTools struct {
	mountPath string // in the pod
	dir       string // here
}

// installTools runs a pod's install-tools init container, the operator's binary (TestMain's
// build, standing for the image's /manager) copying itself, as the pod's user, into a
// directory of the test standing for the tools volume.
func installTools(t *testing.T, c corev1.Container, cred *syscall.Credential) podTools {
	t.Helper()
	if c.Image != operatorImage || len(c.Command) == 0 || c.Command[0] != "/manager" || len(c.VolumeMounts) != 1 {
		t.Fatalf("container %s (%s) runs %q with mounts %+v, not the operator's binary writing the tools volume", c.Name, c.Image, c.Command, c.VolumeMounts)
	}
	tools := podTools{mountPath: c.VolumeMounts[0].MountPath, dir: tempDir(t, "kinto-test-tools-", cred)}
	cmd := exec.Command(operatorBinary, tools.paths(c.Command[1:])...)
	processGroup(cmd, cred)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s (%q) failed: %v\n%s", c.Name, c.Command, err, out)
	}
	return tools
}

// command is a container's command run from the tools volume, its paths mapped into the test's
// directory.
func (tools podTools) command(t *testing.T, command []string) []string {
	t.Helper()
	mapped := tools.paths(command)
	if len(command) == 0 || mapped[0] == command[0] {
		t.Fatalf("command %q does not run from the tools volume %s", command, tools.mountPath)
	}
	return mapped
}

// paths maps the arguments naming files of the tools volume into the test's directory.
func (tools podTools) paths(args []string) []string {
	mapped := make([]string, len(args))
	for i, a := range args {
		if rest, ok := strings.CutPrefix(a, tools.mountPath+"/"); ok {
			a = filepath.Join(tools.dir, rest)
		}
		mapped[i] = a
	}
	return mapped
}
