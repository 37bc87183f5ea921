package resources

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
)

// privateServerRoot is the address of a Kinto server private to a Job's pod, in that pod, and
// privateServerURL its API.
var (
	privateServerRoot = fmt.Sprintf("http://127.0.0.1:%d", kintoconfig.Port)
	privateServerURL  = privateServerRoot + "/v1"
)

// privateServerPod is the pod of a Job whose steps read or write the instance's data through a
// Kinto server of their own: the instance's server, in image at release version, on its
// database, with ini (a file of the instance's ConfigMap that listens on 127.0.0.1 only, which
// nothing outside the pod reaches), as a native sidecar (its first init container) that the
// steps wait for. The steps go in after it.
func privateServerPod(inst *v1alpha1.KintoInstance, version, image, ini string) corev1.PodSpec {
	iniPath := path.Join(ConfigDir, ini)
	pod := kintoPodSpec(inst, version, []string{"kinto", "start", "--ini", iniPath})
	pod.RestartPolicy = corev1.RestartPolicyNever
	server := pod.Containers[0]
	if image != "" {
		server.Image = image
	}
	server.SecurityContext.RunAsUser, server.SecurityContext.RunAsGroup = ptr.To[int64](kintoUID), ptr.To[int64](kintoUID)
	server.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	server.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	if len(server.Resources.Limits) == 0 {
		// A Job's steps are bounded, whatever the instance's server asks.
		server.Resources = stepResources("100m", "128Mi", "1Gi")
	}
	for i := range server.Env {
		if server.Env[i].Name == "KINTO_INI" {
			server.Env[i].Value = iniPath
		}
	}
	// The server listens on 127.0.0.1, which the kubelet's HTTP probes (to the pod's address)
	// do not reach: the probe runs in the container. __heartbeat__ checks the database too.
	server.StartupProbe = &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"python", "-c",
			fmt.Sprintf("import urllib.request; urllib.request.urlopen('%s/__heartbeat__', timeout=%d)", privateServerURL, heartbeatTimeoutSeconds)}}},
		PeriodSeconds:    2,
		TimeoutSeconds:   heartbeatTimeoutSeconds + 5,
		FailureThreshold: 150,
	}
	// Kinto runs as its container's first process, which ignores SIGTERM: once the steps are
	// done, it would hold the Job's end for the pod's whole grace period (30 s by default).
	// Nothing is in flight then, nor anything to keep when the pod is deleted: the steps' own
	// work is retried whole.
	pod.TerminationGracePeriodSeconds = ptr.To[int64](1)
	pod.InitContainers = []corev1.Container{server}
	pod.Containers = nil
	return pod
}
