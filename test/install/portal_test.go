package install_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The members' page as the chart renders it (portal.enabled, with config/portal's settings) is
// config/portal's bundle, object by object, and passes a server-side dry run under the
// restricted profile without a warning; off by default, the chart renders none of it.
func TestChartPortalIsTheBundle(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "portal.yaml")
	out, err := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), "kustomize", "../../config/portal").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/portal: %v", err)
	}
	if err := os.WriteFile(bundle, out, 0o600); err != nil {
		t.Fatal(err)
	}
	chart := renderChart(t, "--show-only", "templates/portal.yaml",
		"--set", "image=controller:latest",
		"--set", "portal.enabled=true",
		"--set", "portal.publicURL=https://members.example.org",
		"--set", "portal.issuer=https://id.example.org",
		"--set", "portal.clientID=kinto-members",
		"--set", "portal.adminGroup=kinto-admins",
		"--set", "portal.groups={members,kinto-admins}")
	compareObjects(t, readObjects(t, bundle), chart)

	admin, c := startAPIServer(t)
	ensureNamespaces(t, c, []string{operatorNamespace}, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	dryRunWithoutWarnings(t, admin, c, chart)

	for _, u := range renderChart(t) {
		if u.GetName() == "kinto-operator-portal" {
			t.Errorf("the chart renders the page's %s by default", u.GetKind())
		}
	}
}
