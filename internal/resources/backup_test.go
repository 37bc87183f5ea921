package resources

import (
	"maps"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

// podSteps lists a pod's containers in the order they run, as "name image".
func podSteps(pod corev1.PodSpec) []string {
	var out []string
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		out = append(out, c.Name+" "+c.Image)
	}
	return out
}

// podContainer is the init container or container of pod named name, or nil.
func podContainer(pod corev1.PodSpec, name string) *corev1.Container {
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		if c.Name == name {
			return &c
		}
	}
	return nil
}

func podVolume(pod corev1.PodSpec, name string) *corev1.Volume {
	for _, v := range pod.Volumes {
		if v.Name == name {
			return &v
		}
	}
	return nil
}

// envValue is the literal value of the variable name in c's environment, and whether it is set.
func envValue(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// checkJobSteps checks what every step of a backup, restore or dump deletion Job shares: a
// failure's output reaches the pod status, the restricted container profile, bounded resources,
// and object-storage credentials only from Secrets.
func checkJobSteps(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restart policy %q", pod.RestartPolicy)
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
			t.Errorf("%s: termination message policy %q", c.Name, c.TerminationMessagePolicy)
		}
		if c.SecurityContext == nil || !ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false) {
			t.Errorf("%s: no restricted security context", c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: resources %v", c.Name, c.Resources)
		}
		for _, e := range c.Env {
			if !strings.HasPrefix(e.Name, "AWS_") && e.Name != "PGPASSWORD" {
				continue
			}
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s: %s must come from a Secret: %+v", c.Name, e.Name, e)
			}
		}
	}
}

// checkS3Env checks the environment of an operator step reaching the test bucket: the
// destination in the BACKUP_S3_* variables, the credentials from their Secret keys, and the CA
// bundle as a file of a mounted Secret when there is one.
func checkS3Env(t *testing.T, pod corev1.PodSpec, c *corev1.Container, prefix string, caBundle *v1alpha1.SecretKeyRef) {
	t.Helper()
	want := map[string]string{
		"BACKUP_S3_ENDPOINT": "https://minio.example.org:9000",
		"BACKUP_S3_BUCKET":   "kinto-backups",
		"BACKUP_S3_REGION":   "eu-west-1",
	}
	if prefix != "" {
		want["BACKUP_S3_PREFIX"] = prefix
	}
	if caBundle != nil {
		want["BACKUP_S3_CA_FILE"] = "/etc/kinto-backup/s3-ca/ca.crt"
	}
	creds := map[string]string{"AWS_ACCESS_KEY_ID": "access-key", "AWS_SECRET_ACCESS_KEY": "secret-key"}
	for _, e := range c.Env {
		if key, ok := creds[e.Name]; ok {
			if ref := e.ValueFrom.SecretKeyRef; ref.Name != "s3-credentials" || ref.Key != key {
				t.Errorf("%s: %s from %s/%s", c.Name, e.Name, ref.Name, ref.Key)
			}
			delete(creds, e.Name)
			continue
		}
		if w, ok := want[e.Name]; !ok || e.Value != w {
			t.Errorf("%s: env %s = %q, want %q", c.Name, e.Name, e.Value, w)
		}
		delete(want, e.Name)
	}
	if len(want)+len(creds) != 0 {
		t.Errorf("%s: env lacks %v %v", c.Name, want, creds)
	}

	mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == caBundleVolume && m.MountPath == "/etc/kinto-backup/s3-ca" && m.ReadOnly
	})
	v := podVolume(pod, caBundleVolume)
	switch {
	case caBundle == nil && (mounted || v != nil):
		t.Errorf("%s: a CA bundle is mounted, none was asked for", c.Name)
	case caBundle == nil:
	case !mounted || v == nil || v.Secret == nil:
		t.Errorf("%s: the CA bundle is not mounted from its Secret: %+v", c.Name, v)
	case v.Secret.SecretName != caBundle.Name || !slices.Equal(v.Secret.Items, []corev1.KeyToPath{{Key: caBundle.Key, Path: "ca.crt"}}):
		t.Errorf("CA bundle volume %+v, want key %s of Secret %s as ca.crt", v.Secret, caBundle.Key, caBundle.Name)
	}
}

func TestBackupVolumeClaim(t *testing.T) {
	cases := []struct {
		name      string
		inst      *v1alpha1.KintoInstance
		wantSize  string // "": no claim
		wantClass *string
		owned     bool
	}{
		{"no backups", newInstance(), "", nil, false},
		{"backups in S3", newInstance(withS3Backup), "", nil, false},
		{"default volume, kept under Retain", newInstance(withVolumeBackup), "5Gi", nil, false},
		{"size and class", newInstance(withVolumeBackup, func(i *v1alpha1.KintoInstance) {
			i.Spec.Backup.Destination = &v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{
				Size: resource.MustParse("50Gi"), StorageClassName: ptr.To("archive"),
			}}
		}), "50Gi", ptr.To("archive"), false},
		{"kept under Snapshot", newInstance(withVolumeBackup, func(i *v1alpha1.KintoInstance) {
			i.Spec.DeletionPolicy = v1alpha1.DeletionPolicySnapshot
		}), "5Gi", nil, false},
		{"deleted with the instance under Delete", newInstance(withVolumeBackup, deletePolicy), "5Gi", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pvc := BackupVolumeClaim(tc.inst)
			if tc.wantSize == "" {
				if pvc != nil {
					t.Fatalf("claim %s, want none", pvc.Name)
				}
				return
			}
			if pvc.Name != "notes-backups" || pvc.Labels[ComponentLabel] != ComponentBackup {
				t.Errorf("claim %s labelled %v", pvc.Name, pvc.Labels)
			}
			if got := pvc.Spec.Resources.Requests.Storage().String(); got != tc.wantSize {
				t.Errorf("size = %s, want %s", got, tc.wantSize)
			}
			if ptr.Deref(pvc.Spec.StorageClassName, "") != ptr.Deref(tc.wantClass, "") {
				t.Errorf("class = %v", pvc.Spec.StorageClassName)
			}
			if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
				t.Errorf("access modes %v", pvc.Spec.AccessModes)
			}
			if got := len(pvc.OwnerReferences) == 1; got != tc.owned {
				t.Errorf("owned = %v, want %v", got, tc.owned)
			}
		})
	}
}

// install is the step that installs `manager db` for the steps of the database's image.
const install = "install-tools " + testOperatorImage

func TestBackupCronJob(t *testing.T) {
	dump := "dump postgres:15"
	upload := "upload " + testOperatorImage
	retention := func(count *int32, maxAge string) func(*v1alpha1.KintoInstance) {
		return func(i *v1alpha1.KintoInstance) {
			i.Spec.Backup.Retention = &v1alpha1.BackupRetention{Count: count, MaxAge: maxAge}
		}
	}
	cases := []struct {
		name     string
		inst     *v1alpha1.KintoInstance
		schedule string
		suspend  bool
		// wantSteps: no prune step, whatever the retention: the KintoBackup controller applies it.
		wantSteps []string
	}{
		{"volume, defaults", newInstance(withVolumeBackup), "0 3 * * *", false,
			[]string{install, dump}},
		{"volume, max age only", newInstance(withVolumeBackup, retention(nil, "30d")), "0 3 * * *", false,
			[]string{install, dump}},
		{"S3, count and max age, hourly", newInstance(withS3Backup, retention(ptr.To[int32](48), "8w"), func(i *v1alpha1.KintoInstance) {
			i.Spec.Backup.Schedule = "@hourly"
		}), "@hourly", false,
			[]string{install, dump, upload}},
		{"S3, count only", newInstance(withS3Backup, withCABundle), "0 3 * * *", false,
			[]string{install, dump, upload}},
		{"retention without a bound", newInstance(withS3Backup, retention(nil, "")), "0 3 * * *", false,
			[]string{install, dump, upload}},
		{"suspended while hibernating", newInstance(withVolumeBackup, func(i *v1alpha1.KintoInstance) { i.Spec.Hibernate = true }), "0 3 * * *", true,
			[]string{install, dump}},
		{"database image override", newInstance(withVolumeBackup, func(i *v1alpha1.KintoInstance) {
			i.Spec.Database.Managed.Image = "registry.example/pg:15.8"
		}), "0 3 * * *", false,
			[]string{install, "dump registry.example/pg:15.8"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cron := BackupCronJob(tc.inst, testOperatorImage)
			if cron.Name != "notes-backup" || cron.Namespace != "tenants" || cron.OwnerReferences[0].Kind != "KintoInstance" {
				t.Errorf("cronjob %s/%s owned by %+v", cron.Namespace, cron.Name, cron.OwnerReferences)
			}
			spec := cron.Spec
			if spec.Schedule != tc.schedule || ptr.Deref(spec.TimeZone, "") != "UTC" {
				t.Errorf("schedule %q in %v, want %q in UTC", spec.Schedule, spec.TimeZone, tc.schedule)
			}
			if spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || *spec.Suspend != tc.suspend {
				t.Errorf("concurrency %s, suspend %v", spec.ConcurrencyPolicy, *spec.Suspend)
			}
			if *spec.StartingDeadlineSeconds != 3600 || *spec.SuccessfulJobsHistoryLimit != 3 || *spec.FailedJobsHistoryLimit != 3 {
				t.Errorf("deadline %d, history %d/%d", *spec.StartingDeadlineSeconds, *spec.SuccessfulJobsHistoryLimit, *spec.FailedJobsHistoryLimit)
			}
			job := spec.JobTemplate
			for what, l := range map[string]map[string]string{"job": job.Labels, "pod": job.Spec.Template.Labels} {
				if l[v1alpha1.ScheduledBackupLabel] != "true" || l[ComponentLabel] != ComponentBackup || l[InstanceLabel] != "notes" {
					t.Errorf("%s labels %v", what, l)
				}
			}
			if _, ok := cron.Labels[v1alpha1.ScheduledBackupLabel]; ok {
				t.Error("the CronJob itself is no scheduled backup")
			}
			if *job.Spec.BackoffLimit != 1 || *job.Spec.ActiveDeadlineSeconds != 50*60 {
				t.Errorf("backoff %d, deadline %d", *job.Spec.BackoffLimit, *job.Spec.ActiveDeadlineSeconds)
			}
			pod := job.Spec.Template.Spec
			checkJobSteps(t, pod)
			if got := podSteps(pod); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("steps %q, want %q", got, tc.wantSteps)
			}
		})
	}
}

// Only managed databases are backed up, and only with spec.backup.
func TestNoBackupJobs(t *testing.T) {
	for name, inst := range map[string]*v1alpha1.KintoInstance{
		"no spec.backup":    newInstance(),
		"external database": newInstance(external, withVolumeBackup),
	} {
		if cron := BackupCronJob(inst, testOperatorImage); cron != nil {
			t.Errorf("%s: cronjob %s", name, cron.Name)
		}
		if job := BackupJob(inst, newBackup(inst), testOperatorImage, nil); job != nil {
			t.Errorf("%s: job %s", name, job.Name)
		}
	}
}

func TestBackupJob(t *testing.T) {
	cases := []struct {
		name      string
		inst      *v1alpha1.KintoInstance
		wantSteps []string
		// wantDumps is the source of the volume the dump is written to: a claim's name or "emptyDir".
		wantDumps string
	}{
		{"volume: the dump alone", newInstance(withVolumeBackup), []string{install, "dump postgres:15"}, "notes-backups"},
		{"S3: dumped to scratch space, then uploaded", newInstance(withS3Backup),
			[]string{install, "dump postgres:15", "upload " + testOperatorImage}, "emptyDir"},
		{"S3 with a CA bundle", newInstance(withS3Backup, withCABundle),
			[]string{install, "dump postgres:15", "upload " + testOperatorImage}, "emptyDir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backup := newBackup(tc.inst)
			job := BackupJob(tc.inst, backup, testOperatorImage, nil)
			if job.Name != "before-upgrade" || job.Namespace != "tenants" {
				t.Errorf("job %s/%s, want the KintoBackup's name", job.Namespace, job.Name)
			}
			owner := job.OwnerReferences
			if len(owner) != 1 || owner[0].Kind != "KintoBackup" || owner[0].APIVersion != v1alpha1.GroupVersion.String() ||
				owner[0].Name != backup.Name || owner[0].UID != backup.UID || !*owner[0].Controller || !*owner[0].BlockOwnerDeletion {
				t.Errorf("owner references %+v, want the KintoBackup as controller", owner)
			}
			for what, l := range map[string]map[string]string{"job": job.Labels, "pod": job.Spec.Template.Labels} {
				if l[BackupNameLabel] != backup.Name || l[ComponentLabel] != ComponentBackup || l[InstanceLabel] != "notes" || l[ManagedByLabel] != ManagedBy {
					t.Errorf("%s labels %v", what, l)
				}
				if _, ok := l[v1alpha1.ScheduledBackupLabel]; ok {
					t.Errorf("%s of an on-demand backup labelled scheduled", what)
				}
			}
			if *job.Spec.BackoffLimit != 1 || *job.Spec.ActiveDeadlineSeconds != 50*60 || *job.Spec.Completions != 1 || *job.Spec.Parallelism != 1 {
				t.Errorf("job spec %+v", job.Spec)
			}

			pod := job.Spec.Template.Spec
			checkJobSteps(t, pod)
			if got := podSteps(pod); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("steps %q, want %q", got, tc.wantSteps)
			}
			if pod.ServiceAccountName != ServiceAccountName(tc.inst) || *pod.SecurityContext.RunAsUser != 999 {
				t.Errorf("pod runs as %s, uid %d", pod.ServiceAccountName, *pod.SecurityContext.RunAsUser)
			}
			dest := tc.inst.Spec.Backup.Destination
			if result := BackupResultContainerOf(pod); pod.Containers[0].Name != result {
				t.Errorf("the result comes from %s, the Job's container is %s", result, pod.Containers[0].Name)
			}

			dump := podContainer(pod, "dump")
			if dir, _ := envValue(dump, backupenv.DumpDir); dir != "/dumps" || !slices.Contains(dump.VolumeMounts, corev1.VolumeMount{Name: "dumps", MountPath: "/dumps"}) {
				t.Errorf("dump into %q, mounts %+v", dir, dump.VolumeMounts)
			}
			if !slices.Equal(dump.Command, DumpCommand()) {
				t.Errorf("dump command %q", dump.Command)
			}
			if host, _ := envValue(dump, "PGHOST"); host != "notes-postgres" {
				t.Errorf("dump of %q", host)
			}
			switch v := podVolume(pod, "dumps"); {
			case tc.wantDumps == "emptyDir" && (v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.String() != "1Gi"),
				tc.wantDumps != "emptyDir" && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != tc.wantDumps):
				t.Errorf("dumps volume %+v, want %s", v.VolumeSource, tc.wantDumps)
			}

			upload := podContainer(pod, "upload")
			if dest.S3 == nil {
				if upload != nil {
					t.Error("a volume destination has no upload step")
				}
				return
			}
			wantUpload := []string{"/manager", "backup", "upload", "--dump-dir", "/dumps", "--instance", "notes", "--termination-log", "/dev/termination-log"}
			if !slices.Equal(upload.Command, wantUpload) {
				t.Errorf("upload command %q, want %q", upload.Command, wantUpload)
			}
			checkS3Env(t, pod, upload, "coop/tenants", dest.S3.CABundle)
		})
	}
}

func TestRestoreJob(t *testing.T) {
	sum := strings.Repeat("0123456789abcdef", 4)
	withCA := testS3Connection()
	withCA.CABundle = &v1alpha1.SecretKeyRef{Name: "minio-ca", Key: "ca.crt"}
	cases := []struct {
		name      string
		src       RestoreSource
		wantSteps []string
		wantFile  string
	}{
		{"volume, checksum beside the dump", RestoreSource{VolumeClaimName: "old-notes-backups", File: "20261126T030000Z.dump"},
			[]string{install, "restore postgres:15"}, "/dumps/20261126T030000Z.dump"},
		{"volume, checksum given", RestoreSource{VolumeClaimName: "old-notes-backups", File: "20261126T030000Z.dump", SHA256: sum},
			[]string{install, "restore postgres:15"}, "/dumps/20261126T030000Z.dump"},
		{"S3, checksum stored with the object", RestoreSource{S3: ptr.To(testS3Connection()), Key: "tenants/old-notes/20261126T030000Z.dump"},
			[]string{install, "download " + testOperatorImage, "restore postgres:15"}, "/dumps/20261126T030000Z.dump"},
		{"S3 with a CA bundle, checksum given", RestoreSource{S3: &withCA, Key: "20261126T030000Z.dump", SHA256: sum},
			[]string{install, "download " + testOperatorImage, "restore postgres:15"}, "/dumps/20261126T030000Z.dump"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst := newInstance(func(i *v1alpha1.KintoInstance) {
				i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: "b"}}
			})
			job := RestoreJob(inst, tc.src, testOperatorImage)
			if job.Name != "notes-restore" || job.OwnerReferences[0].Kind != "KintoInstance" || job.Labels[ComponentLabel] != ComponentRestore {
				t.Errorf("job %s owned by %+v labelled %v", job.Name, job.OwnerReferences, job.Labels)
			}
			if *job.Spec.BackoffLimit != 3 || *job.Spec.ActiveDeadlineSeconds != 2*60*60 {
				t.Errorf("backoff %d, deadline %d", *job.Spec.BackoffLimit, *job.Spec.ActiveDeadlineSeconds)
			}
			pod := job.Spec.Template.Spec
			checkJobSteps(t, pod)
			if got := podSteps(pod); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("steps %q, want %q", got, tc.wantSteps)
			}
			if l := job.Spec.Template.Labels; l[ComponentLabel] != ComponentRestore || l[InstanceLabel] != "notes" {
				t.Errorf("pod labels %v", l)
			}

			restore := podContainer(pod, "restore")
			if !slices.Equal(restore.Command, RestoreCommand()) {
				t.Errorf("restore command %q", restore.Command)
			}
			if file, _ := envValue(restore, backupenv.DumpFile); file != tc.wantFile {
				t.Errorf("%s = %q, want %q", backupenv.DumpFile, file, tc.wantFile)
			}
			if got, set := envValue(restore, backupenv.DumpSHA256); got != tc.src.SHA256 || set != (tc.src.SHA256 != "") {
				t.Errorf("%s = %q (set %v), want %q", backupenv.DumpSHA256, got, set, tc.src.SHA256)
			}
			if host, _ := envValue(restore, "PGHOST"); host != "notes-postgres" {
				t.Errorf("restore into %q", host)
			}
			if !slices.Contains(restore.VolumeMounts, corev1.VolumeMount{Name: "dumps", MountPath: "/dumps", ReadOnly: true}) {
				t.Errorf("restore mounts %+v, want the dumps read-only", restore.VolumeMounts)
			}

			dumps := podVolume(pod, "dumps")
			download := podContainer(pod, "download")
			if tc.src.S3 == nil {
				claim := dumps.PersistentVolumeClaim
				if claim == nil || claim.ClaimName != tc.src.VolumeClaimName || !claim.ReadOnly {
					t.Errorf("dumps volume %+v, want claim %s read-only", dumps.VolumeSource, tc.src.VolumeClaimName)
				}
				if download != nil {
					t.Error("a dump on a volume is not downloaded")
				}
				return
			}
			if dumps.EmptyDir == nil || dumps.EmptyDir.SizeLimit == nil || dumps.EmptyDir.SizeLimit.String() != "1Gi" {
				t.Errorf("dumps volume %+v, want scratch space as large as the database volume", dumps.VolumeSource)
			}
			wantDownload := []string{"/manager", "backup", "download", "--key", tc.src.Key, "--file", tc.wantFile}
			if !slices.Equal(download.Command, wantDownload) {
				t.Errorf("download command %q, want %q", download.Command, wantDownload)
			}
			if !slices.Contains(download.VolumeMounts, corev1.VolumeMount{Name: "dumps", MountPath: "/dumps"}) {
				t.Errorf("download mounts %+v, want the dumps writable", download.VolumeMounts)
			}
			checkS3Env(t, pod, download, "", tc.src.S3.CABundle)
		})
	}
}

func TestDumpDeletionJob(t *testing.T) {
	cases := []struct {
		name        string
		inst        *v1alpha1.KintoInstance
		wantCommand []string
		wantClaim   string
	}{
		{"volume", newInstance(withVolumeBackup),
			[]string{"/manager", "backup", "delete", "--dir", "/dumps", "--file", "20261126T030000Z.dump"}, "notes-backups"},
		{"S3", newInstance(withS3Backup, withCABundle),
			[]string{"/manager", "backup", "delete", "--key", "tenants/notes/20261126T030000Z.dump"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backup := completedBackup(tc.inst)
			job := DumpDeletionJob(backup, testOperatorImage, nil)
			if job.Name != "before-upgrade-delete" || job.Namespace != "tenants" {
				t.Errorf("job %s/%s", job.Namespace, job.Name)
			}
			if owner := job.OwnerReferences; len(owner) != 1 || owner[0].Kind != "KintoBackup" || owner[0].UID != backup.UID || !*owner[0].Controller {
				t.Errorf("owner references %+v, want the KintoBackup as controller", owner)
			}
			wantLabels := map[string]string{
				ManagedByLabel: ManagedBy, NameLabel: "kinto", InstanceLabel: "notes", ComponentLabel: ComponentDumpDeletion,
			}
			for what, l := range map[string]map[string]string{"job": job.Labels, "pod": job.Spec.Template.Labels} {
				if !maps.Equal(l, wantLabels) {
					t.Errorf("%s labels %v, want %v", what, l, wantLabels)
				}
			}
			if *job.Spec.ActiveDeadlineSeconds != 10*60 {
				t.Errorf("deadline %d", *job.Spec.ActiveDeadlineSeconds)
			}

			pod := job.Spec.Template.Spec
			checkJobSteps(t, pod)
			if pod.ServiceAccountName != "default" || *pod.AutomountServiceAccountToken || *pod.SecurityContext.RunAsUser != 999 {
				t.Errorf("pod runs as %s (token %v), uid %d", pod.ServiceAccountName, *pod.AutomountServiceAccountToken, *pod.SecurityContext.RunAsUser)
			}
			if len(pod.InitContainers) != 0 || len(pod.Containers) != 1 {
				t.Fatalf("steps %q, want one", podSteps(pod))
			}
			c := &pod.Containers[0]
			if c.Name != "delete" || c.Image != testOperatorImage || !slices.Equal(c.Command, tc.wantCommand) {
				t.Errorf("step %s %s %q, want command %q", c.Name, c.Image, c.Command, tc.wantCommand)
			}
			if tc.wantClaim == "" {
				checkS3Env(t, pod, c, "", backup.Status.Destination.S3.CABundle)
				return
			}
			if v := podVolume(pod, "dumps"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != tc.wantClaim {
				t.Errorf("dumps volume %+v, want claim %s", v, tc.wantClaim)
			}
			if len(c.Env) != 0 {
				t.Errorf("env %v, want none", c.Env)
			}
		})
	}
}

// A KintoBackup whose status locates no dump has nothing to delete.
func TestNoDumpDeletionJob(t *testing.T) {
	inst := newInstance(withS3Backup)
	for name, edit := range map[string]func(*v1alpha1.KintoBackupStatus){
		"never started":  func(s *v1alpha1.KintoBackupStatus) { *s = v1alpha1.KintoBackupStatus{} },
		"failed, no key": func(s *v1alpha1.KintoBackupStatus) { s.Key = "" },
		"volume, no file": func(s *v1alpha1.KintoBackupStatus) {
			s.Destination = &v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{}}
			s.File = ""
		},
	} {
		backup := completedBackup(inst)
		edit(&backup.Status)
		if job := DumpDeletionJob(backup, testOperatorImage, nil); job != nil {
			t.Errorf("%s: job %q", name, job.Spec.Template.Spec.Containers[0].Command)
		}
	}
}

// A Portable backup's first step is the export, in the operator's image, reading the instance's
// own Service as the KintoBackup's identity, the secret parts from their Secrets; what follows
// it (the upload, the result) is a dump's.
func TestPortableBackupJob(t *testing.T) {
	cases := []struct {
		name      string
		inst      *v1alpha1.KintoInstance
		creds     v1alpha1.KintoCredentials
		wantSteps []string
		wantEnv   map[string]string
	}{
		{"volume, an account", newInstance(withVolumeBackup),
			v1alpha1.KintoCredentials{User: "porter", Password: &v1alpha1.SecretKeyRef{Name: "porter", Key: "password"}},
			[]string{"export " + testOperatorImage},
			map[string]string{backupenv.PortableUser: "porter", backupenv.PortablePassword: "secret porter/password"}},
		{"S3, a bearer token", newInstance(withS3Backup),
			v1alpha1.KintoCredentials{BearerToken: &v1alpha1.SecretKeyRef{Name: "oidc", Key: "token"}},
			[]string{"export " + testOperatorImage, "upload " + testOperatorImage},
			map[string]string{backupenv.PortableBearerToken: "secret oidc/token"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backup := newBackup(tc.inst)
			backup.Spec.Format = v1alpha1.BackupFormatPortable
			backup.Spec.Credentials = &tc.creds
			pod := BackupJob(tc.inst, backup, testOperatorImage, nil).Spec.Template.Spec
			checkJobSteps(t, pod)
			if got := podSteps(pod); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("steps %q, want %q (no database tools: the export reads the API)", got, tc.wantSteps)
			}
			if result := BackupResultContainerOf(pod); pod.Containers[0].Name != result {
				t.Errorf("the result comes from %s, the Job's container is %s", result, pod.Containers[0].Name)
			}
			export := podContainer(pod, "export")
			if !slices.Equal(export.Command, []string{"/manager", "portable", "export"}) {
				t.Errorf("export command %q", export.Command)
			}
			want := maps.Clone(tc.wantEnv)
			want[backupenv.DumpDir] = "/dumps"
			want[backupenv.PortableURL] = "http://notes-server.tenants.svc/v1"
			got := map[string]string{}
			for _, e := range export.Env {
				if e.ValueFrom != nil {
					got[e.Name] = "secret " + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				} else {
					got[e.Name] = e.Value
				}
			}
			if !maps.Equal(got, want) {
				t.Errorf("export env %v, want %v", got, want)
			}
			if !slices.Contains(export.VolumeMounts, corev1.VolumeMount{Name: "dumps", MountPath: "/dumps"}) {
				t.Errorf("export mounts %+v", export.VolumeMounts)
			}
		})
	}
}
