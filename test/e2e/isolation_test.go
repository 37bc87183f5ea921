//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
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

// metadataAddress is the address clouds serve instance metadata (and credentials) at.
const metadataAddress = "169.254.169.254"

// TestTenantEgressStopsAtTheCluster checks that the egress a tenant chooses (the port of its own
// object storage, allowed to "outside the cluster") reaches neither the pods of other namespaces
// nor the metadata address. On the local cluster the test plays both: a pod of another namespace
// listens on the same port, and a network namespace routed from the node answers at the
// metadata address, so that no packet leaves the machine. A pod without any policy reaches both
// (else a refusal would prove nothing), and the instance's backup pods' policy, which selects
// the probe, still lets it reach the object storage.
func TestTenantEgressStopsAtTheCluster(t *testing.T) {
	t.Parallel()
	if os.Getenv("USE_EXISTING_CLUSTER") == "true" {
		t.Skip("the metadata address is played by a network namespace of the local cluster's node")
	}
	bucket := newS3Bucket(t)
	endpoint, err := objectstore.ParseEndpoint(bucket.endpoint, bucket.insecure)
	if err != nil {
		t.Fatal(err)
	}
	port := objectstore.EndpointPort(endpoint)

	nsTenant, nsOther := newNamespace(t), newNamespace(t)
	inst := applySample(t, nsTenant, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.Backup = &v1alpha1.BackupSpec{
			Schedule: "0 3 1 1 *", // no run during the test: only the policy is wanted
			Destination: &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{
				S3Connection: bucket.connection(t, nsTenant),
				Prefix:       bucket.prefix,
			}},
		}
	})
	image := resources.ServerImage(inst, inst.Spec.Version)
	kintotest.Eventually(t, 2*time.Minute, pollInterval, "the backup pods' NetworkPolicy", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: nsTenant, Name: resources.BackupNetworkPolicyName(inst)}, &networkingv1.NetworkPolicy{})
		return err == nil, fmt.Sprint(err)
	})
	probeLabels := resources.SelectorLabels(inst, resources.ComponentBackup)
	probe := runPod(t, nsTenant, "probe", image, probeLabels, "import time; time.sleep(3600)")
	control := runPod(t, nsOther, "control", image, nil, "import time; time.sleep(3600)")
	bystander := runPod(t, nsOther, "bystander", image, nil, fmt.Sprintf("import http.server; http.server.HTTPServer(('', %d), http.server.BaseHTTPRequestHandler).serve_forever()", port))
	serveMetadata(t, port)

	if err := connect(t, probe, endpoint.Hostname(), port); err != nil {
		t.Fatalf("the probe, selected as a backup pod, cannot reach the instance's object storage %s:%d: %v", endpoint.Hostname(), port, err)
	}
	targets := []struct{ what, host string }{
		{"a pod of another namespace", bystander.Status.PodIP},
		{"the metadata address", metadataAddress},
	}
	for _, target := range targets {
		if err := connect(t, control, target.host, port); err != nil {
			t.Fatalf("a pod without policies cannot reach %s %s:%d, so a refusal would prove nothing: %v", target.what, target.host, port, err)
		}
		if err := connect(t, probe, target.host, port); err == nil {
			t.Errorf("the tenant's backup pod reached %s %s:%d", target.what, target.host, port)
		} else {
			t.Logf("the tenant's backup pod cannot reach %s %s:%d: %v", target.what, target.host, port, err)
		}
	}
}

// runPod starts a pod meeting the restricted profile that runs the Python program script in
// image, and waits until it runs.
func runPod(t *testing.T, ns, name, image string, labels map[string]string, script string) corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](10001),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: name, Image: image, Command: []string{"python3", "-c", script},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if err := k8s.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	kintotest.Eventually(t, 2*time.Minute, pollInterval, "pod "+ns+"/"+name+" running", func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(pod), pod); err != nil {
			return false, err.Error()
		}
		return pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "", string(pod.Status.Phase)
	})
	return *pod
}

// serveMetadata answers HTTP at metadataAddress:port from a network namespace of its own,
// routed from the node (where this test runs) over a veth pair, as a cloud's metadata server is
// reached through the node: pods' packets to it are forwarded, not delivered to the node.
func serveMetadata(t *testing.T, port int) {
	t.Helper()
	const netns, nodeEnd, serverEnd = "kinto-e2e-metadata", "kmeta0", "kmeta1"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", netns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", netns).Run() })
	run("ip", "link", "add", nodeEnd, "type", "veth", "peer", "name", serverEnd, "netns", netns)
	run("ip", "addr", "add", "169.254.169.253/30", "dev", nodeEnd)
	run("ip", "link", "set", nodeEnd, "up")
	run("ip", "netns", "exec", netns, "ip", "addr", "add", metadataAddress+"/30", "dev", serverEnd)
	run("ip", "netns", "exec", netns, "ip", "link", "set", serverEnd, "up")
	run("ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up")
	run("ip", "netns", "exec", netns, "ip", "route", "add", "default", "via", "169.254.169.253")
	server := exec.Command("ip", "netns", "exec", netns, "python3", "-c",
		fmt.Sprintf("import http.server; http.server.HTTPServer(('%s', %d), http.server.BaseHTTPRequestHandler).serve_forever()", metadataAddress, port))
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
}
