package resources

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// postgresUID is the postgres user of the official postgres image (Debian variant).
const postgresUID = 999

const (
	pgDataMount = "/var/lib/postgresql/data"
	// PGDATA is a subdirectory of the volume: a volume's root may hold lost+found, which initdb
	// refuses.
	pgData = pgDataMount + "/pgdata"
)

// initDatabaseScript prepares the data directory before PostgreSQL starts, without relying on
// the image's entrypoint: initdb on an empty volume, then the instance's role and database
// created in single-user mode. On every start it sets the role's password from the credentials
// Secret, so a password changed there reaches the database. Single-user mode reports a failed
// statement only in its output, so the script looks for it there; it never prints that output,
// which may quote the password.
const initDatabaseScript = `set -eu
sql() {
  out=$(postgres --single -D "$PGDATA" -j postgres 2>&1) || { echo "$1 failed: postgres exited $?" >&2; exit 1; }
  case "$out" in *ERROR:*) echo "$1 failed: PostgreSQL reported an error (output withheld: it may quote the password)" >&2; exit 1;; esac
}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --no-locale --auth-local=peer --auth-host=scram-sha-256
  echo "host ${KINTO_DATABASE} ${KINTO_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  printf 'CREATE ROLE "%s" LOGIN;\n\n' "$KINTO_USER" | sql "creating the role"
  printf 'CREATE DATABASE "%s" OWNER "%s" ENCODING %s TEMPLATE template0;\n\n' "$KINTO_DATABASE" "$KINTO_USER" "'UTF8'" | sql "creating the database"
fi
# A quote in the password is doubled, so it stays inside the SQL string.
password=$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")
printf "ALTER ROLE \"%s\" WITH LOGIN PASSWORD '%s';\n\n" "$KINTO_USER" "$password" | sql "setting the password"
`

// DatabaseImage is the PostgreSQL image of a managed database.
func DatabaseImage(db *v1alpha1.ManagedDatabase) string {
	if db.Image != "" {
		return db.Image
	}
	return "postgres:" + db.Version
}

// DataVolumeClaim returns the volume of a managed database. The operator makes it itself,
// rather than through the StatefulSet's claim templates, so that it can grow it and keep it
// when the instance is deleted.
func DataVolumeClaim(inst *v1alpha1.KintoInstance) *corev1.PersistentVolumeClaim {
	db := inst.Spec.ManagedDatabase()
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: dataObjectMeta(inst, DataVolumeClaimName(inst), ComponentDatabase),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: db.StorageClassName,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: *db.StorageSize},
			},
		},
	}
}

// DatabaseStatefulSet returns the single-pod StatefulSet running the managed PostgreSQL server.
// credentialsRevision restarts it when the credentials change, so that its init container sets
// a new password.
func DatabaseStatefulSet(inst *v1alpha1.KintoInstance, credentialsRevision string) *appsv1.StatefulSet {
	db := inst.Spec.ManagedDatabase()
	image := DatabaseImage(db)
	env := []corev1.EnvVar{
		{Name: "PGDATA", Value: pgData},
		{Name: "TZ", Value: "UTC"},
		{Name: "KINTO_USER", Value: DatabaseUser},
		{Name: "KINTO_DATABASE", Value: DatabaseDB},
		secretEnv("POSTGRES_PASSWORD", CredentialsSecretName(inst), SecretKeyDatabasePassword),
	}
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
		Command:         []string{"sh", "-c", initDatabaseScript},
		Env:             env,
		VolumeMounts:    mounts,
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
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: DataVolumeClaimName(inst)}}},
		emptyDirVolume("run"),
		emptyDirVolume("tmp"),
	}

	labels := Labels(inst, ComponentDatabase)
	sts := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: objectMeta(inst, DatabaseName(inst), ComponentDatabase),
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

// databaseReplicas is one PostgreSQL server on its volume (PostgreSQL has no shared-storage
// replication), or none while hibernating.
func databaseReplicas(inst *v1alpha1.KintoInstance) *int32 {
	if inst.Spec.Hibernate {
		return ptr.To[int32](0)
	}
	return ptr.To[int32](1)
}

// DatabaseServices returns the client Service Kinto connects to and the headless Service that
// gives the StatefulSet's pod its stable DNS name.
func DatabaseServices(inst *v1alpha1.KintoInstance) []*corev1.Service {
	port := []corev1.ServicePort{{Name: "postgresql", Port: DatabasePort, TargetPort: intstr.FromString("postgresql")}}
	client := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(inst, DatabaseName(inst), ComponentDatabase),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(inst, ComponentDatabase),
			Ports:    port,
		},
	}
	headless := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(inst, DatabaseHeadlessName(inst), ComponentDatabase),
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 SelectorLabels(inst, ComponentDatabase),
			Ports:                    port,
		},
	}
	return []*corev1.Service{client, headless}
}
