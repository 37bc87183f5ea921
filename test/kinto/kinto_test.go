//go:build kinto

package kinto_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// deployment is an instance as the operator runs it, on this machine: the rendered kinto.ini,
// the generated credentials, the managed database (or a test-provided external one), and the
// commands and environment of the migration Job and the server Deployment.
type deployment struct {
	t    *testing.T
	inst *v1alpha1.KintoInstance
	bin  string
	dir  string

	ini   string         // as rendered into the ConfigMap
	creds *corev1.Secret // the generated credentials Secret
	// oldCredentials are the credentials before setCredentials, adapted to this machine.
	oldCredentials *corev1.Secret
	secrets        map[string]*corev1.Secret // every Secret the pods may refer to, by name
	db             *postgresCluster          // the managed database; nil for an external one

	podIniPath string // where the pods read kinto.ini
	serverC    corev1.Container
	migrateC   corev1.Container

	extraEnv []string
	servers  int
}

// deployOption adjusts a deployment before anything starts.
type deployOption func(*deployment)

// withSecret provides a Secret the instance refers to (external database URL, OpenID Connect
// client secret).
func withSecret(s *corev1.Secret) deployOption {
	return func(d *deployment) { d.secrets[s.Name] = s }
}

// withEnv adds variables to every Kinto process, for what only a test needs.
func withEnv(kv ...string) deployOption {
	return func(d *deployment) { d.extraEnv = append(d.extraEnv, kv...) }
}

// deploy renders inst with the operator's builders and starts its managed database. It neither
// migrates nor starts a server.
func deploy(t *testing.T, inst *v1alpha1.KintoInstance, opts ...deployOption) *deployment {
	t.Helper()
	d := &deployment{t: t, inst: inst, bin: kintoBin(t), dir: tempDir(t, "kinto-test-", nil), secrets: map[string]*corev1.Secret{}}

	cm, hash, err := resources.ConfigMap(inst)
	if err != nil {
		t.Fatalf("rendering the ConfigMap: %v", err)
	}
	d.ini = cm.Data[resources.ConfigFileName]
	t.Logf("rendered kinto.ini of %s:\n%s", inst.Name, iniAppSection(d.ini))

	d.creds, err = resources.CredentialsSecret(inst, nil, rand.Reader, false, false)
	if err != nil {
		t.Fatalf("generating credentials: %v", err)
	}
	d.secrets[d.creds.Name] = d.creds
	for _, o := range opts {
		o(d)
	}

	version := inst.Spec.Version
	dep := resources.ServerDeployment(inst, version, hash, "")
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("server Deployment has %d containers, want 1", len(dep.Spec.Template.Spec.Containers))
	}
	d.serverC = dep.Spec.Template.Spec.Containers[0]
	d.podIniPath = configFilePath(t, inst, dep.Spec.Template.Spec, d.serverC)
	job := resources.MigrateJob(inst, version)
	d.migrateC = job.Spec.Template.Spec.Containers[0]
	if p := configFilePath(t, inst, job.Spec.Template.Spec, d.migrateC); p != d.podIniPath {
		t.Fatalf("migration Job reads kinto.ini at %s, the server at %s", p, d.podIniPath)
	}
	if dep.Spec.Replicas != nil {
		d.servers = int(*dep.Spec.Replicas)
	}

	if inst.Spec.ManagedDatabase() != nil {
		d.db = startPostgres(t, inst, d.creds)
		d.secrets[d.creds.Name] = d.localCredentials(d.creds)
	}
	return d
}

// localCredentials is a credentials Secret whose database-url, which names the database's
// Service, points at the test's database on 127.0.0.1 instead.
func (d *deployment) localCredentials(creds *corev1.Secret) *corev1.Secret {
	d.t.Helper()
	local := creds.DeepCopy()
	podURL := string(local.Data[resources.SecretKeyDatabaseURL])
	var services []string
	for _, svc := range resources.DatabaseServices(d.inst) {
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			services = append(services, fmt.Sprintf("%s:%d", svc.Name, svc.Spec.Ports[0].Port))
		}
	}
	if len(services) != 1 || hostOf(podURL) != services[0] {
		d.t.Errorf("database-url of the credentials Secret points at %s, want the database's client Service %v", hostOf(podURL), services)
	}
	local.Data[resources.SecretKeyDatabaseURL] = []byte(d.db.URL(d.t, podURL))
	d.t.Logf("database-url of the credentials Secret points at %s; adapted to 127.0.0.1:%d", hostOf(podURL), d.db.port)
	return local
}

// setCredentials replaces the credentials Secret, as when its password is rotated: the database
// applies it on its next start, and Kinto processes started from now on use it.
func (d *deployment) setCredentials(creds *corev1.Secret) {
	d.t.Helper()
	d.oldCredentials = d.secrets[creds.Name]
	d.creds = creds
	d.secrets[creds.Name] = d.localCredentials(creds)
	d.db.SetCredentials(creds)
}

// runWithSecret runs a kinto command with one Secret replaced, such as an outdated one.
func (d *deployment) runWithSecret(s *corev1.Secret, args ...string) (string, error) {
	d.t.Helper()
	saved := d.secrets[s.Name]
	d.secrets[s.Name] = s
	defer func() { d.secrets[s.Name] = saved }()
	return d.run(args...)
}

// configFilePath is where a container reads kinto.ini: the --ini argument of its command, which
// must be the rendered key of the instance's ConfigMap as mounted in the pod.
func configFilePath(t *testing.T, inst *v1alpha1.KintoInstance, pod corev1.PodSpec, c corev1.Container) string {
	t.Helper()
	var iniArg string
	for i, a := range c.Command {
		if a == "--ini" && i+1 < len(c.Command) {
			iniArg = c.Command[i+1]
		}
	}
	if iniArg == "" {
		t.Fatalf("container %s command %q has no --ini", c.Name, c.Command)
	}
	for _, v := range pod.Volumes {
		if v.ConfigMap == nil || v.ConfigMap.Name != resources.ConfigMapName(inst) {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name && path.Join(m.MountPath, resources.ConfigFileName) == iniArg {
				return iniArg
			}
		}
	}
	t.Fatalf("container %s reads %s, which is not the mounted ConfigMap %s key %s", c.Name, iniArg, resources.ConfigMapName(inst), resources.ConfigFileName)
	return ""
}

// localIni writes the rendered ini, adapted to run outside a pod, into dir. The only changes are
// in [server:main]: listen on 127.0.0.1 rather than 0.0.0.0, and on port rather than the pod's.
func (d *deployment) localIni(dir string, port int) string {
	t := d.t
	t.Helper()
	ini := d.ini
	for _, r := range [][2]string{
		{"\nhost = 0.0.0.0\n", "\nhost = 127.0.0.1\n"},
		{fmt.Sprintf("\nport = %d\n", kintoconfig.Port), fmt.Sprintf("\nport = %d\n", port)},
	} {
		if n := strings.Count(ini, r[0]); n != 1 {
			t.Fatalf("rendered kinto.ini has %d lines %q, want 1", n, strings.TrimSpace(r[0]))
		}
		ini = strings.Replace(ini, r[0], r[1], 1)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, resources.ConfigFileName)
	if err := os.WriteFile(p, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// command is a container's command adapted to this machine: the kinto executable under test and
// the local ini. (The port is the ini's: see localIni.)
func (d *deployment) command(c corev1.Container, iniPath string) []string {
	d.t.Helper()
	var argv []string
	switch {
	case len(c.Command) > 0 && c.Command[0] == "kinto":
		argv = []string{d.bin}
	case len(c.Command) > 0 && c.Command[0] == "python":
		// A script in Kinto's image, with its Python.
		argv = []string{filepath.Join(filepath.Dir(d.bin), "python")}
	default:
		d.t.Fatalf("container %s command %q does not run kinto, nor Kinto's python", c.Name, c.Command)
	}
	for _, a := range c.Command[1:] {
		if a == d.podIniPath {
			a = iniPath
		}
		argv = append(argv, a)
	}
	return argv
}

// env is a container's environment resolved against the deployment's Secrets, with KINTO_INI
// pointing at the local ini. Nothing of the test's own environment leaks in (a pod has
// enableServiceLinks off, so it has no stray KINTO_* variables either) but a PATH and HOME.
func (d *deployment) env(c corev1.Container, iniPath, home string) []string {
	d.t.Helper()
	override := map[string]string{}
	for _, e := range c.Env {
		if e.Value == d.podIniPath {
			override[e.Name] = iniPath
		}
	}
	env := containerEnv(d.t, c.Env, d.secrets, override)
	env = append(env, "PATH="+filepath.Dir(d.bin)+":/usr/local/bin:/usr/bin:/bin", "HOME="+home, "LANG=C.UTF-8")
	return append(env, d.extraEnv...)
}

// run runs a kinto command with the migration Job's environment, such as an administrator
// would in a pod, and returns its combined output.
func (d *deployment) run(args ...string) (string, error) {
	d.t.Helper()
	dir := filepath.Join(d.dir, "cli")
	ini := d.localIni(dir, kintoconfig.Port)
	c := d.migrateC
	c.Command = append([]string{"kinto"}, args...)
	argv := d.command(c, ini)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = d.env(c, ini, dir)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d.t.Logf("ran %s (%s)", strings.Join(append([]string{"kinto"}, args...), " "), time.Since(start).Round(time.Millisecond))
	return string(out), err
}

// tryMigrate runs the migration Job's command, as its container does.
func (d *deployment) tryMigrate() (string, error) {
	d.t.Helper()
	dir := filepath.Join(d.dir, "cli")
	ini := d.localIni(dir, kintoconfig.Port)
	c := d.migrateC
	argv := d.command(c, ini)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = d.env(c, ini, dir)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d.t.Logf("ran the migration Job's command (%s)", time.Since(start).Round(time.Millisecond))
	return string(out), err
}

// migrate runs the migration Job's command and fails the test if it fails.
func (d *deployment) migrate() string {
	d.t.Helper()
	out, err := d.tryMigrate()
	if err != nil {
		d.t.Fatalf("migration (%q) failed: %v\n%s", d.migrateC.Command, err, out)
	}
	return out
}

// kintoServer is one running server process, as one pod of the Deployment.
type kintoServer struct {
	name    string
	root    string // http://127.0.0.1:port
	url     string // the API root, ending in /v1
	port    int
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// startServers starts as many servers as the Deployment has replicas.
func (d *deployment) startServers() []*kintoServer {
	d.t.Helper()
	var s []*kintoServer
	for i := 0; i < d.servers; i++ {
		s = append(s, d.startServer())
	}
	return s
}

// startServer starts one more server process with the Deployment's command and environment and
// waits for its startup probe to pass.
func (d *deployment) startServer() *kintoServer {
	t := d.t
	t.Helper()
	entries, _ := filepath.Glob(filepath.Join(d.dir, "server-*"))
	n := len(entries)
	dir := filepath.Join(d.dir, fmt.Sprintf("server-%d", n))
	// A port found free may be taken by another test before Kinto binds it: try another one.
	for attempt := 1; ; attempt++ {
		s, ok := d.launchServer(fmt.Sprintf("%s-server-%d", d.inst.Name, n), dir, freePort(t))
		if ok {
			return s
		}
		if attempt == 3 {
			t.Fatalf("%s: no free port in %d attempts\n%s", s.name, attempt, tail(s.logPath, 4000))
		}
		t.Logf("%s: port %d taken meanwhile: trying another", s.name, s.port)
	}
}

// startPrivateServer starts a server of the deployment with the ini of a server private to a
// Job's pod (render: kintoconfig.RenderImport or RenderReader), which listens on 127.0.0.1 as
// every server of these tests does.
func (d *deployment) startPrivateServer(render func(*v1alpha1.KintoInstance) (string, error)) *kintoServer {
	d.t.Helper()
	ini, err := render(d.inst)
	if err != nil {
		d.t.Fatal(err)
	}
	served := d.ini
	defer func() { d.ini = served }()
	// localIni moves the host to 127.0.0.1 itself, from the server's 0.0.0.0.
	d.ini = strings.Replace(ini, "\nhost = 127.0.0.1\n", "\nhost = 0.0.0.0\n", 1)
	return d.startServer()
}

// launchServer runs one server process on port; it reports false if the port was taken.
func (d *deployment) launchServer(name, dir string, port int) (*kintoServer, bool) {
	t := d.t
	t.Helper()
	ini := d.localIni(dir, port)
	argv := d.command(d.serverC, ini)
	s := &kintoServer{
		name:    name,
		root:    fmt.Sprintf("http://127.0.0.1:%d", port),
		url:     fmt.Sprintf("http://127.0.0.1:%d/v1", port),
		port:    port,
		logPath: filepath.Join(dir, "kinto.log"),
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = d.env(d.serverC, ini, dir)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	processGroup(cmd, nil)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q: %v", argv, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()

	probe := d.serverC.StartupProbe
	if probe == nil || probe.HTTPGet == nil {
		s.stop()
		t.Fatalf("server container has no HTTP startup probe")
	}
	probeURL := s.root + probe.HTTPGet.Path
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for ready := false; !ready; {
		select {
		case <-s.exited:
			if strings.Contains(tail(s.logPath, 4000), "Address already in use") {
				return s, false
			}
			t.Fatalf("%s exited while starting (%s); command %q\n%s", s.name, cmd.ProcessState, argv, tail(s.logPath, 12000))
		default:
		}
		if resp, err := client.Get(probeURL); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
		if !ready && time.Now().After(deadline) {
			s.stop()
			t.Fatalf("%s: startup probe %s not passing within %s\n%s", s.name, probeURL, startTimeout, tail(s.logPath, 12000))
		}
		if !ready {
			time.Sleep(pollInterval)
		}
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("log of %s:\n%s", s.name, tail(s.logPath, 12000))
		}
	})
	t.Logf("%s serving %s after %s (adapted: --ini, ini host 127.0.0.1 and port %d)",
		s.name, s.url, time.Since(start).Round(time.Millisecond), port)
	return s, true
}

// stop ends the server as Kubernetes does (SIGTERM, then SIGKILL after the grace period).
func (s *kintoServer) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// iniAppSection is the [app:main] section of an ini, for logs.
func iniAppSection(ini string) string {
	start := strings.Index(ini, "[app:main]")
	if start < 0 {
		return ini
	}
	rest := ini[start:]
	if end := strings.Index(rest, "\n\n"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

func hostOf(rawURL string) string {
	if i := strings.Index(rawURL, "@"); i >= 0 {
		rawURL = rawURL[i+1:]
	}
	if i := strings.Index(rawURL, "/"); i >= 0 {
		rawURL = rawURL[:i]
	}
	return rawURL
}

// newAPI is an anonymous client of server s.
func newAPI(t *testing.T, s *kintoServer) kintotest.Client { return kintotest.New(t, s.url) }
