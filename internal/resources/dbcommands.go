package resources

import (
	"path"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// The database's init container, the dump and the restore are `manager db init|dump|restore`
// (internal/dbtool), run in the database's image so that they use PostgreSQL's tools of the
// server's major version. The operator's binary gets there as CloudNativePG's manager does: an
// init container of the operator's image copies it into a volume the pod's containers share.
// Their subcommands and volume are named here only; their environment in internal/backup/backupenv.

const (
	// toolsVolume, mounted at toolsDir, carries the operator's binary to the containers of the
	// database's image.
	toolsVolume = "kinto-tools"
	toolsDir    = "/kinto-tools"
	// stepInstallTools is the init container that copies the binary there.
	stepInstallTools = "install-tools"
)

// toolsVolumeLimit bounds the tools volume, which holds one copy of the operator's binary.
var toolsVolumeLimit = resource.MustParse("256Mi")

// toolsBinary is the operator's binary as the containers of the database's image see it.
var toolsBinary = path.Join(toolsDir, path.Base(managerBinary))

func databaseToolCommand(subcommand string) []string {
	return []string{toolsBinary, "db", subcommand}
}

// DumpCommand is the backup container's command.
func DumpCommand() []string { return databaseToolCommand("dump") }

// RestoreCommand is the restore container's command.
func RestoreCommand() []string { return databaseToolCommand("restore") }

// VerifyCommand is the backup verification container's command: it restores a dump into a
// throw-away server and checks what comes back.
func VerifyCommand() []string { return databaseToolCommand("verify") }

// initDatabaseCommand is the database's init container's command.
func initDatabaseCommand() []string { return databaseToolCommand("init") }

// withDatabaseTools makes pod install the operator's binary before its containers run: an init
// container of operatorImage copies it into the tools volume, which databaseContainer mounts.
func withDatabaseTools(pod *corev1.PodSpec, operatorImage string) {
	install := operatorStep(stepInstallTools, operatorImage, []string{managerBinary, "db", "install", toolsBinary}, nil,
		corev1.VolumeMount{Name: toolsVolume, MountPath: toolsDir})
	pod.InitContainers = append([]corev1.Container{install}, pod.InitContainers...)
	v := emptyDirVolume(toolsVolume)
	v.EmptyDir.SizeLimit = ptr.To(toolsVolumeLimit.DeepCopy())
	pod.Volumes = append(pod.Volumes, v)
}

// toolsMount is the tools volume, read-only, in a container of the database's image.
var toolsMount = corev1.VolumeMount{Name: toolsVolume, MountPath: toolsDir, ReadOnly: true}

// pgConnectTimeoutSeconds bounds each connection attempt of the client tools: libpq waits
// forever by default, and a database that does not answer should fail the step, not hold it
// until its deadline.
const pgConnectTimeoutSeconds = 30

// DatabaseClientEnv is the libpq environment of the dump and restore containers: the managed
// database's client Service, the instance's role and database, and its password from the
// credentials Secret; for an external database, its connection URL (spec.database.external's
// Secret, as the server reads it) in PGDATABASE, which `manager db` passes as --dbname: its
// user connects, as the server's does.
func DatabaseClientEnv(inst *v1alpha1.KintoInstance) []corev1.EnvVar {
	if ext := inst.Spec.ExternalDatabase(); ext != nil {
		return []corev1.EnvVar{
			secretEnv("PGDATABASE", ext.URLSecret.Name, ext.URLSecret.Key),
			{Name: "PGCONNECT_TIMEOUT", Value: strconv.Itoa(pgConnectTimeoutSeconds)},
		}
	}
	return []corev1.EnvVar{
		{Name: "PGHOST", Value: DatabaseName(inst)},
		{Name: "PGPORT", Value: strconv.Itoa(DatabasePort)},
		{Name: "PGUSER", Value: DatabaseUser},
		{Name: "PGDATABASE", Value: DatabaseDB},
		{Name: "PGCONNECT_TIMEOUT", Value: strconv.Itoa(pgConnectTimeoutSeconds)},
		secretEnv("PGPASSWORD", CredentialsSecretName(inst), SecretKeyDatabasePassword),
	}
}
