package resources

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

// postgresUID is the postgres user of the official postgres image (Debian variant).
const postgresUID = 999

const (
	pgDataMount = "/var/lib/postgresql/data"
	// PGDATA is a subdirectory of the volume: a volume's root may hold lost+found, which initdb
	// refuses.
	pgData = pgDataMount + "/pgdata"
)

// DatabaseImage is the PostgreSQL image of a managed database.
func DatabaseImage(db *v1alpha1.ManagedDatabase) string {
	if db.Image != "" {
		return db.Image
	}
	return "postgres:" + db.Version
}

// ServingDatabase is the PostgreSQL server that serves the instance: the one its status records
// (status.database), else its first: the spec's major and image, under the names an instance's
// database always had.
func ServingDatabase(inst *v1alpha1.KintoInstance) v1alpha1.DatabaseServerRef {
	if d := inst.Status.Database; d != nil {
		return d.DatabaseServerRef
	}
	db := inst.Spec.ManagedDatabase()
	return v1alpha1.DatabaseServerRef{
		Version:     db.Version,
		Image:       DatabaseImage(db),
		StatefulSet: DatabaseName(inst),
		VolumeClaim: DataVolumeClaimName(inst),
	}
}

// UpgradedDatabase is the server a major upgrade to the spec's version brings up: the spec's
// image, on a volume and StatefulSet of their own whose names carry the major (the old server's
// are kept, beside it, until the upgrade is done).
func UpgradedDatabase(inst *v1alpha1.KintoInstance) v1alpha1.DatabaseServerRef {
	db := inst.Spec.ManagedDatabase()
	return v1alpha1.DatabaseServerRef{
		Version:     db.Version,
		Image:       DatabaseImage(db),
		StatefulSet: childName(inst.Name, "postgres-v"+db.Version, statefulSetMaxNameLength),
		VolumeClaim: childName(inst.Name, "pgdata-v"+db.Version, maxNameLength),
	}
}

// DataVolumeClaim returns the volume of the managed database serving the instance.
func DataVolumeClaim(inst *v1alpha1.KintoInstance) *corev1.PersistentVolumeClaim {
	return DatabaseVolumeClaim(inst, ServingDatabase(inst))
}

// DatabaseVolumeClaim returns the volume of one PostgreSQL server of the instance. The operator
// makes it itself, rather than through the StatefulSet's claim templates, so that it can grow
// it and keep it when the instance is deleted.
func DatabaseVolumeClaim(inst *v1alpha1.KintoInstance, server v1alpha1.DatabaseServerRef) *corev1.PersistentVolumeClaim {
	db := inst.Spec.ManagedDatabase()
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: dataObjectMeta(inst, server.VolumeClaim, ComponentDatabase),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: db.StorageClassName,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: *db.StorageSize},
			},
		},
	}
}

// DatabaseStatefulSet returns the StatefulSet of the server serving the instance
// (DatabaseServerStatefulSet).
func DatabaseStatefulSet(inst *v1alpha1.KintoInstance, credentialsRevision, operatorImage string, rotating bool) *appsv1.StatefulSet {
	return DatabaseServerStatefulSet(inst, ServingDatabase(inst), credentialsRevision, operatorImage, rotating)
}

// DatabaseServerStatefulSet returns the single-pod StatefulSet running one PostgreSQL server of
// the instance.
// Its init container (`manager db init`, installed from operatorImage) prepares the data
// directory and sets the role's password; credentialsRevision restarts the pod when the
// credentials change, so that it sets a new one. With rotating, the password it sets is the one
// waiting in the credentials Secret (SecretKeyDatabasePasswordNext): that template is applied
// once the instance may roll its pods, and PostgreSQL takes the new password before any other
// pod is given it.
func DatabaseServerStatefulSet(inst *v1alpha1.KintoInstance, server v1alpha1.DatabaseServerRef, credentialsRevision, operatorImage string, rotating bool) *appsv1.StatefulSet {
	db := inst.Spec.ManagedDatabase()
	image := server.Image
	passwordKey := SecretKeyDatabasePassword
	if rotating {
		passwordKey = SecretKeyDatabasePasswordNext
	}
	env := []corev1.EnvVar{
		{Name: backupenv.PGData, Value: pgData},
		{Name: "TZ", Value: "UTC"},
	}
	initEnv := append(slices.Clone(env),
		corev1.EnvVar{Name: backupenv.DatabaseRole, Value: DatabaseUser},
		corev1.EnvVar{Name: backupenv.DatabaseName, Value: DatabaseDB},
		secretEnv(backupenv.DatabasePassword, CredentialsSecretName(inst), passwordKey),
	)
	mounts := []corev1.VolumeMount{
		{Name: "data", MountPath: pgDataMount},
		{Name: "run", MountPath: "/var/run/postgresql"},
		{Name: "tmp", MountPath: "/tmp"},
	}
	ready := &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{
			"pg_isready", "--host=127.0.0.1", fmt.Sprintf("--port=%d", DatabasePort),
			"--username=" + DatabaseUser, "--dbname=" + DatabaseDB,
		}}},
		PeriodSeconds:    5,
		TimeoutSeconds:   5,
		FailureThreshold: 3,
	}

	pod := podSpecBase(inst, postgresUID)
	pod.TerminationGracePeriodSeconds = ptr.To[int64](60)
	pod.InitContainers = []corev1.Container{{
		Name:            "init-database",
		Image:           image,
		Command:         initDatabaseCommand(),
		Env:             initEnv,
		VolumeMounts:    append(slices.Clone(mounts), toolsMount),
		Resources:       ptr.Deref(db.Resources, corev1.ResourceRequirements{}),
		SecurityContext: containerSecurityContext(),
	}}
	pod.Containers = []corev1.Container{{
		Name:  "postgres",
		Image: image,
		Command: []string{"postgres", "-D", pgData,
			"-c", "listen_addresses=*",
			"-c", "max_connections=200",
			"-c", "timezone=UTC",
			"-c", "log_timezone=UTC",
		},
		Env:          env,
		Ports:        []corev1.ContainerPort{{Name: "postgresql", ContainerPort: DatabasePort}},
		VolumeMounts: mounts,
		Resources:    ptr.Deref(db.Resources, corev1.ResourceRequirements{}),
		StartupProbe: &corev1.Probe{
			ProbeHandler:     ready.ProbeHandler,
			PeriodSeconds:    2,
			TimeoutSeconds:   5,
			FailureThreshold: 150,
		},
		ReadinessProbe: ready,
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("postgresql")}},
			PeriodSeconds:    10,
			TimeoutSeconds:   5,
			FailureThreshold: 6,
		},
		SecurityContext: containerSecurityContext(),
	}}
	pod.Volumes = []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: server.VolumeClaim}}},
		emptyDirVolume("run"),
		emptyDirVolume("tmp"),
	}
	withDatabaseTools(&pod, operatorImage)

	labels := Labels(inst, ComponentDatabase)
	sts := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: finalBackupObjectMeta(inst, server.StatefulSet, ComponentDatabase),
		Spec: appsv1.StatefulSetSpec{
			Replicas:    databaseReplicas(inst),
			ServiceName: DatabaseHeadlessName(inst),
			Selector:    &metav1.LabelSelector{MatchLabels: SelectorLabels(inst, ComponentDatabase)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: map[string]string{SecretsRevisionAnnotation: credentialsRevision},
				},
				Spec: pod,
			},
		},
	}
	sts.Annotations = map[string]string{TemplateHashAnnotation: TemplateHash(sts.Spec.Template)}
	return sts
}

// DatabasePodHost is the DNS name of the pod of a server of the instance, through the headless
// Service: a major upgrade's copy reaches each server by it.
func DatabasePodHost(inst *v1alpha1.KintoInstance, server v1alpha1.DatabaseServerRef) string {
	return server.StatefulSet + "-0." + DatabaseHeadlessName(inst)
}

// DatabaseStatefulSetKeepingTools is DatabaseStatefulSet, but for the image the database pod
// installs its tools (`manager db`) from: running's, when the template built with it is the one
// running, so that a new operator image alone restarts no database; the pod takes the new
// image's tools with the next change of its template. running is the StatefulSet as it is, or
// nil.
func DatabaseStatefulSetKeepingTools(inst *v1alpha1.KintoInstance, credentialsRevision, operatorImage string, rotating bool, running *appsv1.StatefulSet) *appsv1.StatefulSet {
	want := DatabaseStatefulSet(inst, credentialsRevision, operatorImage, rotating)
	if running == nil {
		return want
	}
	i := slices.IndexFunc(running.Spec.Template.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == stepInstallTools })
	if i < 0 || running.Spec.Template.Spec.InitContainers[i].Image == operatorImage {
		return want
	}
	kept := DatabaseStatefulSet(inst, credentialsRevision, running.Spec.Template.Spec.InitContainers[i].Image, rotating)
	if kept.Annotations[TemplateHashAnnotation] != running.Annotations[TemplateHashAnnotation] {
		return want
	}
	return kept
}

// databaseReplicas is one PostgreSQL server on its volume (PostgreSQL has no shared-storage
// replication), or none while hibernating.
func databaseReplicas(inst *v1alpha1.KintoInstance) *int32 {
	if inst.Spec.Hibernate {
		return ptr.To[int32](0)
	}
	return ptr.To[int32](1)
}

// DatabaseServices returns the client Service Kinto connects to, which selects the pod of the
// serving server only (a major upgrade runs a second one beside it), and the headless Service
// that gives each server's pod its stable DNS name.
func DatabaseServices(inst *v1alpha1.KintoInstance) []*corev1.Service {
	serving := SelectorLabels(inst, ComponentDatabase)
	serving[appsv1.StatefulSetPodNameLabel] = ServingDatabase(inst).StatefulSet + "-0"
	port := []corev1.ServicePort{{Name: "postgresql", Port: DatabasePort, TargetPort: intstr.FromString("postgresql")}}
	client := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: finalBackupObjectMeta(inst, DatabaseName(inst), ComponentDatabase),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: serving,
			Ports:    port,
		},
	}
	headless := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: finalBackupObjectMeta(inst, DatabaseHeadlessName(inst), ComponentDatabase),
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 SelectorLabels(inst, ComponentDatabase),
			Ports:                    port,
		},
	}
	return []*corev1.Service{client, headless}
}
