package resources

import (
	"fmt"
	"path"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
)

// ImportConfigFileName is the key, in the instance's ConfigMap, of the ini of the server a
// portable import loads through (kintoconfig.RenderImport).
const ImportConfigFileName = "kinto-import.ini"

// ImportServerContainer is the import pod's own Kinto server, and ImportContainer the step
// loading the export through it, whose termination message is the loader's result.
const (
	ImportServerContainer = "kinto"
	ImportContainer       = "import"
)

// The loader's identity on the import server, which authenticates any user and password with
// basic auth and listens on the pod's loopback only: no secret.
const (
	importUser     = "kinto-operator-import"
	importPassword = "import"
)

// ImportJob loads src, the portable export spec.bootstrap.fromPortable names, into the
// instance's database once `kinto migrate` has made its schema, before the server starts. The
// pod runs its own Kinto server at the schema's release, on the instance's database, with the
// import's ini (no loader principal left on what it writes), as a native sidecar that the
// loader waits for; the export is fetched as a restore's dump is.
func ImportJob(inst *v1alpha1.KintoInstance, version string, src RestoreSource, operatorImage string) *batchv1.Job {
	importIni := path.Join(ConfigDir, ImportConfigFileName)
	pod := kintoPodSpec(inst, version, []string{"kinto", "start", "--ini", importIni})
	pod.RestartPolicy = corev1.RestartPolicyNever
	// The steps reading the export run as the backups that wrote it (files only their owner
	// reads), as a restore's do; Kinto runs as in the server's pods.
	pod.SecurityContext = podSecurityContext(postgresUID)
	server := pod.Containers[0]
	server.SecurityContext.RunAsUser, server.SecurityContext.RunAsGroup = ptr.To[int64](kintoUID), ptr.To[int64](kintoUID)
	server.Name = ImportServerContainer
	server.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	server.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	if len(server.Resources.Limits) == 0 {
		// A Job's steps are bounded, whatever the instance's server asks.
		server.Resources = stepResources("100m", "128Mi", "1Gi")
	}
	for i := range server.Env {
		if server.Env[i].Name == "KINTO_INI" {
			server.Env[i].Value = importIni
		}
	}
	// The server listens on 127.0.0.1, which the kubelet's HTTP probes (to the pod's address)
	// do not reach: the probe runs in the container. __heartbeat__ checks the database too.
	server.StartupProbe = &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"python", "-c",
			fmt.Sprintf("import urllib.request; urllib.request.urlopen('%s/__heartbeat__', timeout=%d)", importServerURL, heartbeatTimeoutSeconds)}}},
		PeriodSeconds:    2,
		TimeoutSeconds:   heartbeatTimeoutSeconds + 5,
		FailureThreshold: 150,
	}
	fetched := fetchSource(inst, &pod, src, operatorImage)
	env := append(fetched.env,
		corev1.EnvVar{Name: backupenv.PortableURL, Value: importServerURL},
		corev1.EnvVar{Name: backupenv.PortableUser, Value: importUser},
		corev1.EnvVar{Name: backupenv.PortablePassword, Value: importPassword})
	readDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir, ReadOnly: true}
	// The loader holds the whole export in memory.
	load := jobStep(ImportContainer, operatorImage, portableImportCommand(), env, []corev1.VolumeMount{readDumps}, stepResources("50m", "64Mi", "1Gi"))
	pod.InitContainers = append(fetched.steps, server)
	pod.Containers = []corev1.Container{load}

	labels := Labels(inst, ComponentImport)
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(inst, ImportJobName(inst), ComponentImport),
		Spec:       jobSpec(labels, pod, restoreBackoffLimit, restoreDeadline),
	}
}

// importServerURL is the import server's API in its pod.
var importServerURL = fmt.Sprintf("http://127.0.0.1:%d/v1", kintoconfig.Port)
