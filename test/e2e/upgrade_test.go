//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The operator's Helm release, as hack/deploy-operator.sh installs it.
const (
	operatorRelease    = "kinto-operator"
	operatorDeployment = "kinto-operator-controller-manager"
	// upgradeSettleTime is how long the tenants' pods are watched after the new operator has
	// reconciled every instance: a rollout it started would show in it.
	upgradeSettleTime = 20 * time.Second
)

// TestOperatorUpgradeRestartsNoTenantPod installs the previous build of the operator (the same
// tree built under another version string and image, E2E_PREVIOUS_OPERATOR_IMAGE), runs two
// Ready instances with their managed databases under it, then upgrades the operator to the
// build under test with `helm upgrade`, as a co-op would. Once the new operator has reconciled
// every instance, no server or database pod of theirs was restarted or replaced: same pods,
// restart counts, ReplicaSets and StatefulSet revisions.
//
// Not parallel: it replaces the operator, so it runs before the parallel tests, which start once
// the build under test runs again.
func TestOperatorUpgradeRestartsNoTenantPod(t *testing.T) {
	helm, chart := os.Getenv("HELM"), os.Getenv("E2E_CHART")
	previous, current := os.Getenv("E2E_PREVIOUS_OPERATOR_IMAGE"), os.Getenv("E2E_OPERATOR_IMAGE")
	if helm == "" || chart == "" || previous == "" || current == "" {
		t.Fatal("HELM, E2E_CHART, E2E_PREVIOUS_OPERATOR_IMAGE and E2E_OPERATOR_IMAGE are set by hack/e2e.sh (make test-e2e)")
	}
	// Whatever happens, the other tests run under the build under test.
	t.Cleanup(func() { upgradeOperator(t, helm, chart, current) })
	upgradeOperator(t, helm, chart, previous)
	previousVersion := operatorVersion(t, previous)

	ns := newNamespace(t)
	var insts []*v1alpha1.KintoInstance
	for _, name := range []string{"notes-a", "notes-b"} {
		insts = append(insts, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) { i.Name = name }))
	}
	for i, inst := range insts {
		insts[i] = waitReady(t, inst)
		waitHealthy(t, kintoAPI(t, insts[i]))
	}
	before := tenantPods(t, insts)

	upgradeOperator(t, helm, chart, current)
	if v := operatorVersion(t, current); v == previousVersion {
		t.Fatalf("the operator reports version %q before and after the upgrade: not another build", v)
	}
	for _, inst := range insts {
		waitReconciled(t, inst)
	}
	deadline := time.Now().Add(upgradeSettleTime)
	for time.Now().Before(deadline) {
		if after := tenantPods(t, insts); after != before {
			t.Fatalf("the operator's upgrade (%s to %s) changed the tenants' pods:\nbefore:\n%s\nafter:\n%s", previous, current, before, after)
		}
		time.Sleep(pollInterval)
	}
	for _, inst := range insts {
		waitReady(t, inst)
		waitHealthy(t, kintoAPI(t, inst))
	}
}

// upgradeOperator moves the operator's Helm release to image (keeping every other value) and
// waits until it runs.
func upgradeOperator(t *testing.T, helm, chart, image string) {
	t.Helper()
	run(t, helm, "upgrade", operatorRelease, chart, "--namespace", operatorNamespace, "--skip-crds", "--reuse-values",
		"--set-string", "image="+image)
	run(t, kubectl, "-n", operatorNamespace, "rollout", "status", "deployment/"+operatorDeployment, "--timeout=180s")
}

// operatorVersion is what `manager --version` prints in the running operator pod of image.
func operatorVersion(t *testing.T, image string) string {
	t.Helper()
	var pods corev1.PodList
	if err := k8s.List(context.Background(), &pods, client.InNamespace(operatorNamespace),
		client.MatchingLabels{"app.kubernetes.io/name": "kinto-operator"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) && p.Spec.Containers[0].Image == image {
			version := strings.TrimSpace(run(t, kubectl, "-n", operatorNamespace, "exec", p.Name, "--", "/manager", "--version"))
			t.Logf("operator pod %s runs %s, version %s", p.Name, image, version)
			return version
		}
	}
	t.Fatalf("no ready operator pod runs %s", image)
	return ""
}

// waitReconciled waits until the running operator has reconciled inst: it sets a label of the
// instance's ConfigMap to another value and waits until the operator has applied it back, which
// a pass does after applying, or leaving as they are, the instance's workloads.
func waitReconciled(t *testing.T, inst *v1alpha1.KintoInstance) {
	t.Helper()
	name := resources.ConfigMapName(inst)
	run(t, kubectl, "-n", inst.Namespace, "label", "--overwrite", "configmap", name, resources.ComponentLabel+"=edited")
	kintotest.Eventually(t, readyTimeout, pollInterval, "the operator applies ConfigMap "+name+" again", func() (bool, string) {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: inst.Namespace, Name: name}, cm); err != nil {
			return false, err.Error()
		}
		return cm.Labels[resources.ComponentLabel] != "edited", fmt.Sprintf("labels %v", cm.Labels)
	})
}

// tenantPods describes the instances' server and database workloads, one line each: every pod
// with its uid and containers' restart counts, the server's ReplicaSets with their revisions,
// the StatefulSet's generation and revisions.
func tenantPods(t *testing.T, insts []*v1alpha1.KintoInstance) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	for _, inst := range insts {
		for _, component := range []string{resources.ComponentServer, resources.ComponentDatabase} {
			for _, p := range podsOf(t, inst, component) {
				line := fmt.Sprintf("pod %s uid %s", p.Name, p.UID)
				for _, c := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
					line += fmt.Sprintf(" %s:%d", c.Name, c.RestartCount)
				}
				lines = append(lines, line)
			}
		}
		var sets appsv1.ReplicaSetList
		if err := k8s.List(ctx, &sets, client.InNamespace(inst.Namespace),
			client.MatchingLabels(resources.SelectorLabels(inst, resources.ComponentServer))); err != nil {
			t.Fatal(err)
		}
		for _, rs := range sets.Items {
			lines = append(lines, fmt.Sprintf("replicaset %s revision %s replicas %d", rs.Name,
				rs.Annotations["deployment.kubernetes.io/revision"], rs.Status.Replicas))
		}
		d := serverDeployment(t, inst)
		lines = append(lines, fmt.Sprintf("deployment %s generation %d", d.Name, d.Generation))
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.DatabaseName(inst)}, sts); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("statefulset %s generation %d revisions %s %s", sts.Name, sts.Generation,
			sts.Status.CurrentRevision, sts.Status.UpdateRevision))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// run runs a command, failing the test with its output if it fails, and returns its output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
