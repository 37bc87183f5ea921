package resources

import (
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

func TestVerifyJob(t *testing.T) {
	at := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		inst      *v1alpha1.KintoInstance
		wantSteps string
		wantFile  string
		wantClaim string
	}{
		{"volume", newInstance(withVolumeBackup), "install-tools verify", "/dumps/20261126T030000Z.dump", "notes-backups"},
		{"S3", newInstance(withS3Backup, withCABundle), "install-tools download verify", "/dumps/20261126T030000Z.dump", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backup := completedBackup(tc.inst)
			backup.Status.Counts = map[string]int64{"bucket": 1, "collection": 2, "group": 0, "record": 40}
			job := VerifyJob(tc.inst, backup, at, testOperatorImage)
			if job.Name != "notes-verify-20261129t0500" || job.Annotations[ScheduledAtAnnotation] != "2026-11-29T05:00:00Z" || job.Annotations[BackupNameLabel] != backup.Name {
				t.Errorf("job %s, annotations %v", job.Name, job.Annotations)
			}
			if job.Labels[ComponentLabel] != ComponentDumpCheck || job.Spec.Template.Labels[VerifyLabel] != "true" {
				t.Errorf("labels %v, pod labels %v: the dump-check network policy must select it", job.Labels, job.Spec.Template.Labels)
			}
			pod := job.Spec.Template.Spec
			checkJobSteps(t, pod)
			var steps []string
			for _, c := range append(pod.InitContainers, pod.Containers...) {
				steps = append(steps, c.Name)
			}
			if got := strings.Join(steps, " "); got != tc.wantSteps {
				t.Errorf("steps %q, want %q", got, tc.wantSteps)
			}
			c := &pod.Containers[0]
			want := map[string]string{
				backupenv.DumpFile: tc.wantFile, backupenv.DumpSHA256: backup.Status.SHA256, backupenv.PGData: "/scratch/data",
				"TMPDIR": "/scratch", backupenv.DumpCounts: `{"bucket":1,"collection":2,"group":0,"record":40}`,
			}
			for name, value := range want {
				if got, _ := envValue(c, name); got != value {
					t.Errorf("%s = %q, want %q", name, got, value)
				}
			}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "PG") && e.Name != backupenv.PGData {
					t.Errorf("the verification is given %s: it must not reach the instance's database", e.Name)
				}
			}
			if tc.wantClaim != "" {
				if v := podVolume(pod, "dumps"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != tc.wantClaim || !v.PersistentVolumeClaim.ReadOnly {
					t.Errorf("dumps volume %+v, want claim %s read-only", v, tc.wantClaim)
				}
			} else {
				checkS3Env(t, pod, podContainer(pod, "download"), "", backup.Status.Destination.S3.CABundle)
			}
		})
	}
	if job := VerifyJob(newInstance(withVolumeBackup), newBackup(newInstance(withVolumeBackup)), at, testOperatorImage); job != nil {
		t.Errorf("a backup that locates no dump gets verification Job %s", job.Name)
	}
}
