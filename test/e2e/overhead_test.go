//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

const (
	// overheadOutEnv is where `make bench-cluster` wants the figures as JSON; the bench runs
	// only when it is set.
	overheadOutEnv = "E2E_BENCH_OUT"
	overheadRuns   = 5
	// heartbeatPoll is how often the bench asks Kinto for its heartbeat, and how often the
	// plain client looks at what it waits for: the figures' resolution.
	heartbeatPoll = 100 * time.Millisecond
)

// overheadResults are the figures of TestOperatorOverhead, as bin/bench-cluster.json holds them.
type overheadResults struct {
	Cores    int       `json:"cores"`
	Sample   string    `json:"sample"`
	Operator []float64 `json:"operatorSeconds"`
	Direct   []float64 `json:"directSeconds"`
	// The medians, and the operator's over the plain client's.
	OperatorMedian float64 `json:"operatorMedianSeconds"`
	DirectMedian   float64 `json:"directMedianSeconds"`
	Ratio          float64 `json:"ratio"`
}

// TestOperatorOverhead (#14, item 6; `make bench-cluster`) times, on the cluster, the smallest
// sample from its creation to Kinto answering its heartbeat through its Service, 5 times, beside
// a plain client that creates the same children (rendered by the same builders, without the
// instance) in the order they need, waiting for each step as a script would: the credentials
// and every child but the migration Job and the server, then the Job once PostgreSQL is ready,
// then the server once the Job has completed. Runs alternate, so that both see the same machine.
func TestOperatorOverhead(t *testing.T) {
	out := os.Getenv(overheadOutEnv)
	if out == "" {
		t.Skipf("the overhead bench runs with %s set (make bench-cluster)", overheadOutEnv)
	}
	r := overheadResults{Cores: runtime.NumCPU(), Sample: defaultSample}
	// Each run in a subtest, whose namespace is gone before the next starts.
	for i := range overheadRuns {
		t.Run(fmt.Sprintf("operator-%d", i+1), func(t *testing.T) { r.Operator = append(r.Operator, timeOperator(t, i)) })
		t.Run(fmt.Sprintf("direct-%d", i+1), func(t *testing.T) { r.Direct = append(r.Direct, timeDirect(t, i)) })
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("run %d: operator %.1f s, plain client %.1f s", i+1, r.Operator[i], r.Direct[i])
	}
	r.OperatorMedian, r.DirectMedian = median(r.Operator), median(r.Direct)
	r.Ratio = r.OperatorMedian / r.DirectMedian
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, append(raw, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	secs := func(v []float64) string {
		var s []string
		for _, x := range v {
			s = append(s, fmt.Sprintf("%.1f", x))
		}
		return strings.Join(s, " ")
	}
	var table strings.Builder
	fmt.Fprintf(&table, "kinto-operator on the local cluster: %d cores, %s, %d runs each, to the heartbeat\n", r.Cores, r.Sample, overheadRuns)
	fmt.Fprintf(&table, "%-44s %-10s %s\n", "path", "median", "runs (s)")
	fmt.Fprintf(&table, "%-44s %-10s %s\n", "operator (KintoInstance applied)", fmt.Sprintf("%.1f s", r.OperatorMedian), secs(r.Operator))
	fmt.Fprintf(&table, "%-44s %-10s %s\n", "plain client (the builders' objects applied)", fmt.Sprintf("%.1f s", r.DirectMedian), secs(r.Direct))
	fmt.Fprintf(&table, "%-44s %.2f\n", "ratio (operator overhead)", r.Ratio)
	fmt.Fprintf(&table, "raw figures: %s\n", out)
	// On the test's standard output, so that `make bench-cluster` shows it as it is.
	fmt.Print(table.String())
}

// timeOperator creates the sample in a namespace of its own and returns the seconds until Kinto
// answers its heartbeat.
func timeOperator(t *testing.T, run int) float64 {
	ns := benchNamespace(t, fmt.Sprintf("bench-operator-%d", run))
	start := time.Now()
	inst := applySample(t, ns, defaultSample, nil)
	waitHeartbeat(t, inst)
	return time.Since(start).Seconds()
}

// timeDirect creates the children of the sample as the builders render them, with no instance
// (so without owner references), and returns the seconds until Kinto answers its heartbeat.
func timeDirect(t *testing.T, run int) float64 {
	ctx := context.Background()
	ns := benchNamespace(t, fmt.Sprintf("bench-direct-%d", run))
	inst, _ := kintotest.Sample(t, defaultSample)
	inst.Namespace = ns
	// The instance as the API server defaults it, never stored.
	if err := k8s.Create(ctx, inst, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	effective, _ := hostingclass.Effective(inst, nil)
	create := func(objs ...client.Object) {
		t.Helper()
		for _, o := range objs {
			o.SetOwnerReferences(nil)
			if err := k8s.Create(ctx, o); err != nil {
				t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
			}
		}
	}
	start := time.Now()
	secret, err := resources.CredentialsSecret(effective, nil, resources.RandomSource, false, false)
	if err != nil {
		t.Fatal(err)
	}
	create(secret)
	in := resources.Inputs{CredentialsRevision: secret.ResourceVersion, OperatorImage: os.Getenv("E2E_OPERATOR_IMAGE"), Network: operatorNetwork(t)}
	children, err := resources.Desired(effective, in)
	if err != nil {
		t.Fatal(err)
	}
	create(children.Applied()...)
	poll(t, "PostgreSQL ready", func() bool {
		sts := &appsv1.StatefulSet{}
		return k8s.Get(ctx, client.ObjectKeyFromObject(children.Database), sts) == nil && sts.Status.ReadyReplicas == 1
	})
	create(children.Migration)
	poll(t, "migration Job complete", func() bool {
		job := &batchv1.Job{}
		return k8s.Get(ctx, client.ObjectKeyFromObject(children.Migration), job) == nil && job.Status.Succeeded == 1
	})
	in.SchemaVersion = effective.Spec.Version
	withServer, err := resources.Desired(effective, in)
	if err != nil {
		t.Fatal(err)
	}
	create(withServer.Server)
	waitHeartbeat(t, inst)
	return time.Since(start).Seconds()
}

// operatorNetwork is what the network policies need, as the operator has it: its defaults, and
// the local cluster's ranges hack/e2e.sh gives it (OPERATOR_ARGS).
func operatorNetwork(t *testing.T) resources.NetworkOptions {
	selector := func(s string) metav1.LabelSelector {
		sel, err := metav1.ParseToLabelSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		return *sel
	}
	n := resources.NetworkOptions{
		IngressNamespaces: selector("kubernetes.io/metadata.name=ingress-nginx"),
		DNSNamespaces:     selector("kubernetes.io/metadata.name=kube-system"),
		DNSPods:           selector("k8s-app=kube-dns"),
		ClusterCIDRs:      []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"},
	}
	for _, arg := range strings.Fields(os.Getenv("OPERATOR_ARGS")) {
		if cidrs, ok := strings.CutPrefix(arg, "--cluster-cidrs="); ok {
			n.ClusterCIDRs = strings.Split(cidrs, ",")
		}
	}
	return n
}

// benchNamespace creates a namespace for one run, deleted (and waited for, so that the next run
// does not share the machine with its teardown) when the test ends.
func benchNamespace(t *testing.T, name string) string {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := k8s.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dump(t, name)
		}
		if err := k8s.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) && !apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(ns), &corev1.Namespace{})) {
			time.Sleep(pollInterval)
		}
	})
	return name
}

// waitHeartbeat waits until Kinto answers 200 on its heartbeat through the instance's Service,
// which the Service's existence comes before.
func waitHeartbeat(t *testing.T, inst *v1alpha1.KintoInstance) {
	ctx := context.Background()
	poll(t, "heartbeat 200 through the Service", func() bool {
		svc := &corev1.Service{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.ServerName(inst)}, svc); err != nil {
			return false
		}
		r, err := kintotest.New(t, fmt.Sprintf("http://%s:%d/v1", svc.Spec.ClusterIP, resources.ServicePort)).TryCall("GET", "/__heartbeat__", nil)
		return err == nil && r.Status == 200
	})
}

// poll waits, up to readyTimeout, until done.
func poll(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, readyTimeout)
		}
		time.Sleep(heartbeatPoll)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
