package kintotest

import (
	"os/exec"
	"path/filepath"
	"strings"
)

// GatewayAPIHTTPRouteCRD is the HTTPRoute CRD shipped in the Gateway API module the operator
// builds with, for the suites that run a real API server.
func GatewayAPIHTTPRouteCRD() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return "", err
	}
	return filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml"), nil
}
