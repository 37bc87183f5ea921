package resources

import (
	"path"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// A backup Job runs its steps one after the other in one pod: the dump (`manager db dump`, in
// the database's image), and its upload for S3: the same for a scheduled and an on-demand backup. The restore
// Job downloads a dump from S3 if need be, then restores it (`manager db restore`). Every step
// runs as the postgres user of the database's image (the operator's binary is world-executable).

// Steps of the Jobs: their containers' names.
const (
	stepDump     = "dump"
	stepExport   = "export"
	stepUpload   = "upload"
	stepDownload = "download"
	stepRestore  = "restore"
	stepDelete   = "delete"
)

const (
	// dumpVolume, mounted at dumpDir, is where the steps find the dumps: the backup volume, or
	// scratch space for a dump on its way to or from S3.
	dumpVolume = "dumps"
	dumpDir    = "/dumps"
	// backupVolume, mounted at backupDir, is the backup volume where a step moves a dump between
	// it and the scratch space at dumpDir: a sealed dump is stored there, and opened from there.
	backupVolume = "backups"
	backupDir    = "/backups"
	// identityVolume projects the restore's private key (spec.bootstrap.fromBackup.decryptionKey)
	// to identityDir/identityFile, for the download step only.
	identityVolume = "decryption-key"
	identityDir    = "/etc/kinto-backup/decryption-key"
	identityFile   = "key.txt"
	// caBundleVolume projects an S3 connection's CA bundle to caBundleDir/caBundleFile.
	caBundleVolume = "s3-ca-bundle"
	caBundleDir    = "/etc/kinto-backup/s3-ca"
	caBundleFile   = "ca.crt"
)

const (
	// backupDeadline stays under the hour after which `manager db dump` takes the temporary
	// file of a run killed outright as abandoned.
	backupDeadline = 50 * time.Minute
	// One retry, for a passing hiccup; a backup failing again is reported, and the next
	// scheduled run, or another KintoBackup, tries anew.
	backupBackoffLimit = 1
	restoreDeadline    = 2 * time.Hour
	// The database may still be starting; a failed restore leaves it empty, so retrying is safe.
	restoreBackoffLimit  = 3
	dumpDeletionDeadline = 10 * time.Minute
	// Object storage may be briefly unreachable; deleting a dump again is harmless.
	dumpDeletionBackoffLimit = 3
)

// backupDestination is where the instance's backups go, nil without spec.backup.
func backupDestination(inst *v1alpha1.KintoInstance) *v1alpha1.BackupDestination {
	if inst.Spec.Backup == nil {
		return nil
	}
	return inst.Spec.Backup.Destination
}

// BackupVolumeClaim is the backup volume of an instance whose backups go to a volume, nil
// otherwise (no spec.backup, or S3). Like the database volume, it outlives the instance unless
// the deletion policy is Delete.
func BackupVolumeClaim(inst *v1alpha1.KintoInstance) *corev1.PersistentVolumeClaim {
	dest := backupDestination(inst)
	if dest == nil || dest.Volume == nil {
		return nil
	}
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: dataObjectMeta(inst, BackupVolumeClaimName(inst), ComponentBackup),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: dest.Volume.StorageClassName,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: dest.Volume.Size},
			},
		},
	}
}

// BackupCronJob takes the scheduled backups: nil without spec.backup or with an external
// database (the operator only backs up managed databases). It is suspended while the instance
// hibernates, its database down.
func BackupCronJob(inst *v1alpha1.KintoInstance, operatorImage string) *batchv1.CronJob {
	dest := backupDestination(inst)
	if dest == nil || inst.Spec.ManagedDatabase() == nil {
		return nil
	}
	labels := Labels(inst, ComponentBackup)
	labels[v1alpha1.ScheduledBackupLabel] = "true"
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: objectMeta(inst, BackupCronJobName(inst), ComponentBackup),
		Spec: batchv1.CronJobSpec{
			Schedule: inst.Spec.Backup.Schedule,
			// The API documents the schedule in UTC, whatever the controller manager's zone.
			TimeZone: ptr.To("UTC"),
			// A run missed by more than an hour is skipped: the next one comes soon enough.
			StartingDeadlineSeconds:    ptr.To[int64](3600),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			Suspend:                    ptr.To(inst.Spec.Hibernate),
			SuccessfulJobsHistoryLimit: ptr.To[int32](3),
			FailedJobsHistoryLimit:     ptr.To[int32](3),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       scheduledJobSpec(labels, backupPod(inst, nil, dest, operatorImage, nil)),
			},
		},
	}
}

// BackupJob is the on-demand backup of a KintoBackup: the steps of a scheduled one. It is named after the KintoBackup, which controls it. Nil, as BackupCronJob, when the
// instance has no spec.backup or an external database. grant, for a shared bucket, is the
// upload's one object; nil, the upload uses the destination's credentials.
func BackupJob(inst *v1alpha1.KintoInstance, backup *v1alpha1.KintoBackup, operatorImage string, grant *ObjectGrant) *batchv1.Job {
	dest := backupDestination(inst)
	if dest == nil || inst.Spec.ManagedDatabase() == nil {
		return nil
	}
	labels := Labels(inst, ComponentBackup)
	labels[BackupNameLabel] = backup.Name
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            backup.Name,
			Namespace:       backup.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{controllerReference("KintoBackup", backup)},
		},
		Spec: jobSpec(labels, backupPod(inst, backup, dest, operatorImage, grant), backupBackoffLimit, backupDeadline),
	}
}

// backupPod takes a backup to dest: the dump (or, for a Portable backup, the export), written
// straight to the backup volume or, for S3, to scratch space the upload reads: both write the
// same files and result, so what follows is the same. Retention is not the Job's: the
// KintoBackup controller applies it to the records, deleting each dropped one's dump with it.
// backup is nil for a scheduled run (always a dump). grant, for a shared bucket, is the one
// object the upload writes.
func backupPod(inst *v1alpha1.KintoInstance, backup *v1alpha1.KintoBackup, dest *v1alpha1.BackupDestination, operatorImage string, grant *ObjectGrant) corev1.PodSpec {
	pod := podSpecBase(inst, postgresUID)
	pod.RestartPolicy = corev1.RestartPolicyNever
	writeDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir}
	portable := backup != nil && backup.Spec.Portable()
	var steps []corev1.Container
	if portable {
		steps = []corev1.Container{operatorStep(stepExport, operatorImage, portableExportCommand(), portableExportEnv(inst, backup.Spec.Credentials), writeDumps)}
	} else {
		env := append(DatabaseClientEnv(inst), corev1.EnvVar{Name: backupenv.DumpDir, Value: dumpDir})
		steps = []corev1.Container{databaseStep(inst, stepDump, DumpCommand(), env, writeDumps)}
	}
	sealing := sealingEnv(inst)
	// The upload reads the dump; sealing it, it writes the sealed copy beside it.
	uploadDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir, ReadOnly: sealing == nil}
	var upload corev1.Container
	switch s3 := dest.S3; {
	case s3 != nil && grant != nil:
		pod.Volumes = []corev1.Volume{scratchVolume(inst)}
		upload = presignedStep(stepUpload, operatorImage, uploadPresignedCommand(dumpDir, grant.Key), grant, uploadDumps)
	case s3 != nil:
		pod.Volumes = append([]corev1.Volume{scratchVolume(inst)}, objectStorageVolumes(&s3.S3Connection)...)
		folder := dumps.NamespaceFolder(s3.Prefix, inst.Namespace)
		upload = objectStorageStep(stepUpload, operatorImage, uploadCommand(dumpDir, inst.Name), &s3.S3Connection, folder, uploadDumps)
	case sealing != nil:
		// Only the sealed dump reaches the backup volume: the dump waits in scratch space.
		pod.Volumes = []corev1.Volume{scratchVolume(inst), claimVolume(backupVolume, BackupVolumeClaimName(inst), false)}
		upload = operatorStep(stepUpload, operatorImage, storeInVolumeCommand(dumpDir, backupDir), nil, uploadDumps,
			corev1.VolumeMount{Name: backupVolume, MountPath: backupDir})
	default:
		pod.Volumes = []corev1.Volume{claimVolume(dumpVolume, BackupVolumeClaimName(inst), false)}
	}
	if upload.Name != "" {
		upload.Env = append(upload.Env, sealing...)
		steps = append(steps, upload)
	}
	runSteps(&pod, steps)
	if !portable {
		withDatabaseTools(&pod, operatorImage)
	}
	return pod
}

// sealingEnv gives the upload the public keys of spec.backup.encryption, nil without it. Public
// keys: a plain value.
func sealingEnv(inst *v1alpha1.KintoInstance) []corev1.EnvVar {
	if inst.Spec.Backup == nil || inst.Spec.Backup.Encryption == nil {
		return nil
	}
	keys := make([]string, len(inst.Spec.Backup.Encryption.Recipients))
	for i, k := range inst.Spec.Backup.Encryption.Recipients {
		keys[i] = string(k)
	}
	return []corev1.EnvVar{{Name: backupenv.Recipients, Value: strings.Join(keys, "\n")}}
}

// BackupResultContainerOf names the container of a backup pod whose termination message is the
// dumps.Result: the upload step where there is one (S3), else the dump or export step (volume).
// It reads the pod as it was made, so it holds whatever the destination became since.
func BackupResultContainerOf(pod corev1.PodSpec) string {
	first := stepDump
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		if c.Name == stepUpload {
			return stepUpload
		}
		if c.Name == stepExport {
			first = stepExport
		}
	}
	return first
}

// RestoreSource is a dump to restore, resolved by the controller from spec.bootstrap.fromBackup.
type RestoreSource struct {
	// VolumeClaimName and File locate a dump on a backup volume of the namespace.
	VolumeClaimName, File string
	// S3 and Key locate a dump in a bucket.
	S3  *v1alpha1.S3Connection
	Key string
	// SHA256 the dump must have; empty: the checksum stored with the dump is checked.
	SHA256 string
	// Grant, for a dump of a shared bucket, lets the download read that dump only, without the
	// bucket's credentials.
	Grant *ObjectGrant
	// Server is a Kinto server a portable import reads live, not a dump.
	Server *v1alpha1.PortableServerSource
	// DecryptionKey is the Secret key of the age private key that opens an encrypted dump; the
	// download step alone mounts it.
	DecryptionKey *v1alpha1.SecretKeyRef
	// Encryption is the record's, when it says the dump is sealed (a dump in S3 is opened if it
	// is, whatever the record; one on a volume is copied out and opened only with this set).
	Encryption *v1alpha1.BackupEncryptionRecord
}

// RestoreJob restores src into the instance's fresh managed database (the API allows
// spec.bootstrap with no other), before `kinto migrate` runs. A dump in S3 is downloaded,
// verified, to scratch space first; one on a volume is read where it is, the volume mounted
// read-only.
func RestoreJob(inst *v1alpha1.KintoInstance, src RestoreSource, operatorImage string) *batchv1.Job {
	pod := podSpecBase(inst, postgresUID)
	pod.RestartPolicy = corev1.RestartPolicyNever
	fetched := fetchSource(inst, &pod, src, operatorImage)
	env := append(DatabaseClientEnv(inst), fetched.env...)
	readDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir, ReadOnly: true}
	runSteps(&pod, append(fetched.steps, databaseStep(inst, stepRestore, RestoreCommand(), env, readDumps)))
	withDatabaseTools(&pod, operatorImage)

	labels := Labels(inst, ComponentRestore)
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(inst, RestoreJobName(inst), ComponentRestore),
		Spec:       jobSpec(labels, pod, restoreBackoffLimit, restoreDeadline),
	}
}

// fetched is how a bootstrap Job's pod reads its source: the steps that fetch it (none when
// it is read where it is), and the environment naming the file (and its checksum) for the step
// that reads it, which mounts dumpVolume at dumpDir.
type fetched struct {
	steps []corev1.Container
	env   []corev1.EnvVar
}

// fetchSource adds to pod the volumes of src and returns the steps that fetch it: a source in
// S3 is downloaded, verified, to scratch space (opened on the way when encrypted); one on a
// volume is read where it is, the volume mounted read-only, or copied out and opened when
// encrypted.
func fetchSource(inst *v1alpha1.KintoInstance, pod *corev1.PodSpec, src RestoreSource, operatorImage string) fetched {
	var steps []corev1.Container
	var file string
	writeDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir}
	// The checksum of the file the reading step reads: the record's, unless the file is
	// opened on the way (the record is then the ciphertext's, which the download checks, and the
	// result file it writes beside the file has the plaintext's).
	checksum := src.SHA256
	switch {
	case src.S3 != nil && src.Grant != nil:
		file = path.Join(dumpDir, path.Base(src.Key))
		pod.Volumes = append(pod.Volumes, scratchVolume(inst))
		steps = append(steps, presignedStep(stepDownload, operatorImage, downloadPresignedCommand(src.Key, file, src.SHA256), src.Grant, writeDumps))
	case src.S3 != nil:
		file = path.Join(dumpDir, path.Base(src.Key))
		pod.Volumes = append(append(pod.Volumes, scratchVolume(inst)), objectStorageVolumes(src.S3)...)
		steps = append(steps, objectStorageStep(stepDownload, operatorImage, downloadCommand(src.Key, file), src.S3, "", writeDumps))
	case src.Encryption != nil && src.DecryptionKey != nil:
		file = path.Join(dumpDir, src.File)
		pod.Volumes = append(pod.Volumes, scratchVolume(inst), claimVolume(backupVolume, src.VolumeClaimName, true))
		steps = append(steps, operatorStep(stepDownload, operatorImage, openFromVolumeCommand(backupDir, src.File, file, src.SHA256), nil,
			writeDumps, corev1.VolumeMount{Name: backupVolume, MountPath: backupDir, ReadOnly: true}))
	default:
		file = path.Join(dumpDir, src.File)
		pod.Volumes = append(pod.Volumes, claimVolume(dumpVolume, src.VolumeClaimName, true))
	}
	if src.DecryptionKey != nil && len(steps) > 0 {
		withDecryptionKey(pod, &steps[0], src.DecryptionKey)
		checksum = ""
	}
	env := []corev1.EnvVar{{Name: backupenv.DumpFile, Value: file}}
	if checksum != "" {
		env = append(env, corev1.EnvVar{Name: backupenv.DumpSHA256, Value: checksum})
	}
	return fetched{steps: steps, env: env}
}

// withDecryptionKey mounts the private key of key into step (the download) alone, and tells it
// where: a file of a Secret volume, never an environment variable, which a crash report or a
// debugging shell prints more readily.
func withDecryptionKey(pod *corev1.PodSpec, step *corev1.Container, key *v1alpha1.SecretKeyRef) {
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: identityVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: key.Name,
		Items:      []corev1.KeyToPath{{Key: key.Key, Path: identityFile}},
		// Readable by the pod's group (fsGroup, the step's user), by no one else.
		DefaultMode: ptr.To[int32](0o440),
	}}})
	step.VolumeMounts = append(step.VolumeMounts, corev1.VolumeMount{Name: identityVolume, MountPath: identityDir, ReadOnly: true})
	step.Env = append(step.Env, corev1.EnvVar{Name: backupenv.IdentityFile, Value: path.Join(identityDir, identityFile)})
}

// DumpDeletionJob deletes the dump of a completed KintoBackup, as its status locates it, when the
// KintoBackup (deletionPolicy Delete) is deleted; nil when the status locates no dump. The
// instance may be gone by then, so nothing of it is used: the pod runs as the namespace's
// default ServiceAccount, without its token, and is labelled with the instance's name only.
// grant, for a dump of a shared bucket, lets it delete that dump only.
func DumpDeletionJob(backup *v1alpha1.KintoBackup, operatorImage string, grant *ObjectGrant) *batchv1.Job {
	status := backup.Status
	pod := detachedPodSpec()
	switch dest := status.Destination; {
	case dest != nil && dest.S3 != nil && status.Key != "" && grant != nil:
		pod.Containers = []corev1.Container{presignedStep(stepDelete, operatorImage, deleteObjectCommand(status.Key), grant)}
	case dest != nil && dest.S3 != nil && status.Key != "":
		pod.Volumes = objectStorageVolumes(&dest.S3.S3Connection)
		pod.Containers = []corev1.Container{objectStorageStep(stepDelete, operatorImage, deleteObjectCommand(status.Key), &dest.S3.S3Connection, "")}
	case dest != nil && dest.Volume != nil && status.VolumeClaimName != "" && status.File != "":
		pod.Volumes = []corev1.Volume{claimVolume(dumpVolume, status.VolumeClaimName, false)}
		writeDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir}
		pod.Containers = []corev1.Container{operatorStep(stepDelete, operatorImage, deleteFileCommand(dumpDir, status.File), nil, writeDumps)}
	default:
		return nil
	}

	return detachedJob(backup, DumpDeletionJobName(backup), ComponentDumpDeletion, pod, dumpDeletionBackoffLimit, dumpDeletionDeadline)
}

// detachedJob is a Job of backup's running pod (a detachedPodSpec), named name: controlled by
// the KintoBackup and labelled with its instance's name only, as the instance may be gone.
func detachedJob(backup *v1alpha1.KintoBackup, name, component string, pod corev1.PodSpec, backoffLimit int32, deadline time.Duration) *batchv1.Job {
	labels := instanceLabels(backup.Spec.Instance, component)
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       backup.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{controllerReference("KintoBackup", backup)},
		},
		Spec: jobSpec(labels, pod, backoffLimit, deadline),
	}
}

// detachedPodSpec is the base of a pod working on a KintoBackup's dump, which may outlive its
// instance: it runs as the namespace's default ServiceAccount, without its token.
func detachedPodSpec() corev1.PodSpec {
	return corev1.PodSpec{
		ServiceAccountName:           "default",
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext:              podSecurityContext(postgresUID),
		RestartPolicy:                corev1.RestartPolicyNever,
	}
}

// runSteps runs steps in order in pod: the last is its container, the others its init
// containers, each run once the one before succeeded.
func runSteps(pod *corev1.PodSpec, steps []corev1.Container) {
	last := len(steps) - 1
	if last > 0 {
		pod.InitContainers = slices.Clip(steps[:last])
	}
	pod.Containers = steps[last:]
}

// databaseStep is a step running `manager db` with the client tools of the managed database's
// image (the pod installs the binary: withDatabaseTools).
func databaseStep(inst *v1alpha1.KintoInstance, name string, command []string, env []corev1.EnvVar, mounts ...corev1.VolumeMount) corev1.Container {
	if inst.Spec.ExternalDatabase() != nil {
		return serverStep(v1alpha1.DatabaseServerRef{Image: ExternalDatabaseToolsImage}, name, command, env, mounts...)
	}
	return serverStep(ServingDatabase(inst), name, command, env, mounts...)
}

// ExternalDatabaseToolsImage holds the client tools (pg_dump, pg_restore, psql) that dump and
// restore an external database, whose major the operator does not know: those of the newest
// major the operator's managed databases are tested on, which read every older server. A
// newer server is refused by pg_dump, and the upgrade stops before its migration.
const ExternalDatabaseToolsImage = "postgres:17"

// serverStep is a step running `manager db` with the client tools of one server's image.
func serverStep(server v1alpha1.DatabaseServerRef, name string, command []string, env []corev1.EnvVar, mounts ...corev1.VolumeMount) corev1.Container {
	mounts = append(mounts, toolsMount)
	return jobStep(name, server.Image, command, env, mounts, stepResources("50m", "64Mi", "512Mi"))
}

// operatorStep is a step running the operator's binary.
func operatorStep(name, operatorImage string, command []string, env []corev1.EnvVar, mounts ...corev1.VolumeMount) corev1.Container {
	return jobStep(name, operatorImage, command, env, mounts, stepResources("10m", "32Mi", "256Mi"))
}

// scratchVolume holds a dump on its way to or from object storage. It is bounded by the size of
// the database volume, which a dump (compressed, without the cache's rows) does not outgrow: a
// runaway step is evicted rather than filling the node's disk.
func scratchVolume(inst *v1alpha1.KintoInstance) corev1.Volume {
	v := emptyDirVolume(dumpVolume)
	if db := inst.Spec.ManagedDatabase(); db != nil && db.StorageSize != nil {
		v.EmptyDir.SizeLimit = ptr.To(db.StorageSize.DeepCopy())
	}
	return v
}

// objectStorageStep is an operator step reaching the bucket of conn, prefix being the folder
// of an instance's backups ("" where the step is given a full key).
func objectStorageStep(name, operatorImage string, command []string, conn *v1alpha1.S3Connection, prefix string, mounts ...corev1.VolumeMount) corev1.Container {
	if conn.CABundle != nil {
		mounts = append(mounts, corev1.VolumeMount{Name: caBundleVolume, MountPath: caBundleDir, ReadOnly: true})
	}
	return operatorStep(name, operatorImage, command, objectStorageEnv(conn, prefix), mounts...)
}

// objectStorageVolumes are the volumes objectStorageStep mounts for conn: its CA bundle's.
func objectStorageVolumes(conn *v1alpha1.S3Connection) []corev1.Volume {
	if conn.CABundle == nil {
		return nil
	}
	return []corev1.Volume{{Name: caBundleVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: conn.CABundle.Name,
		Items:      []corev1.KeyToPath{{Key: conn.CABundle.Key, Path: caBundleFile}},
	}}}}
}

// jobStep is a container of a Job. A failed step's last lines of output become its termination
// message, which the operator copies into status.
func jobStep(name, image string, command []string, env []corev1.EnvVar, mounts []corev1.VolumeMount, resources corev1.ResourceRequirements) corev1.Container {
	return corev1.Container{
		Name:                     name,
		Image:                    image,
		Command:                  command,
		Env:                      env,
		VolumeMounts:             mounts,
		Resources:                resources,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          containerSecurityContext(),
	}
}

func stepResources(cpu, memory, memoryLimit string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpu),
			corev1.ResourceMemory: resource.MustParse(memory),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memoryLimit)},
	}
}

func claimVolume(name, claim string, readOnly bool) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: readOnly},
	}}
}

// scheduledJobSpec is the spec of a scheduled run's Job: created suspended, it starts when the
// KintoBackup controller resumes it, at its turn in the instance's queue, so that it never runs
// beside an on-demand backup.
func scheduledJobSpec(labels map[string]string, pod corev1.PodSpec) batchv1.JobSpec {
	spec := jobSpec(labels, pod, backupBackoffLimit, backupDeadline)
	spec.Suspend = ptr.To(true)
	return spec
}
