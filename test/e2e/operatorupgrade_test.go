//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

const (
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
// restart counts, ReplicaSets and StatefulSet revisions. Then the operator is uninstalled, and
// installed again: the instances' pods and volumes are still the same. The upgrade and the
// uninstall are the README's own commands.
//
// Not parallel: it replaces the operator, so it runs before the parallel tests, which start once
// the build under test runs again.
func TestOperatorUpgradeRestartsNoTenantPod(t *testing.T) {
	previous, current := os.Getenv("E2E_PREVIOUS_OPERATOR_IMAGE"), os.Getenv("E2E_OPERATOR_IMAGE")
	if os.Getenv("HELM") == "" || os.Getenv("DEPLOY_WITH") != "chart" || previous == "" || current == "" {
		t.Fatal("HELM, DEPLOY_WITH=chart, E2E_PREVIOUS_OPERATOR_IMAGE and E2E_OPERATOR_IMAGE are set by hack/e2e.sh (make test-e2e)")
	}
	upgrade, uninstall := readmeCommands(t, "Upgrading the operator"), readmeCommands(t, "Uninstalling without losing tenant data")
	// Whatever happens, the other tests run under the build under test.
	t.Cleanup(func() { installOperator(t) })
	runREADME(t, upgrade, previous)
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

	runREADME(t, upgrade, current)
	if v := operatorVersion(t, current); v == previousVersion {
		t.Fatalf("the operator reports version %q before and after the upgrade: not another build", v)
	}
	for _, inst := range insts {
		waitReconciled(t, inst)
	}
	checkUnchanged(t, fmt.Sprintf("the operator's upgrade (%s to %s)", previous, current), insts, before)

	runREADME(t, uninstall, "")
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: operatorDeployment}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the operator's Deployment after the README's uninstall: %v, want it gone", err)
	}
	checkUnchanged(t, "uninstalling the operator", insts, before)
	for _, inst := range insts {
		dataVolume(t, inst)
		waitHealthy(t, kintoAPI(t, inst))
	}
	installOperator(t)
	for _, inst := range insts {
		waitReconciled(t, inst)
	}
	checkUnchanged(t, "installing the operator again", insts, before)
	for _, inst := range insts {
		waitReady(t, inst)
		waitHealthy(t, kintoAPI(t, inst))
	}
}

// checkUnchanged watches the instances' pods for upgradeSettleTime: they stay as before.
func checkUnchanged(t *testing.T, what string, insts []*v1alpha1.KintoInstance, before string) {
	t.Helper()
	deadline := time.Now().Add(upgradeSettleTime)
	for time.Now().Before(deadline) {
		if after := tenantPods(t, insts); after != before {
			t.Fatalf("%s changed the tenants' pods:\nbefore:\n%s\nafter:\n%s", what, before, after)
		}
		time.Sleep(pollInterval)
	}
}

// readmeCommands are the lines of the first sh block under the README's heading "### heading".
func readmeCommands(t *testing.T, heading string) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(raw), "\n### "+heading+"\n")
	if !found {
		t.Fatalf("the README has no heading %q", heading)
	}
	_, block, found := strings.Cut(section, "```sh\n")
	block, _, closed := strings.Cut(block, "```")
	if !found || !closed || strings.Contains(section[:strings.Index(section, block)], "\n## ") {
		t.Fatalf("the README has no sh block under %q", heading)
	}
	return block
}

// runREADME runs commands from the README in the repository's folder with kubectl and helm
// those of the tests, the image placeholder replaced by image.
func runREADME(t *testing.T, commands, image string) {
	t.Helper()
	bin := t.TempDir()
	for name, target := range map[string]string{"kubectl": kubectl, "helm": os.Getenv("HELM")} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	script := regexp.MustCompile(`<registry>/kinto-operator:<[a-z-]+>`).ReplaceAllString(commands, image)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's commands:\n%s\n%v\n%s", script, err, out)
	}
	t.Logf("ran the README's commands:\n%s", script)
}

// installOperator installs the build under test as hack/e2e.sh did (hack/deploy-operator.sh,
// from the chart, with the local cluster's flags).
func installOperator(t *testing.T) {
	t.Helper()
	cmd := exec.Command("../../hack/deploy-operator.sh", os.Getenv("E2E_OPERATOR_IMAGE"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/deploy-operator.sh: %v\n%s", err, out)
	}
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
