package resources

import (
	"fmt"
	"path"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
)

// kintoUID is the user of the official kinto/kinto-server image.
const kintoUID = 10001

// ServicePort is the port of the Kinto server's Service.
const ServicePort = 80

// heartbeatTimeoutSeconds bounds each backend check of /v1/__heartbeat__ (Kinto's
// heartbeat_timeout_seconds default); the readiness probe must wait longer than that.
const heartbeatTimeoutSeconds = 10

// ServerImage is the Kinto image running the given release.
func ServerImage(inst *v1alpha1.KintoInstance, version string) string {
	if inst.Spec.Image != "" {
		return inst.Spec.Image
	}
	return "kinto/kinto-server:" + version
}

// ReleaseServerImage is the image the instance runs release in: its release catalogue's
// (images, by release), else ServerImage's.
func ReleaseServerImage(inst *v1alpha1.KintoInstance, images map[string]string, release string) string {
	return ServerImage(withReleaseImage(inst, images, release), release)
}

// ServerCommand starts the server without migrating: the official image's default command
// migrates on every start, from every replica at once, which Kinto's migrator does not survive.
// The listening address is the ini's [server:main]; `kinto start --port` would not change it.
func ServerCommand() []string {
	return []string{"kinto", "start", "--ini", path.Join(ConfigDir, ConfigFileName)}
}

// MigrateCommand creates or upgrades the storage, permission and cache schemas.
func MigrateCommand() []string {
	return []string{"kinto", "migrate", "--ini", path.Join(ConfigDir, ConfigFileName)}
}

// ServerEnv is the environment of every Kinto process of the instance: the configuration path and
// the secrets the ini leaves empty, each from its Secret.
func ServerEnv(inst *v1alpha1.KintoInstance) []corev1.EnvVar {
	creds := CredentialsSecretName(inst)
	urlSecret, urlKey := creds, SecretKeyDatabaseURL
	if ext := inst.Spec.ExternalDatabase(); ext != nil {
		urlSecret, urlKey = ext.URLSecret.Name, ext.URLSecret.Key
	}
	env := []corev1.EnvVar{
		{Name: "KINTO_INI", Value: path.Join(ConfigDir, ConfigFileName)},
		secretEnv(kintoconfig.EnvStorageURL, urlSecret, urlKey),
		secretEnv(kintoconfig.EnvPermissionURL, urlSecret, urlKey),
		secretEnv(kintoconfig.EnvCacheURL, urlSecret, urlKey),
		secretEnv(kintoconfig.EnvUserIDHMACSecret, creds, SecretKeyUserIDHMACSecret),
		secretEnv(kintoconfig.EnvDefaultBucketHMACSecret, creds, SecretKeyDefaultBucketHMACSecret),
	}
	for _, p := range inst.Spec.OpenIDConnectProviders() {
		env = append(env, secretEnv(kintoconfig.OpenIDClientSecretEnv(p.Name), p.ClientSecret.Name, p.ClientSecret.Key))
	}
	return env
}

// kintoPodSpec is the pod of every Kinto process (server and migration) at a release: the
// rendered configuration mounted read-only, secrets from the environment, a writable /tmp.
func kintoPodSpec(inst *v1alpha1.KintoInstance, version string, command []string) corev1.PodSpec {
	pod := podSpecBase(inst, kintoUID)
	pod.Containers = []corev1.Container{{
		Name:            "kinto",
		Image:           ServerImage(inst, version),
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         command,
		Env:             ServerEnv(inst),
		Resources:       ptr.Deref(inst.Spec.Resources, corev1.ResourceRequirements{}),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: ConfigDir, ReadOnly: true},
			{Name: "tmp", MountPath: "/tmp"},
		},
		SecurityContext: containerSecurityContext(),
	}}
	pod.Volumes = []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(inst)},
		}}},
		emptyDirVolume("tmp"),
	}
	return pod
}

// serverDrainSeconds is how long a server pod told to stop still serves: the time for its
// Service's endpoints, and the ingress controller, to see it go.
const serverDrainSeconds = 5

// ServerDeployment returns the Deployment of the Kinto server at the given release (the one the
// schema is migrated to, which may lag behind spec.version during an upgrade). configHash and
// secretsRevision roll the pods when the rendered configuration, or a Secret they read, changes.
func ServerDeployment(inst *v1alpha1.KintoInstance, version, configHash, secretsRevision string) *appsv1.Deployment {
	pod := kintoPodSpec(inst, version, ServerCommand())
	c := &pod.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: kintoconfig.Port}}
	c.StartupProbe = &corev1.Probe{
		ProbeHandler:     httpGet("/v1/__lbheartbeat__"),
		PeriodSeconds:    2,
		TimeoutSeconds:   5,
		FailureThreshold: 60,
	}
	// __lbheartbeat__ checks nothing: a slow database must not get the server restarted.
	c.LivenessProbe = &corev1.Probe{
		ProbeHandler:     httpGet("/v1/__lbheartbeat__"),
		PeriodSeconds:    10,
		TimeoutSeconds:   5,
		FailureThreshold: 6,
	}
	// __heartbeat__ checks (and writes to) the backends, each for up to heartbeatTimeoutSeconds.
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:     httpGet("/v1/__heartbeat__"),
		PeriodSeconds:    10,
		TimeoutSeconds:   heartbeatTimeoutSeconds + 5,
		FailureThreshold: 3,
	}
	// Kinto, were it its container's first process, would never see SIGTERM (the kernel drops
	// the signals a first process has no handler for), and each pod would take its whole grace
	// period to go: 30 s more on every rollout, and on every safe upgrade's closed writes. The
	// pod's pause process comes first instead. The pod is out of its Service's endpoints before
	// Kinto stops, so no request arrives to find it gone.
	pod.ShareProcessNamespace = ptr.To(true)
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: serverDrainSeconds}}}
	pod.TerminationGracePeriodSeconds = ptr.To[int64](30)

	labels := Labels(inst, ComponentServer)
	labels[VersionLabel] = version
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(inst, ServerName(inst), ComponentServer),
		Spec: appsv1.DeploymentSpec{
			Replicas: ServerReplicas(inst),
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(inst, ComponentServer)},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				// Keep every serving pod until its replacement is ready.
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: labels,
					Annotations: map[string]string{
						ConfigHashAnnotation:      configHash,
						SecretsRevisionAnnotation: secretsRevision,
					},
				},
				Spec: pod,
			},
		},
	}
	d.Annotations = map[string]string{TemplateHashAnnotation: TemplateHash(d.Spec.Template)}
	return d
}

// ServerReplicas is the number of server pods: spec.replicas, or none while hibernating.
func ServerReplicas(inst *v1alpha1.KintoInstance) *int32 {
	if inst.Spec.Hibernate {
		return ptr.To[int32](0)
	}
	return inst.Spec.Replicas
}

func httpGet(path string) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}}
}

// ServerService returns the Service in front of the Kinto server pods.
func ServerService(inst *v1alpha1.KintoInstance) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(inst, ServerName(inst), ComponentServer),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(inst, ComponentServer),
			Ports: []corev1.ServicePort{{
				Name: "http", Port: ServicePort, TargetPort: intstr.FromString("http"),
			}},
		},
	}
}

// URL is where clients reach the instance's API: its public host when it has an Ingress or a
// Gateway, its Service inside the cluster otherwise.
func URL(inst *v1alpha1.KintoInstance) string {
	if scheme, host := inst.Spec.PublicEndpoint(); host != "" {
		return fmt.Sprintf("%s://%s/v1/", scheme, host)
	}
	return fmt.Sprintf("http://%s.%s.svc/v1/", ServerName(inst), inst.Namespace)
}

// EnvReadOnly is Kinto's readonly setting as the environment sets it (Kinto reads it as JSON).
// It is set on the server only, never in kinto.ini: `kinto migrate` skips its work on a
// read-only configuration, and the upgrade's migration must run.
const EnvReadOnly = "KINTO_READONLY"

// CloseWrites puts the server of d in Kinto's read-only mode, which refuses every write with
// Kinto's own error and serves reads: the upgrade's backup then holds everything written. The
// template changes, so the pods roll.
func CloseWrites(d *appsv1.Deployment) {
	c := &d.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: EnvReadOnly, Value: "true"})
	d.Annotations[TemplateHashAnnotation] = TemplateHash(d.Spec.Template)
}

// WritesClosed says whether the pod template of d runs Kinto read-only (CloseWrites).
func WritesClosed(template *corev1.PodTemplateSpec) bool {
	for _, c := range template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == EnvReadOnly && e.Value == "true" {
				return true
			}
		}
	}
	return false
}
