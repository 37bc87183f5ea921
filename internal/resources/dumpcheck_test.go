package resources

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestResultRecoveryJob(t *testing.T) {
	from := time.Date(2026, 11, 26, 3, 0, 0, 0, time.FixedZone("CET", 3600))
	to := from.Add(90 * time.Second)
	window := []string{"--after", "2026-11-26T02:00:00Z", "--before", "2026-11-26T02:01:30Z"}
	cases := []struct {
		name        string
		inst        *v1alpha1.KintoInstance
		except      []string
		wantCommand []string
		wantClaim   string
	}{
		{"volume", newInstance(withVolumeBackup), nil,
			slices.Concat([]string{"/manager", "backup", "find", "--dir", "/dumps"}, window, []string{"--termination-log", "/dev/termination-log"}), "notes-backups"},
		{"S3, with dumps of other backups in the window", newInstance(withS3Backup, withCABundle), []string{"20261126T020010Z.dump", "20261126T020100Z.dump"},
			slices.Concat([]string{"/manager", "backup", "find", "--instance", "notes"}, window,
				[]string{"--except", "20261126T020010Z.dump,20261126T020100Z.dump", "--termination-log", "/dev/termination-log"}), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backup := completedBackup(tc.inst)
			backup.Status.Phase, backup.Status.File, backup.Status.Key, backup.Status.SHA256 = v1alpha1.BackupRunning, "", "", ""
			job := ResultRecoveryJob(backup, from, to, tc.except, testOperatorImage)
			if job.Name != "before-upgrade-result" || job.Namespace != "tenants" {
				t.Errorf("job %s/%s", job.Namespace, job.Name)
			}
			if owner := job.OwnerReferences; len(owner) != 1 || owner[0].Kind != "KintoBackup" || owner[0].UID != backup.UID || !*owner[0].Controller {
				t.Errorf("owner references %+v, want the KintoBackup as controller", owner)
			}
			wantLabels := map[string]string{
				ManagedByLabel: ManagedBy, NameLabel: "kinto", InstanceLabel: "notes", ComponentLabel: ComponentDumpCheck,
			}
			for what, l := range map[string]map[string]string{"job": job.Labels, "pod": job.Spec.Template.Labels} {
				if !maps.Equal(l, wantLabels) {
					t.Errorf("%s labels %v, want %v", what, l, wantLabels)
				}
			}

			pod := job.Spec.Template.Spec
			checkJobSteps(t, pod)
			if pod.ServiceAccountName != "default" || *pod.AutomountServiceAccountToken {
				t.Errorf("pod runs as %s (token %v)", pod.ServiceAccountName, *pod.AutomountServiceAccountToken)
			}
			if len(pod.InitContainers) != 0 || len(pod.Containers) != 1 {
				t.Fatalf("steps %q, want one", podSteps(pod))
			}
			c := &pod.Containers[0]
			if c.Name != ResultRecoveryContainer || c.Image != testOperatorImage || !slices.Equal(c.Command, tc.wantCommand) {
				t.Errorf("step %s %s %q, want command %q", c.Name, c.Image, c.Command, tc.wantCommand)
			}
			if tc.wantClaim == "" {
				checkS3Env(t, pod, c, "coop/tenants", backup.Status.Destination.S3.CABundle)
				return
			}
			v := podVolume(pod, "dumps")
			if v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != tc.wantClaim || !v.PersistentVolumeClaim.ReadOnly {
				t.Errorf("dumps volume %+v, want claim %s read-only", v, tc.wantClaim)
			}
		})
	}

	// Without a destination, there is nowhere to look.
	backup := newBackup(newInstance(withVolumeBackup))
	if job := ResultRecoveryJob(backup, from, to, nil, testOperatorImage); job != nil {
		t.Errorf("a backup of unknown destination gets a recovery Job %s", job.Name)
	}
}
