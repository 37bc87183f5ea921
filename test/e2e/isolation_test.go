//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// connectTimeout bounds one connection attempt between pods; a NetworkPolicy drops packets, so a
// refused connection shows as a timeout.
const connectTimeout = 3 * time.Second

// TestTenantsAreIsolated runs two instances in two namespaces, with the cluster's NetworkPolicy
// enforcer: each Kinto server reaches its own PostgreSQL (through the policies' DNS and database
// egress rules, or it would not be Ready), and neither can open a connection to the other
// tenant's PostgreSQL or Kinto server, by Service or by pod address.
func TestTenantsAreIsolated(t *testing.T) {
	t.Parallel()
	nsA, nsB := newNamespace(t), newNamespace(t)
	a := applySample(t, nsA, defaultSample, nil)
	b := applySample(t, nsB, defaultSample, nil)
	a, b = waitReady(t, a), waitReady(t, b)

	serverA := podsOf(t, a, resources.ComponentServer)[0]
	own := fmt.Sprintf("%s.%s.svc", resources.DatabaseName(a), nsA)
	if err := connect(t, serverA, own, resources.DatabasePort); err != nil {
		t.Fatalf("tenant A's server cannot reach its own PostgreSQL %s: %v", own, err)
	}
	t.Logf("tenant A's server reaches its own PostgreSQL at %s:%d", own, resources.DatabasePort)

	dbB := podsOf(t, b, resources.ComponentDatabase)[0]
	serverB := podsOf(t, b, resources.ComponentServer)[0]
	kintoB := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: nsB, Name: resources.ServerName(b)}, kintoB); err != nil {
		t.Fatal(err)
	}
	for _, target := range []struct {
		what string
		host string
		port int
	}{
		{"PostgreSQL Service", fmt.Sprintf("%s.%s.svc", resources.DatabaseName(b), nsB), resources.DatabasePort},
		{"PostgreSQL pod", dbB.Status.PodIP, resources.DatabasePort},
		{"Kinto Service", kintoB.Spec.ClusterIP, resources.ServicePort},
		{"Kinto pod", serverB.Status.PodIP, int(serverB.Spec.Containers[0].Ports[0].ContainerPort)},
	} {
		if err := connect(t, serverA, target.host, target.port); err == nil {
			t.Errorf("tenant A's server opened a connection to tenant B's %s %s:%d", target.what, target.host, target.port)
		} else {
			t.Logf("tenant A's server cannot reach tenant B's %s %s:%d: %v", target.what, target.host, target.port, err)
		}
	}
}

// connect opens a TCP connection from inside pod (its first container, a Kinto image with
// Python) to host:port, and returns why it could not.
func connect(t *testing.T, pod corev1.Pod, host string, port int) error {
	t.Helper()
	script := "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()"
	out, err := exec.Command(kubectl, "exec", "-n", pod.Namespace, pod.Name, "-c", pod.Spec.Containers[0].Name, "--",
		"python3", "-c", script, host, strconv.Itoa(port), fmt.Sprint(connectTimeout.Seconds())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, lastLine(out))
	}
	return nil
}

func lastLine(out []byte) string {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return string(lines[len(lines)-1])
}
