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
	// heartbeatPoll is how often the bench looks at what it times (and the plain client at what
	// it waits for): the figures' resolution.
	heartbeatPoll = 100 * time.Millisecond
)

// overheadResults are the figures of TestOperatorOverhead, as bin/bench-cluster.json holds them.
type overheadResults struct {
	Cores    int          `json:"cores"`
	Sample   string       `json:"sample"`
	Operator []milestones `json:"operator"`
	Direct   []milestones `json:"direct"`
	// The medians of each path's runs, and the operator's time to Kinto's answer over the plain
	// client's.
	OperatorMedian milestones `json:"operatorMedian"`
	DirectMedian   milestones `json:"directMedian"`
	Ratio          float64    `json:"ratio"`
}

// milestones are the seconds from the first object's creation until PostgreSQL is ready, the
// migration Job has completed, and Kinto answers its heartbeat through its Service.
type milestones struct {
	DatabaseReady float64 `json:"databaseReadySeconds"`
	Migrated      float64 `json:"migratedSeconds"`
	Serving       float64 `json:"servingSeconds"`
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
		t.Logf("run %d: operator %+v, plain client %+v", i+1, r.Operator[i], r.Direct[i])
	}
	r.OperatorMedian, r.DirectMedian = medians(r.Operator), medians(r.Direct)
	r.Ratio = r.OperatorMedian.Serving / r.DirectMedian.Serving
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, append(raw, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	fmt.Fprintf(&table, "kinto-operator on the local cluster: %d cores, %s, %d runs each; median seconds from the first create\n", r.Cores, r.Sample, overheadRuns)
	fmt.Fprintf(&table, "%-46s %9s %9s %9s   %s\n", "path", "database", "migrated", "heartbeat", "heartbeat of each run")
	row := func(name string, m milestones, runs []milestones) {
		var each []string
		for _, x := range runs {
			each = append(each, fmt.Sprintf("%.1f", x.Serving))
		}
		fmt.Fprintf(&table, "%-46s %9.1f %9.1f %9.1f   %s\n", name, m.DatabaseReady, m.Migrated, m.Serving, strings.Join(each, " "))
	}
	row("operator (the KintoInstance created)", r.OperatorMedian, r.Operator)
	row("plain client (the builders' objects created)", r.DirectMedian, r.Direct)
	fmt.Fprintf(&table, "%-46s %.2f\n", "ratio, to the heartbeat (operator overhead)", r.Ratio)
	fmt.Fprintf(&table, "raw figures: %s\n", out)
	// On the test's standard output, so that `make bench-cluster` shows it as it is.
	fmt.Print(table.String())
}

// timeOperator creates the sample in a namespace of its own and times it.
func timeOperator(t *testing.T, run int) milestones {
	ns := benchNamespace(t, fmt.Sprintf("bench-operator-%d", run))
	start := time.Now()
	inst := applySample(t, ns, defaultSample, nil)
	return track(t, inst, start, nil)
}

// timeDirect creates the children of the sample as the builders render them, with no instance
// (so without owner references), each step once the one before is done, and times it.
func timeDirect(t *testing.T, run int) milestones {
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
	return track(t, inst, start, func(step string) {
		switch step {
		case stepDatabaseReady:
			create(children.Migration)
		case stepMigrated:
			in.SchemaVersion = effective.Spec.Version
			withServer, err := resources.Desired(effective, in)
			if err != nil {
				t.Fatal(err)
			}
			create(withServer.Server)
		}
	})
}

const (
	stepDatabaseReady = "database ready"
	stepMigrated      = "migrated"
)

// track polls, every heartbeatPoll, the instance's PostgreSQL StatefulSet, its migration Job and
// then Kinto's heartbeat through its Service, until Kinto answers, and returns when each was
// first seen done. next, if not nil, runs once each of the first two is done.
func track(t *testing.T, inst *v1alpha1.KintoInstance, start time.Time, next func(step string)) milestones {
	t.Helper()
	ctx := context.Background()
	var m milestones
	reached := func(at *float64, step string) {
		*at = time.Since(start).Seconds()
		if next != nil {
			next(step)
		}
	}
	for deadline := start.Add(readyTimeout); m.Serving == 0; time.Sleep(heartbeatPoll) {
		if time.Now().After(deadline) {
			t.Fatalf("Kinto did not answer within %s: %+v", readyTimeout, m)
		}
		if m.DatabaseReady == 0 {
			sts := &appsv1.StatefulSet{}
			if k8s.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.DatabaseName(inst)}, sts) == nil && sts.Status.ReadyReplicas == 1 {
				reached(&m.DatabaseReady, stepDatabaseReady)
			}
			continue
		}
		if m.Migrated == 0 {
			job := &batchv1.Job{}
			if k8s.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.MigrateJobName(inst, inst.Spec.Version)}, job) == nil && job.Status.Succeeded == 1 {
				reached(&m.Migrated, stepMigrated)
			}
			continue
		}
		svc := &corev1.Service{}
		if k8s.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.ServerName(inst)}, svc) != nil {
			continue
		}
		r, err := kintotest.New(t, fmt.Sprintf("http://%s:%d/v1", svc.Spec.ClusterIP, resources.ServicePort)).TryCall("GET", "/__heartbeat__", nil)
		if err == nil && r.Status == 200 {
			m.Serving = time.Since(start).Seconds()
		}
	}
	return m
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

// medians are the medians of each milestone of runs.
func medians(runs []milestones) milestones {
	of := func(f func(milestones) float64) float64 {
		var v []float64
		for _, m := range runs {
			v = append(v, f(m))
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return milestones{
		DatabaseReady: of(func(m milestones) float64 { return m.DatabaseReady }),
		Migrated:      of(func(m milestones) float64 { return m.Migrated }),
		Serving:       of(func(m milestones) float64 { return m.Serving }),
	}
}
