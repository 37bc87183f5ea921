//go:build fleet

// Package fleet measures the operator at fleet scale (`make bench-fleet`, issue #14): the
// manager binary runs as its own process, with its production flags, against the real
// kube-apiserver and etcd of the tests (envtest), and the bench prints one table and writes the
// raw numbers as JSON beside it.
//
// No kubelet, StatefulSet, Deployment or Job controller runs: the bench reports the workloads
// available and the Jobs complete itself, as the controller tests do (see runWorkloads), from
// figure 2 on. Figure 1 runs without it: the children of an instance's first pass are those the
// operator makes before its database is up.
package fleet

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The release the fleet is created at, and the one figure 5 moves it to.
const (
	releaseBefore = "26.4.0"
	releaseAfter  = v1alpha1.DefaultKintoVersion
	benchImage    = "kinto-operator:bench"
	// perNamespace instances share a namespace (a tenant).
	perNamespace = 10
)

// results are the raw numbers, written as JSON.
type results struct {
	Cores    int               `json:"cores"`
	Settings map[string]string `json:"managerSettings"`
	Note     string            `json:"note"`

	Provisioning struct {
		Instances     int            `json:"instances"`
		Objects       int            `json:"objects"`
		ObjectsByKind map[string]int `json:"objectsByKind"`
		// The run of the median ratio.
		provisioningRun
		Runs []provisioningRun `json:"runs"`
		// FastestRatio is the operator's fastest side over the plain client's fastest: the
		// machine's noise only ever adds time, so each side's fastest is the nearest its cost.
		FastestRatio    float64 `json:"fastestRatio"`
		BaselineWorkers int     `json:"baselineWorkers"`
		// BaselineStatus says the plain client wrote each instance's status (see runBaseline).
		BaselineStatus     bool           `json:"baselineWritesStatus"`
		BaselineObjectKind map[string]int `json:"baselineObjectsByKind"`
	} `json:"provisioning"`
	SteadyState struct {
		Instances          int            `json:"instances"`
		RequestsByVerb     map[string]int `json:"requestsByVerb"`
		Writes             int            `json:"writes"`
		ScrapeReviews      int            `json:"scrapeAuthorisationPOSTs"`
		ReconcilesToSettle int            `json:"reconcilesToSettle"`
		ReconcilesAfter    int            `json:"reconcilesInTheNext10s"`
	} `json:"steadyState"`
	Latency struct {
		Instances     int       `json:"instances"`
		MedianSeconds float64   `json:"medianSeconds"`
		P99Seconds    float64   `json:"p99Seconds"`
		Seconds       []float64 `json:"seconds"`
	} `json:"latency"`
	Memory struct {
		Instances       int     `json:"instances"`
		UnrelatedObjs   int     `json:"unrelatedObjects"`
		UnrelatedBytes  int     `json:"unrelatedBytes"`
		RSSBefore       float64 `json:"rssBytesBefore"`
		RSSAfter        float64 `json:"rssBytesAfter"`
		HeapBefore      float64 `json:"heapBytesBefore"`
		HeapAfter       float64 `json:"heapBytesAfter"`
		RSSIncrease     float64 `json:"rssIncrease"`
		HeapIncrease    float64 `json:"heapIncrease"`
		RSSPerInstance  float64 `json:"rssBytesPerInstance"`
		HeapPerInstance float64 `json:"heapBytesPerInstance"`
	} `json:"memory"`
	Rollout struct {
		Instances     int     `json:"instances"`
		Cap           int     `json:"cap"`
		MaxRollingOut int     `json:"maxRollingOut"`
		Seconds       float64 `json:"seconds"`
		// Through is how the release changed: one write to the catalogue of the fleet's class.
		Through string `json:"through"`
		// Succeeded counts the instances whose status.updates.lastUpgrade says Succeeded.
		Succeeded int `json:"succeeded"`
	} `json:"rollout"`
}

// provisioningRun is one side-by-side measurement of figure 1.
type provisioningRun struct {
	OperatorSeconds float64 `json:"operatorSeconds"`
	BaselineSeconds float64 `json:"baselineSeconds"`
	Ratio           float64 `json:"ratio"`
	// OperatorFirst says the operator's side ran before the plain client's (every other run).
	OperatorFirst bool `json:"operatorFirst"`
	// The operator's requests and reconciles in its side of the run, until its end.
	OperatorRequests map[string]int `json:"operatorRequestsByVerb"`
	Reconciles       int            `json:"reconciles"`
	// The CPU each process used, in seconds, while the objects were created: what limits
	// both times on a machine whose cores they all share.
	OperatorCPUSeconds cpuUse `json:"operatorCPUSeconds"`
	BaselineCPUSeconds cpuUse `json:"baselineCPUSeconds"`
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestFleet runs the five figures in order on one API server: N instances provisioned (and the
// baseline beside them, PROVISIONING_RUNS times), the steady state after a restart, LATENCY_N instances one at a time,
// the memory at MEMORY_N instances before and after NOISE_N unrelated objects, and the release
// of the first N changed.
func TestFleet(t *testing.T) {
	n := envInt("N", 500)
	latencyN := envInt("LATENCY_N", 50)
	memoryN := max(envInt("MEMORY_N", 2*n), n+latencyN)
	noiseN := envInt("NOISE_N", 20*n)
	managerBin := os.Getenv("MANAGER_BIN")
	if managerBin == "" {
		t.Fatal("MANAGER_BIN is not set: run with `make bench-fleet`")
	}
	out := os.Getenv("BENCH_FLEET_OUT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "bench-fleet.json")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	b := startBench(t, ctx, managerBin)
	var res results
	res.Cores = runtime.NumCPU()
	res.Settings = b.settings
	res.Note = "envtest's kube-apiserver and etcd, no kubelet: the bench reports workloads available and Jobs complete itself (figures 2-5); the machine is shared, so figures vary between runs"

	// 1. Provisioning, PROVISIONING_RUNS times, each side on an empty and quiet server (the
	// other's objects removed, and seen gone; see waitQuiet). The side that goes first
	// alternates, so that the machine's drift within a pair does not always favour the same
	// side; the last run ends with the operator, whose fleet stays for the next figures. The
	// run of the median ratio is reported, beside every run.
	var fleet []client.ObjectKey
	var baseline baselineResult
	if os.Getenv("BASELINE_STATUS") != "0" {
		b.modelStatus(t, ctx)
	}
	runs := envInt("PROVISIONING_RUNS", 9)
	for r := range runs {
		if r > 0 && b.manager != nil {
			b.stopManager(t)
			b.removeInstances(t, ctx, fleet)
		}
		operatorFirst := r%2 == 1 && r < runs-1
		var run provisioningRun
		if !operatorFirst {
			baseline = b.runBaseline(t, ctx, n)
		}
		b.startManager(t)
		b.waitQuiet(t)
		b.profileAPIServer(t, "operator")
		start, cpuBefore := time.Now(), b.cpuUse(t)
		fleet = b.createInstances(t, ctx, "fleet", 0, n, releaseBefore)
		// The first run is the baseline's first: it says how many children an instance has.
		done := b.waitChildren(t, fleet, baseline.perInstance, 30*time.Minute)
		run.OperatorSeconds, run.OperatorCPUSeconds = done.Sub(start).Seconds(), b.cpuUse(t).since(cpuBefore)
		// The manager started for this run: its counts are this run's, up to the figure's end.
		m := b.scrape(t)
		run.OperatorRequests, run.Reconciles = m.byVerb(), m.reconciles()
		b.profiles.Wait()
		if operatorFirst {
			b.stopManager(t)
			b.removeInstances(t, ctx, fleet)
			baseline = b.runBaseline(t, ctx, n)
		}
		run.BaselineSeconds, run.BaselineCPUSeconds, run.OperatorFirst = baseline.seconds, baseline.cpu, operatorFirst
		run.Ratio = run.OperatorSeconds / run.BaselineSeconds
		res.Provisioning.Runs = append(res.Provisioning.Runs, run)
		t.Logf("provisioning, run %d (operator first: %t): operator %.1fs, baseline %.1fs, ratio %.2f; CPU seconds %v, baseline's %v; operator's requests %v, %d reconciles", r+1,
			operatorFirst, run.OperatorSeconds, run.BaselineSeconds, run.Ratio, run.OperatorCPUSeconds, run.BaselineCPUSeconds, run.OperatorRequests, run.Reconciles)
	}
	byRatio := slices.SortedFunc(slices.Values(res.Provisioning.Runs), func(a, b provisioningRun) int { return cmp.Compare(a.Ratio, b.Ratio) })
	res.Provisioning.provisioningRun = byRatio[len(byRatio)/2]
	fastest := func(seconds func(provisioningRun) float64) float64 {
		return seconds(slices.MinFunc(res.Provisioning.Runs, func(a, b provisioningRun) int { return cmp.Compare(seconds(a), seconds(b)) }))
	}
	res.Provisioning.FastestRatio = fastest(func(r provisioningRun) float64 { return r.OperatorSeconds }) /
		fastest(func(r provisioningRun) float64 { return r.BaselineSeconds })
	res.Provisioning.BaselineWorkers = baseline.workers
	res.Provisioning.BaselineStatus = b.statusModel != ""
	res.Provisioning.BaselineObjectKind = baseline.byKind
	res.Provisioning.Instances = n
	res.Provisioning.ObjectsByKind = b.childrenByKind(t, "fleet-")
	for _, c := range res.Provisioning.ObjectsByKind {
		res.Provisioning.Objects += c
	}
	t.Logf("provisioning: median ratio %.2f, fastest side over fastest side %.2f", res.Provisioning.Ratio, res.Provisioning.FastestRatio)
	if os.Getenv("PROVISIONING_ONLY") != "" {
		// Stopped, not killed, so that a --cpu-profile in MANAGER_ARGS is written.
		b.stopManager(t)
		return
	}

	// 2. Steady state: every instance Ready, then a restart relists and reconciles them all.
	go b.runWorkloads(ctx)
	b.waitReady(t, fleet, releaseBefore, 30*time.Minute)
	b.stopManager(t)
	reviewsBefore := b.reviews(t)
	b.startManager(t)
	settled := b.waitSettled(t, n)
	time.Sleep(5 * time.Second)
	m := b.scrape(t)
	res.SteadyState.Instances = n
	res.SteadyState.RequestsByVerb = m.byVerb()
	res.SteadyState.ScrapeReviews = b.reviews(t) - reviewsBefore
	for _, verb := range []string{"PATCH", "PUT", "POST", "DELETE"} {
		res.SteadyState.Writes += res.SteadyState.RequestsByVerb[verb]
	}
	res.SteadyState.Writes -= res.SteadyState.ScrapeReviews
	res.SteadyState.ReconcilesToSettle = settled
	time.Sleep(10 * time.Second)
	res.SteadyState.ReconcilesAfter = b.scrape(t).reconciles() - m.reconciles()
	t.Logf("steady state: %v", res.SteadyState.RequestsByVerb)

	// 3. Latency: one at a time, from create to every child of the first pass.
	for i := range latencyN {
		inst := b.createInstances(t, ctx, "latency", i, 1, releaseBefore)
		start := time.Now()
		done := b.waitChildren(t, inst, baseline.perInstance, 5*time.Minute)
		res.Latency.Seconds = append(res.Latency.Seconds, done.Sub(start).Seconds())
	}
	res.Latency.Instances = latencyN
	sorted := slices.Sorted(slices.Values(res.Latency.Seconds))
	res.Latency.MedianSeconds = sorted[len(sorted)/2]
	res.Latency.P99Seconds = sorted[min(len(sorted)-1, len(sorted)*99/100)]

	// 4. Memory: MEMORY_N converged instances, then unrelated objects in other namespaces.
	more := b.createInstances(t, ctx, "memory", 0, memoryN-n-latencyN, releaseBefore)
	b.waitReady(t, more, releaseBefore, 30*time.Minute)
	res.Memory.Instances = memoryN
	res.Memory.RSSBefore, res.Memory.HeapBefore = b.memory(t)
	res.Memory.UnrelatedObjs, res.Memory.UnrelatedBytes = b.createUnrelated(t, ctx, noiseN)
	time.Sleep(10 * time.Second)
	res.Memory.RSSAfter, res.Memory.HeapAfter = b.memory(t)
	res.Memory.RSSIncrease = res.Memory.RSSAfter/res.Memory.RSSBefore - 1
	res.Memory.HeapIncrease = res.Memory.HeapAfter/res.Memory.HeapBefore - 1
	res.Memory.RSSPerInstance = res.Memory.RSSBefore / float64(memoryN)
	res.Memory.HeapPerInstance = res.Memory.HeapBefore / float64(memoryN)

	// 5. The release of the first N changed at once, by one write to their class's catalogue:
	// the cap holds, every instance finishes.
	res.Rollout.Instances = n
	res.Rollout.Cap, _ = strconv.Atoi(b.settings["max-concurrent-rollouts"])
	res.Rollout.Through = "KintoReleaseCatalog " + fleetCatalog
	b.followCatalog(t, ctx, fleet)
	b.waitReady(t, fleet, releaseBefore, 30*time.Minute)
	start := time.Now()
	var maxRolling atomic.Int64
	sampling, stopSampling := context.WithCancel(ctx)
	go b.sampleRollingOut(sampling, &maxRolling)
	b.publishRelease(t, ctx, releaseAfter)
	b.waitReady(t, fleet, releaseAfter, 60*time.Minute)
	res.Rollout.Seconds = time.Since(start).Seconds()
	stopSampling()
	res.Rollout.MaxRollingOut = int(maxRolling.Load())
	res.Rollout.Succeeded = b.upgradesSucceeded(t, fleet, releaseAfter)

	b.stopManager(t)
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	table := formatTable(&res)
	if err := os.WriteFile(strings.TrimSuffix(out, ".json")+".txt", []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Print(table)
	fmt.Println("raw numbers:", out)

	if res.SteadyState.Writes != 0 {
		t.Errorf("the steady state after a restart sent %d writes, want none: %v", res.SteadyState.Writes, res.SteadyState.RequestsByVerb)
	}
	if res.Rollout.Succeeded != n {
		t.Errorf("%d of %d instances record their upgrade to %s as succeeded", res.Rollout.Succeeded, n, releaseAfter)
	}
	if res.Rollout.Cap > 0 && res.Rollout.MaxRollingOut > res.Rollout.Cap {
		t.Errorf("%d instances rolled out at once, over the cap of %d", res.Rollout.MaxRollingOut, res.Rollout.Cap)
	}
}

func formatTable(r *results) string {
	var s strings.Builder
	mib := func(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }
	fmt.Fprintf(&s, "kinto-operator at fleet scale: %d cores, envtest API server, manager %s\n", r.Cores, settingsLine(r.Settings))
	fmt.Fprintf(&s, "%-46s %s\n", "figure", "measured")
	row := func(name, format string, args ...any) {
		fmt.Fprintf(&s, "%-46s %s\n", name, fmt.Sprintf(format, args...))
	}
	p := r.Provisioning
	var ratios []string
	for _, run := range p.Runs {
		ratio := fmt.Sprintf("%.2f", run.Ratio)
		if run.OperatorFirst {
			ratio += "*"
		}
		ratios = append(ratios, ratio)
	}
	row(fmt.Sprintf("1. provisioning %d instances (%d objects)", p.Instances, p.Objects),
		"ratio %.2f, the median of %d runs (%s; *: the operator's side first) (goal <= 1.3)", p.Ratio, len(p.Runs), strings.Join(ratios, ", "))
	row("   the fastest of each side", "ratio %.2f", p.FastestRatio)
	wrote := "children only"
	if p.BaselineStatus {
		wrote = "children and statuses"
	}
	row("   the median run", "operator %.1f s, plain client %.1f s (%d workers, %s)", p.OperatorSeconds, p.BaselineSeconds, p.BaselineWorkers, wrote)
	row("   CPU used meanwhile, operator's run", "%s", p.OperatorCPUSeconds)
	row("   CPU used meanwhile, plain client's run", "%s", p.BaselineCPUSeconds)
	row("   the operator's requests in that run", "%v, %d reconciles", p.OperatorRequests, p.Reconciles)
	ss := r.SteadyState
	row(fmt.Sprintf("2. steady state, %d instances, after restart", ss.Instances),
		"%d writes (goal 0); %d reconciles to settle, %d in the next 10 s; requests %v, of which %d POSTs authorise the scrapes", ss.Writes, ss.ReconcilesToSettle, ss.ReconcilesAfter, ss.RequestsByVerb, ss.ScrapeReviews)
	l := r.Latency
	row(fmt.Sprintf("3. latency, %d instances one at a time", l.Instances), "median %.0f ms, p99 %.0f ms", l.MedianSeconds*1000, l.P99Seconds*1000)
	m := r.Memory
	row(fmt.Sprintf("4. memory, %d instances", m.Instances), "RSS %s, Go heap %s (%.0f KiB heap an instance)", mib(m.RSSBefore), mib(m.HeapBefore), m.HeapPerInstance/1024)
	row(fmt.Sprintf("   + %d unrelated objects (%s)", m.UnrelatedObjs, mib(float64(m.UnrelatedBytes))),
		"RSS %s (%+.1f %%), Go heap %s (%+.1f %%) (goal <= +10 %%)", mib(m.RSSAfter), 100*m.RSSIncrease, mib(m.HeapAfter), 100*m.HeapIncrease)
	ro := r.Rollout
	row(fmt.Sprintf("5. release %s -> %s on %d instances", releaseBefore, releaseAfter, ro.Instances),
		"%.0f s through %s; %d succeeded; at most %d rolling at once (cap %d)", ro.Seconds, ro.Through, ro.Succeeded, ro.MaxRollingOut, ro.Cap)
	s.WriteString(r.Note + "\n")
	return s.String()
}

func settingsLine(settings map[string]string) string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range settings {
			if !yield(k) {
				return
			}
		}
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, "--"+k+"="+settings[k])
	}
	return strings.Join(parts, " ")
}

// bench holds the API server, the operator's process and what reads them.
type bench struct {
	env      *envtest.Environment
	admin    client.Client
	adminCfg *rest.Config
	// baselineCfg is the plain client's (see runBaseline).
	baselineCfg *rest.Config
	cache       cache.Cache
	progress    *progress
	managerBin  string
	kubeconfig  string
	logDir      string
	manager     *exec.Cmd
	starts      int
	metrics     string
	token       string
	// args are the manager's flags besides the bench's own (MANAGER_ARGS), settings the values
	// in force, for the table.
	args     []string
	settings map[string]string
	// profiles are the API server's CPU profiles being taken, profiled how many of each side
	// (see profileAPIServer).
	profiles    sync.WaitGroup
	profiled    map[string]int
	debugSocket string
	// statusModel is the status the operator wrote to a model instance (modelKey), in JSON:
	// the plain client writes it to each of its instances, with their names (see runBaseline).
	statusModel string
}

// modelKey names the model instance whose status the plain client copies: neither name holds
// the other, so each can be replaced in its status.
var modelKey = client.ObjectKey{Namespace: "modelns", Name: "modelinst"}

func startBench(t *testing.T, ctx context.Context, managerBin string) *bench {
	log.SetLogger(zap.New(zap.WriteTo(io.Discard))) // the bench's own cache has nothing to say; the manager logs to its file
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../../config/crd/bases"}, ErrorIfCRDPathMissing: true}
	// Room for the Services of thousands of instances (envtest's default range has 256).
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	var debugSocket string
	if os.Getenv("APISERVER_PROFILE") != "" {
		// A short path: a socket's may not be longer than 107 bytes.
		dir, err := os.MkdirTemp("", "apiserver")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		debugSocket = filepath.Join(dir, "debug.sock")
		env.ControlPlane.GetAPIServer().Configure().Set("debug-socket-path", debugSocket)
	}
	cfg, err := env.Start()
	t.Cleanup(func() { _ = env.Stop() })
	if err != nil {
		t.Fatal(err)
	}
	scheme := controllers.Scheme()
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{env: env, admin: admin, adminCfg: cfg, managerBin: managerBin, logDir: t.TempDir(), debugSocket: debugSocket}
	b.args = strings.Fields(os.Getenv("MANAGER_ARGS"))
	b.settings = map[string]string{
		"max-concurrent-reconciles": strconv.Itoa(controllers.DefaultMaxConcurrentReconciles),
		"kube-api-qps":              strconv.FormatFloat(float64(controllers.DefaultClientQPS), 'f', -1, 32),
		"kube-api-burst":            strconv.Itoa(controllers.DefaultClientBurst),
		"max-concurrent-rollouts":   strconv.Itoa(controllers.DefaultMaxConcurrentRollouts),
	}
	for _, a := range b.args {
		if k, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); ok {
			b.settings[k] = v
		}
	}

	// The operator runs as a ServiceAccount, as installed, with exactly its generated role; the
	// plain client as another, which may do anything: the API server's priority and fairness
	// then puts both at the same level (a ServiceAccount's), where the bench's own admin would be
	// exempt from it.
	role := &rbacv1.ClusterRole{}
	readYAML(t, "../../config/rbac/role.yaml", role)
	reader := &rbacv1.ClusterRole{}
	readYAML(t, "../../config/rbac/metrics_reader_role.yaml", reader)
	accounts := map[string]string{"kinto-operator": role.Name, "baseline": "cluster-admin", "scraper": reader.Name}
	if err := admin.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, reader); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for name, roleName := range accounts {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}},
		}
		if err := admin.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
		if err := admin.Create(ctx, binding); err != nil {
			t.Fatal(err)
		}
		request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}}
		if err := admin.SubResource("token").Create(ctx, sa, request); err != nil {
			t.Fatal(err)
		}
		tokens[name] = request.Status.Token
	}
	b.token = tokens["scraper"]
	b.baselineCfg = &rest.Config{Host: cfg.Host, BearerToken: tokens["baseline"], TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData}}
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["bench"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kubeconfig.AuthInfos["kinto-operator"] = &clientcmdapi.AuthInfo{Token: tokens["kinto-operator"]}
	kubeconfig.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "kinto-operator"}
	kubeconfig.CurrentContext = "bench"
	b.kubeconfig = filepath.Join(b.logDir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, b.kubeconfig); err != nil {
		t.Fatal(err)
	}

	// The bench's own view of the operator's objects, to tell when a figure is done.
	owned := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{resources.ManagedByLabel: resources.ManagedBy})}
	byObject := map[client.Object]cache.ByObject{&v1alpha1.KintoInstance{}: {}}
	for _, o := range childKinds() {
		byObject[o] = owned
	}
	b.cache, err = cache.New(cfg, cache.Options{Scheme: scheme, ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cache.Start(ctx) }()
	b.progress = newProgress()
	for o := range byObject {
		informer, err := b.cache.GetInformer(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		handler := b.progress.childHandler()
		if _, ok := o.(*v1alpha1.KintoInstance); ok {
			handler = b.progress.instanceHandler()
		}
		if _, err := informer.AddEventHandler(handler); err != nil {
			t.Fatal(err)
		}
	}
	b.cache.WaitForCacheSync(ctx)
	return b
}

func readYAML(t *testing.T, path string, into any) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}

// childKinds are the kinds of the objects an instance owns.
func childKinds() []client.Object {
	return []client.Object{
		&corev1.Secret{}, &corev1.ConfigMap{}, &corev1.ServiceAccount{}, &corev1.Service{},
		&corev1.PersistentVolumeClaim{}, &appsv1.StatefulSet{}, &appsv1.Deployment{}, &batchv1.Job{},
		&batchv1.CronJob{}, &networkingv1.Ingress{}, &networkingv1.NetworkPolicy{}, &policyv1.PodDisruptionBudget{},
	}
}

func listOf(obj client.Object) client.ObjectList {
	switch obj.(type) {
	case *corev1.Secret:
		return &corev1.SecretList{}
	case *corev1.ConfigMap:
		return &corev1.ConfigMapList{}
	case *corev1.ServiceAccount:
		return &corev1.ServiceAccountList{}
	case *corev1.Service:
		return &corev1.ServiceList{}
	case *corev1.PersistentVolumeClaim:
		return &corev1.PersistentVolumeClaimList{}
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSetList{}
	case *appsv1.Deployment:
		return &appsv1.DeploymentList{}
	case *batchv1.Job:
		return &batchv1.JobList{}
	case *batchv1.CronJob:
		return &batchv1.CronJobList{}
	case *networkingv1.Ingress:
		return &networkingv1.IngressList{}
	case *networkingv1.NetworkPolicy:
		return &networkingv1.NetworkPolicyList{}
	case *policyv1.PodDisruptionBudget:
		return &policyv1.PodDisruptionBudgetList{}
	case *v1alpha1.KintoInstance:
		return &v1alpha1.KintoInstanceList{}
	}
	panic(fmt.Sprintf("no list of %T", obj))
}

func kindName(obj client.Object) string { return strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1.") }

// spec is every instance's: a managed database, an Ingress, daily backups.
func newInstance(ns, name, release string) *v1alpha1.KintoInstance {
	return &v1alpha1.KintoInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.KintoInstanceSpec{
			Version: release,
			Ingress: &v1alpha1.IngressSpec{Host: name + "." + ns + ".fleet.example"},
			Backup:  &v1alpha1.BackupSpec{Schedule: "0 3 * * *"},
		},
	}
}

// createInstances creates count instances, perNamespace to a namespace named prefix-NNN from
// first on, with as many workers as the operator reconciles at once.
func (b *bench) createInstances(t *testing.T, ctx context.Context, prefix string, first, count int, release string) []client.ObjectKey {
	keys := make([]client.ObjectKey, count)
	for i := range count {
		keys[i] = client.ObjectKey{Namespace: fmt.Sprintf("%s-%03d", prefix, (first+i)/perNamespace), Name: fmt.Sprintf("i%04d", first+i)}
	}
	b.ensureNamespaces(t, ctx, keys)
	parallel(t, 8, count, func(i int) error {
		return b.admin.Create(ctx, newInstance(keys[i].Namespace, keys[i].Name, release))
	})
	return keys
}

func (b *bench) ensureNamespaces(t *testing.T, ctx context.Context, keys []client.ObjectKey) {
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Namespace] {
			continue
		}
		seen[k.Namespace] = true
		err := b.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.Namespace}})
		if client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
}

// parallel runs do(0..count-1) on workers goroutines, failing the test on the first error.
func parallel(t *testing.T, workers, count int, do func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				if err := do(i); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

type baselineResult struct {
	seconds     float64
	cpu         cpuUse
	workers     int
	perInstance int
	byKind      map[string]int
}

// runBaseline creates, with a plain client under the operator's own client limits and at the
// same priority level of the API server, the instances and the objects the operator's first
// pass makes for them, rendered by the same builders, and writes each instance's status (the
// model's, see modelStatus; not with BASELINE_STATUS=0), as fast as the API server takes them;
// then deletes them all, so that the operator never sees them.
func (b *bench) runBaseline(t *testing.T, ctx context.Context, n int) baselineResult {
	cfg := rest.CopyConfig(b.baselineCfg)
	qps, _ := strconv.ParseFloat(b.settings["kube-api-qps"], 32)
	burst, _ := strconv.Atoi(b.settings["kube-api-burst"])
	cfg.QPS, cfg.Burst = float32(qps), burst
	if qps == 0 {
		cfg.QPS = -1 // none: the API server's priority and fairness, as the operator's
	}
	c, err := client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]client.ObjectKey, n)
	for i := range n {
		keys[i] = client.ObjectKey{Namespace: fmt.Sprintf("baseline-%03d", i/perNamespace), Name: fmt.Sprintf("i%04d", i)}
	}
	b.ensureNamespaces(t, ctx, keys)
	// Each instance's status, made before the clock starts: the bench's renaming and decoding
	// of the model's is none of a plain client's work.
	var statuses []v1alpha1.KintoInstanceStatus
	if b.statusModel != "" {
		statuses = make([]v1alpha1.KintoInstanceStatus, n)
		for i, k := range keys {
			if err := json.Unmarshal([]byte(b.statusFor(k)), &statuses[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	workers := 16
	created := make([][]client.Object, n)
	b.waitQuiet(t)
	b.profileAPIServer(t, "baseline")
	start, cpuBefore := time.Now(), b.cpuUse(t)
	parallel(t, workers, n, func(i int) error {
		inst := newInstance(keys[i].Namespace, keys[i].Name, releaseBefore)
		if err := c.Create(ctx, inst); err != nil {
			return err
		}
		created[i] = append(created[i], inst)
		effective, _ := hostingclass.Effective(inst, nil)
		secret, err := resources.CredentialsSecret(effective, nil, resources.RandomSource, false, false)
		if err != nil {
			return err
		}
		if err := c.Create(ctx, secret); err != nil {
			return err
		}
		created[i] = append(created[i], secret)
		children, err := resources.Desired(effective, resources.Inputs{
			CredentialsRevision: secret.ResourceVersion, OperatorImage: benchImage,
			Network: resources.NetworkOptions{ClusterCIDRs: []string{"10.0.0.0/8"}},
		})
		if err != nil {
			return err
		}
		objs := append(children.Applied(), children.Exposure()...)
		objs = append(objs, children.BackupVolumeClaim, children.BackupSchedule)
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil {
				return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
			}
			created[i] = append(created[i], o)
		}
		if statuses == nil {
			return nil
		}
		inst.Status = statuses[i]
		return c.Status().Update(ctx, inst)
	})
	res := baselineResult{seconds: time.Since(start).Seconds(), cpu: b.cpuUse(t).since(cpuBefore), workers: workers, byKind: map[string]int{}}
	res.perInstance = len(created[0]) - 1
	for _, objs := range created {
		for _, o := range objs[1:] {
			res.byKind[kindName(o)]++
		}
	}
	t.Logf("baseline: %d instances, %d objects each, in %.1fs", n, res.perInstance, res.seconds)
	if statuses != nil {
		// The same end as the operator's side, seen the same way.
		b.waitChildren(t, keys, res.perInstance, time.Minute)
	}
	b.profiles.Wait() // before the removal, which is not the baseline's work
	parallel(t, workers, n, func(i int) error {
		for _, o := range created[i] {
			if err := b.remove(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	b.waitGone(t, keys, 5*time.Minute)
	return res
}

// modelStatus has the operator provision one instance, as the fleet's, and keeps the status it
// wrote (statusModel): the figure's end is every child there and every status at its
// generation, so the plain client, to reach the same objects, writes that status too, one
// update on the version it created, where the operator's first pass writes its own.
func (b *bench) modelStatus(t *testing.T, ctx context.Context) {
	keys := []client.ObjectKey{modelKey}
	b.ensureNamespaces(t, ctx, keys)
	b.startManager(t)
	if err := b.admin.Create(ctx, newInstance(modelKey.Namespace, modelKey.Name, releaseBefore)); err != nil {
		t.Fatal(err)
	}
	b.waitChildren(t, keys, 0, 5*time.Minute)
	inst := &v1alpha1.KintoInstance{}
	if err := b.admin.Get(ctx, modelKey, inst); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(inst.Status)
	if err != nil {
		t.Fatal(err)
	}
	b.statusModel = string(raw)
	t.Logf("the model's status: %s", b.statusModel)
	b.stopManager(t)
	b.removeInstances(t, ctx, keys)
}

// statusFor is the model's status with the names of instance k.
func (b *bench) statusFor(k client.ObjectKey) string {
	return strings.NewReplacer(modelKey.Namespace, k.Namespace, modelKey.Name, k.Name).Replace(b.statusModel)
}

// waitQuiet waits, before each timed side of figure 1, until the bench's processes have used less
// than a tenth of a core for a second, or quietTimeout: a side that starts while the API server
// and etcd still digest the removal of the other side's objects (or the manager its start) pays
// for them: the side that went second was the slower in most series, whichever it was.
func (b *bench) waitQuiet(t *testing.T) {
	deadline := time.Now().Add(quietTimeout)
	last := b.cpuUse(t)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		now := b.cpuUse(t)
		busy := 0.0
		for _, seconds := range now.since(last) {
			busy += seconds
		}
		if busy < 0.1 {
			return
		}
		last = now
	}
	t.Logf("the API server, etcd and the manager were still busy after %s", quietTimeout)
}

const quietTimeout = 30 * time.Second

// removeInstances deletes the instances of keys and their children (no garbage collector runs
// here), the operator stopped, and waits until the bench has seen them go.
func (b *bench) removeInstances(t *testing.T, ctx context.Context, keys []client.ObjectKey) {
	var objs []client.Object
	namespaces := map[string]bool{}
	for _, k := range keys {
		if !namespaces[k.Namespace] {
			namespaces[k.Namespace] = true
			for _, o := range append(childKinds(), &v1alpha1.KintoInstance{}) {
				list := listOf(o)
				if err := b.cache.List(ctx, list, client.InNamespace(k.Namespace)); err != nil {
					t.Fatal(err)
				}
				_ = meta.EachListItem(list, func(item kruntime.Object) error {
					objs = append(objs, item.(client.Object))
					return nil
				})
			}
		}
	}
	parallel(t, 16, len(objs), func(i int) error { return b.remove(ctx, objs[i]) })
	b.waitGone(t, keys, 5*time.Minute)
}

// remove deletes o, its finalizers taken off first: no controller here would (a claim's
// protection, say).
func (b *bench) remove(ctx context.Context, o client.Object) error {
	if len(o.GetFinalizers()) > 0 {
		err := b.admin.Patch(ctx, o, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))
		if client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return client.IgnoreNotFound(b.admin.Delete(ctx, o))
}

func (b *bench) childrenByKind(t *testing.T, prefix string) map[string]int {
	byKind := map[string]int{}
	for _, o := range childKinds() {
		list := listOf(o)
		if err := b.cache.List(context.Background(), list); err != nil {
			t.Fatal(err)
		}
		_ = meta.EachListItem(list, func(item kruntime.Object) error {
			if strings.HasPrefix(item.(client.Object).GetNamespace(), prefix) {
				byKind[kindName(o)]++
			}
			return nil
		})
	}
	return byKind
}

// waitChildren waits until each instance has at least perInstance children and a status
// for its generation, and returns the time of the event that was last seen then.
func (b *bench) waitChildren(t *testing.T, keys []client.ObjectKey, perInstance int, timeout time.Duration) time.Time {
	deadline := time.After(timeout)
	for done := 0; ; {
		b.progress.mu.Lock()
		// What is done stays done while a figure runs (nothing deletes a child or changes a
		// spec meanwhile): each wake-up resumes where the last one stopped, and the end is
		// checked in full.
		for done < len(keys) && b.progress.waiting(keys[done], perInstance) == "" {
			done++
		}
		missing, last := "", b.progress.last
		if done == len(keys) {
			for _, k := range keys {
				if missing = b.progress.waiting(k, perInstance); missing != "" {
					break
				}
			}
		} else {
			missing = b.progress.waiting(keys[done], perInstance)
		}
		b.progress.mu.Unlock()
		if missing == "" {
			return last
		}
		select {
		case <-b.progress.changed:
		case <-deadline:
			t.Fatalf("every child of %d instances, after %s: %s", len(keys), timeout, missing)
		}
	}
}

// waitGone waits until no instance of keys, nor any child of theirs, is left.
func (b *bench) waitGone(t *testing.T, keys []client.ObjectKey, timeout time.Duration) {
	kintotest.Eventually(t, timeout, 100*time.Millisecond, fmt.Sprintf("%d instances and their children gone", len(keys)), func() (bool, string) {
		b.progress.mu.Lock()
		defer b.progress.mu.Unlock()
		for _, k := range keys {
			if _, ok := b.progress.current[k]; ok || len(b.progress.children[k]) > 0 {
				return false, fmt.Sprintf("%s still has %d children", k, len(b.progress.children[k]))
			}
		}
		return true, ""
	})
}

// progress follows, from the bench's informers, the children of each instance (by
// namespace/name) and whether its status reports its generation, so that figures 1 and 3 end
// at the event that completes them. Listing the cache over and over instead cost the bench
// about a second of CPU in figure 1, on the cores the operator and the API server need.
type progress struct {
	mu       sync.Mutex
	children map[client.ObjectKey]map[types.UID]bool
	// current holds every instance, true when its status is for its generation.
	current map[client.ObjectKey]bool
	last    time.Time
	// changed has a value after any change, for the one waiter.
	changed chan struct{}
}

func newProgress() *progress {
	return &progress{children: map[client.ObjectKey]map[types.UID]bool{}, current: map[client.ObjectKey]bool{}, changed: make(chan struct{}, 1)}
}

// waiting says what instance k still waits for, or "" when it has perInstance children and a
// status for its generation. Called with mu held.
func (p *progress) waiting(k client.ObjectKey, perInstance int) string {
	if n := len(p.children[k]); n < perInstance {
		return fmt.Sprintf("%s has %d children of %d", k, n, perInstance)
	}
	current, ok := p.current[k]
	switch {
	case !ok:
		return fmt.Sprintf("%s does not exist", k)
	case !current:
		return fmt.Sprintf("%s has no status for its generation", k)
	}
	return ""
}

func (p *progress) update(do func()) {
	p.mu.Lock()
	do()
	p.last = time.Now()
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// childHandler counts an instance's children by the instance label.
func (p *progress) childHandler() toolscache.ResourceEventHandler {
	return presence(func(obj any, present bool) {
		o, ok := obj.(client.Object)
		if !ok {
			return
		}
		k := client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetLabels()[resources.InstanceLabel]}
		p.update(func() {
			if !present {
				delete(p.children[k], o.GetUID())
				return
			}
			if p.children[k] == nil {
				p.children[k] = map[types.UID]bool{}
			}
			p.children[k][o.GetUID()] = true
		})
	})
}

// instanceHandler records whether each instance's status is for its generation.
func (p *progress) instanceHandler() toolscache.ResourceEventHandler {
	return presence(func(obj any, present bool) {
		inst, ok := obj.(*v1alpha1.KintoInstance)
		if !ok {
			return
		}
		k := client.ObjectKeyFromObject(inst)
		p.update(func() {
			if present {
				p.current[k] = inst.Status.ObservedGeneration == inst.Generation
			} else {
				delete(p.current, k)
			}
		})
	})
}

// presence calls set with each object an informer adds or updates (present) or deletes.
func presence(set func(obj any, present bool)) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { set(obj, true) },
		UpdateFunc: func(_, obj any) { set(obj, true) },
		DeleteFunc: func(obj any) {
			if gone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = gone.Obj
			}
			set(obj, false)
		},
	}
}

// waitReady waits until each instance is Ready at release, for its generation.
func (b *bench) waitReady(t *testing.T, keys []client.ObjectKey, release string, timeout time.Duration) {
	kintotest.Eventually(t, timeout, time.Second, fmt.Sprintf("%d instances Ready at %s", len(keys), release), func() (bool, string) {
		waiting := 0
		var example string
		for _, k := range keys {
			inst := &v1alpha1.KintoInstance{}
			if err := b.cache.Get(context.Background(), k, inst); err != nil {
				return false, err.Error()
			}
			ready := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionReady)
			if inst.Status.ObservedGeneration != inst.Generation || inst.Status.Version != release ||
				ready == nil || ready.Status != metav1.ConditionTrue {
				waiting++
				if example == "" {
					example = fmt.Sprintf("%s: version %q, Ready %+v", k, inst.Status.Version, ready)
				}
			}
		}
		return waiting == 0, fmt.Sprintf("%d not ready, such as %s", waiting, example)
	})
}

// runWorkloads plays the kubelet and the workload controllers: every StatefulSet and Deployment
// of the operator's is reported available at its generation, every Job complete.
func (b *bench) runWorkloads(ctx context.Context) {
	for ctx.Err() == nil {
		stss := &appsv1.StatefulSetList{}
		if b.cache.List(ctx, stss) == nil {
			for i := range stss.Items {
				s := &stss.Items[i]
				n := ptr.Deref(s.Spec.Replicas, 1)
				if s.Status.ObservedGeneration != s.Generation || s.Status.ReadyReplicas != n {
					s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: n, ReadyReplicas: n,
						CurrentReplicas: n, UpdatedReplicas: n, AvailableReplicas: n}
					_ = b.admin.Status().Update(ctx, s)
				}
			}
		}
		deployments := &appsv1.DeploymentList{}
		if b.cache.List(ctx, deployments) == nil {
			for i := range deployments.Items {
				d := &deployments.Items[i]
				n := ptr.Deref(d.Spec.Replicas, 1)
				if d.Status.ObservedGeneration != d.Generation || d.Status.AvailableReplicas != n || d.Status.UpdatedReplicas != n {
					d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n,
						ReadyReplicas: n, AvailableReplicas: n}
					_ = b.admin.Status().Update(ctx, d)
				}
			}
		}
		jobs := &batchv1.JobList{}
		if b.cache.List(ctx, jobs) == nil {
			for i := range jobs.Items {
				j := &jobs.Items[i]
				if j.Status.CompletionTime != nil {
					continue
				}
				// The operator reads a Job's result from its pod: the pod goes first.
				if err := b.reportJobPod(ctx, j); err != nil {
					continue
				}
				kintotest.EndJob(j, true)
				_ = b.admin.Status().Update(ctx, j)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reportJobPod creates a pod of job, as the Job controller would, and reports it succeeded as the
// kubelet would, each container's termination message the result the operator reads from that
// container: a dump's (a backup's, the upgrade's safety dump) or the upgrade's baseline.
func (b *bench) reportJobPod(ctx context.Context, job *batchv1.Job) error {
	pod := kintotest.JobPod(job, job.Name+"-bench")
	if err := b.admin.Create(ctx, pod); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	if err := b.admin.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
		return err
	}
	dump, err := json.Marshal(dumps.Result{File: dumps.FileName(time.Now()), Size: 1, SHA256: strings.Repeat("0", 64)})
	if err != nil {
		return err
	}
	kintotest.EndPod(pod, "", func(container string) string {
		if container == "upgrade" {
			return "{}" // the sample's baseline: the fleet's instances hold no data
		}
		return string(dump)
	})
	return b.admin.Status().Update(ctx, pod)
}

// The catalogue and class figure 5 moves the fleet's release through.
const fleetCatalog, fleetClass = "fleet", "fleet"

// followCatalog puts the instances under a class whose catalogue offers the release they run
// (as the official image, so nothing rolls), and makes them follow it: the members' one-time
// choice, before the host publishes anything.
func (b *bench) followCatalog(t *testing.T, ctx context.Context, keys []client.ObjectKey) {
	cat := &v1alpha1.KintoReleaseCatalog{ObjectMeta: metav1.ObjectMeta{Name: fleetCatalog}, Spec: v1alpha1.KintoReleaseCatalogSpec{
		Releases: []v1alpha1.KintoRelease{{Version: releaseBefore, Image: "kinto/kinto-server:" + releaseBefore}}}}
	class := &v1alpha1.KintoHostingClass{ObjectMeta: metav1.ObjectMeta{Name: fleetClass}, Spec: v1alpha1.KintoHostingClassSpec{
		Updates: &v1alpha1.ClassUpdates{Catalog: fleetCatalog, Automatic: v1alpha1.AutomaticMinor}}}
	for _, obj := range []client.Object{cat, class} {
		if err := b.admin.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	parallel(t, 8, len(keys), func(i int) error {
		patch := []byte(fmt.Sprintf(`{"spec":{"className":%q,"updates":{}}}`, fleetClass))
		inst := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: keys[i].Namespace, Name: keys[i].Name}}
		return b.admin.Patch(ctx, inst, client.RawPatch("application/merge-patch+json", patch))
	})
}

// publishRelease adds release to the fleet's catalogue: one write, as a host publishing it.
func (b *bench) publishRelease(t *testing.T, ctx context.Context, release string) {
	cat := &v1alpha1.KintoReleaseCatalog{}
	if err := b.admin.Get(ctx, client.ObjectKey{Name: fleetCatalog}, cat); err != nil {
		t.Fatal(err)
	}
	cat.Spec.Releases = append(cat.Spec.Releases, v1alpha1.KintoRelease{Version: release, Image: "kinto/kinto-server:" + release})
	if err := b.admin.Update(ctx, cat); err != nil {
		t.Fatal(err)
	}
}

// upgradesSucceeded counts the instances whose last upgrade, to release, succeeded, once they
// all have or a minute has passed: an instance Ready at the release records its upgrade's
// outcome once its rollout slot is given back, a pass later.
func (b *bench) upgradesSucceeded(t *testing.T, keys []client.ObjectKey, release string) int {
	n := 0
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		n = 0
		for _, k := range keys {
			inst := &v1alpha1.KintoInstance{}
			if err := b.cache.Get(context.Background(), k, inst); err != nil {
				t.Fatal(err)
			}
			if u := inst.Status.Updates; u != nil && u.LastUpgrade != nil && u.LastUpgrade.To == release && u.LastUpgrade.Outcome == v1alpha1.UpgradeOutcomeSucceeded {
				n++
			}
		}
		if n == len(keys) || time.Now().After(deadline) {
			return n
		}
	}
}

// sampleRollingOut records the most instances seen holding a rollout slot at once.
func (b *bench) sampleRollingOut(ctx context.Context, most *atomic.Int64) {
	for ctx.Err() == nil {
		list := &v1alpha1.KintoInstanceList{}
		if b.cache.List(ctx, list) == nil {
			rolling := int64(0)
			for i := range list.Items {
				if meta.IsStatusConditionTrue(list.Items[i].Status.Conditions, v1alpha1.ConditionRollingOut) {
					rolling++
				}
			}
			if rolling > most.Load() {
				most.Store(rolling)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createUnrelated creates count Secrets and ConfigMaps, one in twenty of 64 KiB, the others
// small, in namespaces of their own, and returns how many and their bytes.
func (b *bench) createUnrelated(t *testing.T, ctx context.Context, count int) (int, int) {
	var keys []client.ObjectKey
	for i := range count {
		keys = append(keys, client.ObjectKey{Namespace: fmt.Sprintf("unrelated-%02d", i%20), Name: fmt.Sprintf("o%05d", i)})
	}
	b.ensureNamespaces(t, ctx, keys)
	var bytes atomic.Int64
	parallel(t, 16, count, func(i int) error {
		size := 256
		if i%20 == 0 {
			size = 64 << 10
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte('a' + rand.IntN(26))
		}
		bytes.Add(int64(size))
		meta := metav1.ObjectMeta{Namespace: keys[i].Namespace, Name: keys[i].Name, Labels: map[string]string{"app": "unrelated"}}
		if i%2 == 0 {
			return b.admin.Create(ctx, &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"data": data}})
		}
		return b.admin.Create(ctx, &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"data": string(data)}})
	})
	return count, int(bytes.Load())
}

// startManager starts bin/manager as in production, with the bench's metrics address and
// MANAGER_ARGS, and waits for its metrics.
func (b *bench) startManager(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.metrics = l.Addr().String()
	l.Close()
	args := append([]string{"--leader-elect=false", "--metrics-bind-address=" + b.metrics, "--health-probe-bind-address=0",
		"--operator-image=" + benchImage, "--kubeconfig=" + b.kubeconfig}, b.args...)
	logFile, err := os.OpenFile(filepath.Join(b.logDir, "manager.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(b.managerBin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.manager = cmd
	t.Cleanup(func() {
		if b.manager != nil {
			_ = b.manager.Process.Kill()
			_ = b.manager.Wait()
		}
		if t.Failed() {
			if raw, err := os.ReadFile(logFile.Name()); err == nil {
				lines := strings.Split(string(raw), "\n")
				t.Logf("manager log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	})
	// Its controllers start once its caches have synced.
	kintotest.Eventually(t, time.Minute, 100*time.Millisecond, "the manager's workers started", func() (bool, string) {
		raw, err := os.ReadFile(logFile.Name())
		if err != nil {
			return false, err.Error()
		}
		return strings.Count(string(raw), `"msg":"Starting workers","controller":"kintoinstance"`) > b.starts, "not yet"
	})
	b.starts++
	kintotest.Eventually(t, time.Minute, 200*time.Millisecond, "the manager's metrics", func() (bool, string) {
		_, err := b.tryScrape()
		return err == nil, fmt.Sprint(err)
	})
}

func (b *bench) stopManager(t *testing.T) {
	_ = b.manager.Process.Signal(syscall.SIGTERM)
	if err := b.manager.Wait(); err != nil {
		t.Logf("manager: %v", err)
	}
	b.manager = nil
}

// metricsText is one scrape of the manager's metrics: sample lines by metric name.
type metricsText map[string][]sample

type sample struct {
	labels map[string]string
	value  float64
}

func (m metricsText) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range m[name] {
		ok := true
		for k, v := range match {
			ok = ok && s.labels[k] == v
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// byVerb is rest_client_requests_total summed by method: every request of the manager's
// clients.
func (m metricsText) byVerb() map[string]int {
	out := map[string]int{}
	for _, s := range m["rest_client_requests_total"] {
		out[s.labels["method"]] += int(s.value)
	}
	return out
}

func (m metricsText) reconciles() int {
	return int(m.sum("controller_runtime_reconcile_total", map[string]string{"controller": "kintoinstance"}))
}

func (b *bench) scrape(t *testing.T) metricsText {
	m, err := b.tryScrape()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (b *bench) tryScrape() (metricsText, error) {
	web := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest(http.MethodGet, "https://"+b.metrics+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := web.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (metricsText, error) {
	m := metricsText{}
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		nameLabels, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		name, rest, _ := strings.Cut(nameLabels, "{")
		s := sample{labels: map[string]string{}, value: v}
		for _, pair := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if k, v, ok := strings.Cut(pair, "="); ok {
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		m[name] = append(m[name], s)
	}
	return m, scanner.Err()
}

// reviews counts the token and access reviews the API server has answered: the operator's
// metrics endpoint asks for them to authorise the bench's scrapes, which its client metrics
// count as POSTs of its own.
func (b *bench) reviews(t *testing.T) int {
	httpClient, err := rest.HTTPClientFor(b.adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Get(strings.TrimSuffix(b.adminCfg.Host, "/") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the API server's metrics: %s", resp.Status)
	}
	m, err := parseMetrics(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return int(m.sum("apiserver_request_total", map[string]string{"resource": "tokenreviews", "verb": "POST"}) +
		m.sum("apiserver_request_total", map[string]string{"resource": "subjectaccessreviews", "verb": "POST"}))
}

// waitSettled waits until the restarted manager has reconciled at least n instances and its
// queue stays empty for 3 s, and returns how many reconciles that took.
func (b *bench) waitSettled(t *testing.T, n int) int {
	quiet := 0
	var reconciles int
	kintotest.Eventually(t, 30*time.Minute, time.Second, "the manager settled", func() (bool, string) {
		m := b.scrape(t)
		reconciles = m.reconciles()
		depth := m.sum("workqueue_depth", map[string]string{"name": "kintoinstance"})
		if reconciles >= n && depth == 0 {
			quiet++
		} else {
			quiet = 0
		}
		return quiet >= 3, fmt.Sprintf("%d reconciles, queue %v", reconciles, depth)
	})
	return reconciles
}

// memory is the manager's resident set and the least Go heap in use over 10 samples, a second
// apart (the heap between two collections includes garbage).
func (b *bench) memory(t *testing.T) (rss, heap float64) {
	for i := range 10 {
		if i > 0 {
			time.Sleep(time.Second)
		}
		m := b.scrape(t)
		rss = m.sum("process_resident_memory_bytes", nil)
		h := m.sum("go_memstats_heap_inuse_bytes", nil)
		if heap == 0 || h < heap {
			heap = h
		}
	}
	return rss, heap
}

// cpuUse is the CPU time, in seconds, that each process of the bench has used: the API server,
// etcd, the operator and the bench itself (the plain client, the instances' creation, its
// cache). The first three are the bench's child processes.
type cpuUse map[string]float64

var benchProcesses = map[string]string{"kube-apiserver": "apiServer", "etcd": "etcd", "manager": "operator"}

// profileAPIServer, when APISERVER_PROFILE names a file prefix, takes a CPU profile of the API
// server (its /debug/pprof, on its debug socket) for APISERVER_PROFILE_SECONDS (30) from
// now, into PREFIX-side-N.prof (the side's Nth run): where the API server's CPU goes during
// each side of a provisioning run, for `go tool pprof -diff_base`. A window longer than either
// side takes holds the whole of each: the next step waits for it.
func (b *bench) profileAPIServer(t *testing.T, side string) {
	prefix := os.Getenv("APISERVER_PROFILE")
	if prefix == "" {
		return
	}
	httpClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", b.debugSocket)
	}}}
	url := fmt.Sprintf("http://apiserver/debug/pprof/profile?seconds=%d", envInt("APISERVER_PROFILE_SECONDS", 30))
	if b.profiled == nil {
		b.profiled = map[string]int{}
	}
	b.profiled[side]++
	file := fmt.Sprintf("%s-%s-%d.prof", prefix, side, b.profiled[side])
	b.profiles.Add(1)
	go func() {
		defer b.profiles.Done()
		resp, err := httpClient.Get(url)
		if err != nil {
			t.Errorf("profiling the API server: %v", err)
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", resp.Status, raw)
		}
		if err == nil {
			err = os.WriteFile(file, raw, 0o644)
		}
		if err != nil {
			t.Errorf("profiling the API server: %v", err)
		}
	}()
}

// cpuUse reads each process's use from /proc (Linux's clock ticks are 1/100 s for every
// process).
func (b *bench) cpuUse(t *testing.T) cpuUse {
	use := cpuUse{"bench": 0}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name, parent, ticks, ok := procStat(pid)
		if !ok {
			continue
		}
		if pid == os.Getpid() {
			use["bench"] += ticks / 100
		} else if key, mine := benchProcesses[name]; mine && parent == os.Getpid() {
			use[key] += ticks / 100
		}
	}
	return use
}

// procStat reads a process's name, parent and CPU ticks (user and system) from /proc.
func procStat(pid int) (name string, parent int, ticks float64, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, false
	}
	// pid (name) state ppid ... utime stime: the name may hold spaces and parentheses.
	open, end := strings.IndexByte(string(raw), '('), strings.LastIndexByte(string(raw), ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	fields := strings.Fields(string(raw[end+1:]))
	if len(fields) < 13 {
		return "", 0, 0, false
	}
	parent, _ = strconv.Atoi(fields[1])
	user, _ := strconv.ParseFloat(fields[11], 64)
	system, _ := strconv.ParseFloat(fields[12], 64)
	return string(raw[open+1 : end]), parent, user + system, true
}

// since is the use from before to u.
func (u cpuUse) since(before cpuUse) cpuUse {
	d := cpuUse{}
	for k, v := range u {
		d[k] = v - before[k]
	}
	return d
}

func (u cpuUse) String() string {
	var parts []string
	for _, k := range []string{"apiServer", "etcd", "operator", "bench"} {
		if v, ok := u[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f s", k, v))
		}
	}
	return strings.Join(parts, ", ")
}
