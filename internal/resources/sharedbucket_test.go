package resources

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The grants of a shared bucket's Jobs in these tests: stand-ins for URLs the operator signs.
const (
	testUploadURL   = "https://minio.example.org:9000/kinto-backups/coop/tenants/notes/20261126T030000Z.dump?X-Amz-Signature=put"
	testDownloadURL = "https://minio.example.org:9000/kinto-backups/coop/tenants/notes/20261126T020000Z.dump?X-Amz-Signature=get"
	testDeleteURL   = "https://minio.example.org:9000/kinto-backups/tenants/notes/20261126T030000Z.dump?X-Amz-Signature=delete"
	testCAPEM       = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
)

// sharedBucketObjects are every object the operator places in the namespace of an instance whose
// backups go to its class's shared bucket (inst's S3 destination, as the class gives it): its
// children while it restores a dump of that bucket, its scheduled run, an on-demand backup and
// the deletion of a dump, each Job with its grant.
func sharedBucketObjects(t *testing.T, inst *v1alpha1.KintoInstance) map[string]client.Object {
	t.Helper()
	s3 := inst.Spec.Backup.Destination.S3
	restore := &RestoreSource{S3: &s3.S3Connection, Key: "coop/tenants/notes/20261126T020000Z.dump",
		Grant: &ObjectGrant{Key: "coop/tenants/notes/20261126T020000Z.dump", URL: testDownloadURL, CABundle: testCAPEM}}
	children, err := Desired(inst, Inputs{SchemaVersion: inst.Spec.Version, RestoreSource: restore, OperatorImage: testOperatorImage, SharedBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string]client.Object{}
	for _, child := range children.All() {
		objects[child.GetObjectKind().GroupVersionKind().Kind+" "+child.GetName()] = child
	}
	upload := ObjectGrant{Key: "coop/tenants/notes/20261126T030000Z.dump", URL: testUploadURL, CABundle: testCAPEM}
	objects["scheduled run"] = ScheduledBackupJob(inst, time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), testOperatorImage, upload)
	objects["on-demand backup"] = BackupJob(inst, newBackup(inst), testOperatorImage, &upload)
	objects["dump deletion"] = DumpDeletionJob(completedBackup(inst), testOperatorImage,
		&ObjectGrant{Key: "tenants/notes/20261126T030000Z.dump", URL: testDeleteURL})
	return objects
}

// TestSharedBucketCredentialsStayOut walks every object placed in the tenant's namespace: none
// names the bucket's Secrets, nor sets the credentials' variables; each Job's step reaches the
// bucket through its one URL only.
func TestSharedBucketCredentialsStayOut(t *testing.T) {
	inst := newInstance(withS3Backup, withCABundle)
	secretNames := []string{"s3-credentials", "minio-ca"}
	for name, obj := range sharedBucketObjects(t, inst) {
		raw, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range secretNames {
			if strings.Contains(string(raw), `"`+secret+`"`) {
				t.Errorf("%s names the shared bucket's Secret %s", name, secret)
			}
		}
		pod, ok := kintotest.PodSpecOf(obj)
		if !ok {
			if _, isCronJob := obj.(*batchv1.CronJob); isCronJob {
				t.Errorf("%s: a CronJob runs the schedule of a shared bucket", name)
			}
			continue
		}
		for _, v := range pod.Volumes {
			if v.Secret != nil || v.Projected != nil {
				t.Errorf("%s mounts Secret volume %s", name, v.Name)
			}
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			for _, e := range c.Env {
				if e.Name == backupenv.AccessKeyID || e.Name == backupenv.SecretAccessKey || e.Name == backupenv.Endpoint || e.Name == backupenv.Bucket {
					t.Errorf("%s: step %s is given %s", name, c.Name, e.Name)
				}
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !strings.HasPrefix(e.ValueFrom.SecretKeyRef.Name, inst.Name) {
					t.Errorf("%s: step %s reads Secret %s", name, c.Name, e.ValueFrom.SecretKeyRef.Name)
				}
			}
		}
	}
}

// TestSharedBucketGrants: each Job's step gets the URL of its object and the CA to trust, and the
// command naming that object; no other step gets a URL.
func TestSharedBucketGrants(t *testing.T) {
	inst := newInstance(withS3Backup, withCABundle)
	objects := sharedBucketObjects(t, inst)
	for _, tc := range []struct {
		object, step, url string
		command           []string
	}{
		{"Job " + RestoreJobName(inst), stepDownload, testDownloadURL,
			[]string{managerBinary, "backup", "download", "--key", "coop/tenants/notes/20261126T020000Z.dump", "--file", "/dumps/20261126T020000Z.dump"}},
		{"scheduled run", stepUpload, testUploadURL,
			[]string{managerBinary, "backup", "upload", "--dump-dir", dumpDir, "--key", "coop/tenants/notes/20261126T030000Z.dump", "--termination-log", corev1.TerminationMessagePathDefault}},
		{"on-demand backup", stepUpload, testUploadURL,
			[]string{managerBinary, "backup", "upload", "--dump-dir", dumpDir, "--key", "coop/tenants/notes/20261126T030000Z.dump", "--termination-log", corev1.TerminationMessagePathDefault}},
		{"dump deletion", stepDelete, testDeleteURL,
			[]string{managerBinary, "backup", "delete", "--key", "tenants/notes/20261126T030000Z.dump"}},
	} {
		pod, _ := kintotest.PodSpecOf(objects[tc.object])
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			if c.Name != tc.step {
				if _, ok := env[backupenv.PresignedURL]; ok {
					t.Errorf("%s: step %s is given a URL", tc.object, c.Name)
				}
				continue
			}
			if env[backupenv.PresignedURL] != tc.url || strings.Join(c.Command, " ") != strings.Join(tc.command, " ") {
				t.Errorf("%s: step %s runs %q with URL %q; want %q with %q", tc.object, c.Name, c.Command, env[backupenv.PresignedURL], tc.command, tc.url)
			}
			if wantCA := tc.step != stepDelete; (env[backupenv.PresignedCABundle] == testCAPEM) != wantCA {
				t.Errorf("%s: step %s CA bundle %q", tc.object, c.Name, env[backupenv.PresignedCABundle])
			}
		}
	}
}

// TestScheduledBackupJob: a shared bucket's scheduled run is named, labelled and owned as the
// CronJob's runs are, so the KintoBackup controller records it alike, and goes a day after it
// finished.
func TestScheduledBackupJob(t *testing.T) {
	inst := newInstance(withS3Backup)
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	job := ScheduledBackupJob(inst, at, testOperatorImage, ObjectGrant{Key: "k", URL: testUploadURL})
	if job.Name != BackupCronJobName(inst)+"-29927700" || job.Labels[v1alpha1.ScheduledBackupLabel] != "true" ||
		job.Labels[ComponentLabel] != ComponentBackup || job.Labels[InstanceLabel] != inst.Name {
		t.Errorf("name %s, labels %v", job.Name, job.Labels)
	}
	if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].UID != inst.UID {
		t.Errorf("owners %+v", job.OwnerReferences)
	}
	if ttl := job.Spec.TTLSecondsAfterFinished; ttl == nil || *ttl != 86400 {
		t.Errorf("ttlSecondsAfterFinished %v", ttl)
	}
	if BackupResultContainerOf(job.Spec.Template.Spec) != stepUpload {
		t.Errorf("the result is read from %s", BackupResultContainerOf(job.Spec.Template.Spec))
	}
	for name, i := range map[string]*v1alpha1.KintoInstance{"volume backups": newInstance(withVolumeBackup), "external database": newInstance(external, withS3Backup)} {
		if job := ScheduledBackupJob(i, at, testOperatorImage, ObjectGrant{}); job != nil {
			t.Errorf("%s: a shared bucket's run %s", name, job.Name)
		}
	}
	// Without the shared bucket, the CronJob runs the schedule.
	children, err := Desired(inst, Inputs{OperatorImage: testOperatorImage})
	if err != nil || children.BackupSchedule == nil {
		t.Errorf("no CronJob for the tenant's own bucket: %v", err)
	}
	children, err = Desired(inst, Inputs{OperatorImage: testOperatorImage, SharedBucket: true})
	if err != nil || children.BackupSchedule != nil {
		t.Fatalf("a CronJob for a shared bucket: %v", err)
	}
	removed := false
	for _, o := range children.Remove {
		removed = removed || (o.GetName() == BackupCronJobName(inst))
	}
	if !removed {
		t.Error("the CronJob of the instance's former destination is not removed")
	}
}
