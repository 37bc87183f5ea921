package resources

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

// ComponentHealthGate labels the pods that read the server during an upgrade (`manager upgrade
// sample|gate`), and its data through a reader server of their own, on the database.
const ComponentHealthGate = "health-gate"

// ReaderConfigFileName is the key, in the instance's ConfigMap, of the ini of the reader server
// of the health gate's pods (kintoconfig.RenderReader).
const ReaderConfigFileName = "kinto-reader.ini"

// ReaderServerContainer is the health gate pods' own Kinto server.
const ReaderServerContainer = "kinto"

// The gate's identity on its reader server, which authenticates any user and password with
// basic auth and listens on the pod's loopback only: no secret.
const (
	readerUser     = "kinto-operator-gate"
	readerPassword = "gate"
)

// UpgradeLabel carries, on the objects of one upgrade, the time it started (upgradeStamp).
const UpgradeLabel = "hosting.kinto-storage.org/upgrade"

// upgradeStamp names the objects of the upgrade that started at t, which a later upgrade of
// the same release (after a rollback and a new image) does not reuse.
func upgradeStamp(t metav1.Time) string { return t.UTC().Format("20060102t150405") }

// UpgradeBackupName, UpgradeSampleJobName, HealthGateJobName and RollbackJobName name the
// objects of the upgrade u.
func UpgradeBackupName(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) string {
	return childName(inst.Name, "upgrade-"+upgradeStamp(u.StartedAt), maxNameLength)
}

func UpgradeSampleJobName(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) string {
	return childName(inst.Name, "sample-"+upgradeStamp(u.StartedAt), maxNameLength)
}

func HealthGateJobName(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) string {
	return childName(inst.Name, "gate-"+upgradeStamp(u.StartedAt), maxNameLength)
}

func RollbackJobName(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) string {
	return childName(inst.Name, "rollback-"+upgradeStamp(u.StartedAt), maxNameLength)
}

func SafetyDumpJobName(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) string {
	return childName(inst.Name, "safety-dump-"+upgradeStamp(u.StartedAt), maxNameLength)
}

// SafetyDumpClaimName names the upgrades' scratch volume, which holds a safety dump while an
// upgrade runs.
func SafetyDumpClaimName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "upgrade-dump", maxNameLength)
}

// upgradeJobTTL is how long a finished Job of an upgrade stays: the reconciler deletes those
// that succeeded once the upgrade has ended; a failed one stays that long for its logs to be
// read (the failure is quoted in status.upgrade and the Upgraded condition meanwhile).
const upgradeJobTTL = 7 * 24 * time.Hour

// withUpgradeTTL gives job, one of the upgrade u's, its time to live and u's label.
func withUpgradeTTL(job *batchv1.Job, u *v1alpha1.UpgradeStatus) *batchv1.Job {
	job.Labels[UpgradeLabel] = upgradeStamp(u.StartedAt)
	job.Spec.TTLSecondsAfterFinished = ptr.To(int32(upgradeJobTTL / time.Second))
	return job
}

// ExternalSafetyDumpSize is the size of the scratch volume of an instance on an external
// database, whose size the operator does not know (a managed one's is its volume's): a dump
// (compressed, without the cache's rows) that outgrows it fails the safety dump, and the upgrade
// stops before its migration, with writes open again.
const ExternalSafetyDumpSize = "10Gi"

// SafetyDumpClaim is the upgrades' scratch volume, as large as the database's (ExternalSafetyDumpSize
// for an external one, on the cluster's default storage class): the upgrade of an instance whose
// backups cannot serve a rollback dumps its database there. It belongs to the
// instance (a scratch copy, not a backup: it goes with the instance, whatever its deletion
// policy), and the reconciler deletes it once the upgrade has ended.
func SafetyDumpClaim(inst *v1alpha1.KintoInstance) *corev1.PersistentVolumeClaim {
	db := inst.Spec.ManagedDatabase()
	if db == nil {
		db = &v1alpha1.ManagedDatabase{StorageSize: ptr.To(resource.MustParse(ExternalSafetyDumpSize))}
	}
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: objectMeta(inst, SafetyDumpClaimName(inst), ComponentBackup),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: db.StorageClassName,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: *db.StorageSize},
			},
		},
	}
}

// SafetyDumpJob dumps the database, writes closed, to the scratch volume (SafetyDumpClaim), in
// the clear and nowhere else: the dump step of a backup to a volume, with no upload, no sealing
// and no record. Its result (dumps.Result) is the dump step's termination message. Labelled as a
// backup Job, it queues with the instance's backups and reaches the database as they do.
func SafetyDumpJob(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus, operatorImage string) *batchv1.Job {
	pod := podSpecBase(inst, postgresUID)
	pod.RestartPolicy = corev1.RestartPolicyNever
	pod.Volumes = []corev1.Volume{claimVolume(dumpVolume, SafetyDumpClaimName(inst), false)}
	env := append(DatabaseClientEnv(inst), corev1.EnvVar{Name: backupenv.DumpDir, Value: dumpDir})
	runSteps(&pod, []corev1.Container{databaseStep(inst, stepDump, DumpCommand(), env, corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir})})
	withDatabaseTools(&pod, operatorImage)
	labels := Labels(inst, ComponentBackup)
	return withUpgradeTTL(&batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(inst, SafetyDumpJobName(inst, u), ComponentBackup),
		Spec:       jobSpec(labels, pod, backupBackoffLimit, backupDeadline),
	}, u)
}

// SafetyDumpResultContainer is the container of SafetyDumpJob whose termination message is the
// dump's result.
const SafetyDumpResultContainer = stepDump

// SafetyDumpSource is the safety dump file of the scratch volume, to restore.
func SafetyDumpSource(inst *v1alpha1.KintoInstance, file string) RestoreSource {
	return RestoreSource{VolumeClaimName: SafetyDumpClaimName(inst), File: file}
}

// UpgradeBackup is the KintoBackup an upgrade takes once writes are closed: the instance's
// backup machinery takes it to spec.backup's destination, and a rollback restores it. It is kept
// (Retain): it is the state before the upgrade.
func UpgradeBackup(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) *v1alpha1.KintoBackup {
	labels := Labels(inst, ComponentBackup)
	labels[UpgradeLabel] = upgradeStamp(u.StartedAt)
	return &v1alpha1.KintoBackup{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "KintoBackup"},
		ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: UpgradeBackupName(inst, u), Labels: labels},
		Spec:       v1alpha1.KintoBackupSpec{Instance: inst.Name, DeletionPolicy: v1alpha1.BackupDeletionPolicyRetain},
	}
}

// UpgradeSampleJob records, with the server's writes closed, the baseline the health gate
// compares the new release with (`manager upgrade sample`, whose result is its termination
// message): what the release upgraded from, in image (the server's), reads.
func UpgradeSampleJob(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus, image, operatorImage string) *batchv1.Job {
	return healthGateJob(inst, u, UpgradeSampleJobName(inst, u), u.From, image, operatorImage, []string{managerBinary, "upgrade", "sample"}, nil, 10*time.Minute)
}

// HealthGateJob watches the new release for spec.upgrade.healthGateSeconds (`manager upgrade
// gate`): it fails at the first look that finds the server's heartbeat failing, another
// version at its root URL, or an object of the baseline answering otherwise when the new
// release (u.Image) reads it.
func HealthGateJob(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus, operatorImage string) (*batchv1.Job, error) {
	baseline, err := json.Marshal(u.Baseline)
	if err != nil {
		return nil, err
	}
	seconds := HealthGateSeconds(inst)
	env := []corev1.EnvVar{
		{Name: upgrade.EnvVersion, Value: u.To},
		{Name: upgrade.EnvGateSeconds, Value: strconv.Itoa(int(seconds))},
		{Name: upgrade.EnvBaseline, Value: string(baseline)},
	}
	deadline := time.Duration(seconds)*time.Second + 5*time.Minute
	return healthGateJob(inst, u, HealthGateJobName(inst, u), u.To, u.Image, operatorImage, []string{managerBinary, "upgrade", "gate"}, env, deadline), nil
}

// HealthGateSeconds is spec.upgrade.healthGateSeconds, defaulted.
func HealthGateSeconds(inst *v1alpha1.KintoInstance) int32 {
	if u := inst.Spec.Upgrade; u != nil && u.HealthGateSeconds > 0 {
		return u.HealthGateSeconds
	}
	return v1alpha1.DefaultHealthGateSeconds
}

// ReadyTimeout is spec.upgrade.readyTimeoutSeconds, defaulted.
func ReadyTimeout(inst *v1alpha1.KintoInstance) time.Duration {
	if u := inst.Spec.Upgrade; u != nil && u.ReadyTimeoutSeconds > 0 {
		return time.Duration(u.ReadyTimeoutSeconds) * time.Second
	}
	return v1alpha1.DefaultReadyTimeoutSeconds * time.Second
}

// healthGateJob runs `manager upgrade` against the server's Service, anonymously, and against
// a reader server of its pod, the instance's at release version in image, which lets it read
// every object (its ini, kintoconfig.RenderReader: read-only, on 127.0.0.1): the data as their
// owners read them, which the Service serves to none of its clients. One try: a failed look is
// the gate's answer. The step itself holds no credentials; the reader server gets the
// database's, as the instance's server does.
func healthGateJob(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus, name, version, image, operatorImage string, command []string, env []corev1.EnvVar, deadline time.Duration) *batchv1.Job {
	pod := privateServerPod(inst, version, image, ReaderConfigFileName)
	pod.InitContainers[0].Name = ReaderServerContainer
	env = append([]corev1.EnvVar{
		{Name: upgrade.EnvServerURL, Value: fmt.Sprintf("http://%s.%s.svc:%d", ServerName(inst), inst.Namespace, ServicePort)},
		{Name: upgrade.EnvReaderURL, Value: privateServerRoot},
		{Name: upgrade.EnvReaderUser, Value: readerUser},
		{Name: upgrade.EnvReaderPassword, Value: readerPassword},
	}, env...)
	pod.Containers = []corev1.Container{operatorStep("upgrade", operatorImage, command, env)}
	pod.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageReadFile
	labels := Labels(inst, ComponentHealthGate)
	labels[UpgradeLabel] = upgradeStamp(u.StartedAt)
	return withUpgradeTTL(&batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(inst, name, ComponentHealthGate),
		Spec:       jobSpec(labels, pod, 0, deadline),
	}, u)
}

// RollbackJob restores the upgrade's backup over the database the failed upgrade left: the
// restore Job's steps (RestoreJob), told to replace what the database holds
// (backupenv.RestoreReplace).
func RollbackJob(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus, src RestoreSource, operatorImage string) *batchv1.Job {
	job := RestoreJob(inst, src, operatorImage)
	job.Name = RollbackJobName(inst, u)
	c := &job.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: backupenv.RestoreReplace, Value: "true"})
	return withUpgradeTTL(job, u)
}
