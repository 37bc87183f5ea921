package resources

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

func TestUpgradeObjects(t *testing.T) {
	inst := newInstance(withVolumeBackup)
	started := metav1.NewTime(time.Date(2026, 12, 6, 22, 40, 5, 0, time.UTC))
	u := &v1alpha1.UpgradeStatus{From: "26.4.0", To: "26.5.0", StartedAt: started, Baseline: map[string]string{"/buckets/": "abc", "/buckets/b": "def"}}

	backup := UpgradeBackup(inst, u)
	if backup.Name != inst.Name+"-upgrade-20261206t224005" || backup.Spec.Instance != inst.Name || backup.Spec.DeletionPolicy != v1alpha1.BackupDeletionPolicyRetain {
		t.Errorf("upgrade backup %s %+v", backup.Name, backup.Spec)
	}

	u.Image = "registry.example/kinto:26.5.0-patched"
	gate, err := HealthGateJob(inst, u, testOperatorImage)
	if err != nil {
		t.Fatal(err)
	}
	sample := UpgradeSampleJob(inst, u, "registry.example/kinto:26.4.0", testOperatorImage)
	for _, tc := range []struct {
		name, version, image string
		pod                  corev1.PodSpec
	}{
		{"sample", "26.4.0", "registry.example/kinto:26.4.0", sample.Spec.Template.Spec},
		{"gate", "26.5.0", u.Image, gate.Spec.Template.Spec},
	} {
		// The data is read through a reader server of the pod, at the release the step
		// judges: the one upgraded from for the sample, the new one for the gate.
		if len(tc.pod.InitContainers) != 1 || len(tc.pod.Containers) != 1 {
			t.Fatalf("%s pod: %d init containers, %d containers, want the reader and the step", tc.name, len(tc.pod.InitContainers), len(tc.pod.Containers))
		}
		reader, step := tc.pod.InitContainers[0], tc.pod.Containers[0]
		if reader.Name != ReaderServerContainer || reader.Image != tc.image || reader.RestartPolicy == nil || *reader.RestartPolicy != corev1.ContainerRestartPolicyAlways ||
			!slices.Equal(reader.Command, []string{"kinto", "start", "--ini", "/etc/kinto/" + ReaderConfigFileName}) {
			t.Errorf("%s reader: %s %s restart %v command %v, want a native sidecar of %s with the reader's ini", tc.name, reader.Name, reader.Image, reader.RestartPolicy, reader.Command, tc.image)
		}
		if g := tc.pod.TerminationGracePeriodSeconds; g == nil || *g > 1 {
			t.Errorf("%s grace period %v: the reader ignores SIGTERM, and would hold the Job's end that long", tc.name, g)
		}
		if got := tc.pod.Volumes; len(got) != 2 || got[0].ConfigMap == nil || got[0].ConfigMap.Name != ConfigMapName(inst) || got[1].EmptyDir == nil {
			t.Errorf("%s volumes %+v, want the instance's configuration and scratch space", tc.name, got)
		}
		env := map[string]string{}
		for _, e := range step.Env {
			if e.ValueFrom != nil {
				t.Errorf("the %s step reads %s from %+v: it holds no credentials", tc.name, e.Name, e.ValueFrom)
			}
			env[e.Name] = e.Value
		}
		if env[upgrade.EnvServerURL] != "http://"+ServerName(inst)+"."+inst.Namespace+".svc:80" || env[upgrade.EnvReaderURL] != "http://127.0.0.1:8888" ||
			env[upgrade.EnvReaderUser] == "" || env[upgrade.EnvReaderPassword] == "" {
			t.Errorf("%s env %v", tc.name, env)
		}
		if step.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
			t.Errorf("%s's termination message policy %s: its message is its result, never its log", tc.name, step.TerminationMessagePolicy)
		}
	}
	env := map[string]string{}
	for _, e := range gate.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	var baseline upgrade.Baseline
	if err := json.Unmarshal([]byte(env[upgrade.EnvBaseline]), &baseline); err != nil || baseline["/buckets/b"] != "def" {
		t.Errorf("baseline %q: %v", env[upgrade.EnvBaseline], err)
	}
	if env[upgrade.EnvVersion] != "26.5.0" || env[upgrade.EnvGateSeconds] != "60" {
		t.Errorf("gate env %v", env)
	}
	if *gate.Spec.BackoffLimit != 0 || gate.Spec.Template.Labels[ComponentLabel] != ComponentHealthGate {
		t.Errorf("gate Job: backoff %d, labels %v", *gate.Spec.BackoffLimit, gate.Spec.Template.Labels)
	}
	inst.Spec.Upgrade = &v1alpha1.UpgradeSpec{HealthGateSeconds: 300, ReadyTimeoutSeconds: 120}
	if gate, _ := HealthGateJob(inst, u, testOperatorImage); *gate.Spec.ActiveDeadlineSeconds != 600 || ReadyTimeout(inst) != 2*time.Minute {
		t.Errorf("gate deadline %d s, ready timeout %s", *gate.Spec.ActiveDeadlineSeconds, ReadyTimeout(inst))
	}

	rollback := RollbackJob(inst, u, RestoreSource{VolumeClaimName: BackupVolumeClaimName(inst), File: "f.dump", SHA256: "00"}, testOperatorImage)
	restore := RestoreJob(inst, RestoreSource{VolumeClaimName: BackupVolumeClaimName(inst), File: "f.dump", SHA256: "00"}, testOperatorImage)
	if rollback.Name == restore.Name || rollback.Spec.Template.Labels[ComponentLabel] != ComponentRestore {
		t.Errorf("rollback Job %s labelled %v", rollback.Name, rollback.Spec.Template.Labels)
	}
	replace := 0
	for _, e := range rollback.Spec.Template.Spec.Containers[0].Env {
		if e.Name == backupenv.RestoreReplace && e.Value == "true" {
			replace++
		}
	}
	for _, e := range restore.Spec.Template.Spec.Containers[0].Env {
		if e.Name == backupenv.RestoreReplace {
			t.Errorf("a bootstrap restore may replace the database: %+v", e)
		}
	}
	if replace != 1 {
		t.Errorf("the rollback's restore is not told to replace the database")
	}
}

// The safety dump of an instance whose backups cannot serve a rollback: a plain dump to the
// upgrade's scratch volume, as large as the database's, and nothing else.
func TestSafetyDump(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 12, 6, 22, 40, 5, 0, time.UTC))
	u := &v1alpha1.UpgradeStatus{From: "26.4.0", To: "26.5.0", StartedAt: started}
	for name, inst := range map[string]*v1alpha1.KintoInstance{
		"no backups":        newInstance(),
		"encrypted backups": newInstance(withS3Backup, withEncryption),
		"external database": newInstance(external),
	} {
		t.Run(name, func(t *testing.T) {
			claim := SafetyDumpClaim(inst)
			size := resource.MustParse(ExternalSafetyDumpSize)
			image := ExternalDatabaseToolsImage
			if db := inst.Spec.ManagedDatabase(); db != nil {
				size, image = *db.StorageSize, DatabaseImage(db)
			}
			if claim.Name != inst.Name+"-upgrade-dump" || !claim.Spec.Resources.Requests.Storage().Equal(size) ||
				len(claim.OwnerReferences) != 1 || claim.OwnerReferences[0].UID != inst.UID {
				t.Errorf("scratch volume %s of %v, owners %+v", claim.Name, claim.Spec.Resources.Requests, claim.OwnerReferences)
			}
			job := SafetyDumpJob(inst, u, testOperatorImage)
			if job.Name != inst.Name+"-safety-dump-20261206t224005" || job.Labels[UpgradeLabel] != "20261206t224005" ||
				job.Spec.Template.Labels[ComponentLabel] != ComponentBackup || *job.Spec.TTLSecondsAfterFinished != 7*24*3600 {
				t.Errorf("safety dump Job %s, labels %v, TTL %v", job.Name, job.Spec.Template.Labels, job.Spec.TTLSecondsAfterFinished)
			}
			pod := job.Spec.Template.Spec
			if steps := podSteps(pod); len(steps) != 2 || !strings.HasPrefix(steps[1], SafetyDumpResultContainer+" ") {
				t.Errorf("steps %v: the dump alone, its result the termination message", steps)
			}
			if dump := pod.Containers[0]; dump.Image != image || !slices.ContainsFunc(dump.Env, func(e corev1.EnvVar) bool { return e.Name == "PGDATABASE" }) {
				t.Errorf("the dump runs %s with env %+v, want %s and the database's client environment", dump.Image, dump.Env, image)
			}
			for _, v := range pod.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != claim.Name || v.Secret != nil || v.Projected != nil {
					t.Errorf("volume %+v: the dump goes to the scratch volume only, with no credentials of a destination", v)
				}
			}
			for _, c := range append(pod.InitContainers, pod.Containers...) {
				for _, e := range c.Env {
					if e.Name == backupenv.Recipients || strings.HasPrefix(e.Name, "AWS_") {
						t.Errorf("%s: %s: the safety dump is neither sealed nor uploaded", c.Name, e.Name)
					}
				}
			}
			rollback := RollbackJob(inst, u, SafetyDumpSource(inst, "20261206T224010Z.dump"), testOperatorImage)
			var file string
			for _, c := range append(rollback.Spec.Template.Spec.InitContainers, rollback.Spec.Template.Spec.Containers...) {
				if v, ok := envValue(&c, backupenv.DumpFile); ok {
					file = v
				}
			}
			if file != dumpDir+"/20261206T224010Z.dump" || podVolume(rollback.Spec.Template.Spec, dumpVolume).PersistentVolumeClaim.ClaimName != claim.Name ||
				*rollback.Spec.TTLSecondsAfterFinished != 7*24*3600 {
				t.Errorf("rollback restores %q from %+v", file, rollback.Spec.Template.Spec.Volumes)
			}
		})
	}
}

func TestCloseWrites(t *testing.T) {
	inst := newInstance()
	open, err := Desired(inst, Inputs{SchemaVersion: inst.Spec.Version})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := Desired(inst, Inputs{SchemaVersion: inst.Spec.Version, WritesClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	if WritesClosed(&open.Server.Spec.Template) || !WritesClosed(&closed.Server.Spec.Template) {
		t.Fatal("WritesClosed does not follow Inputs.WritesClosed")
	}
	if open.Server.Annotations[TemplateHashAnnotation] == closed.Server.Annotations[TemplateHashAnnotation] {
		t.Error("closing writes leaves the template hash: the rollout gate would not see the pods roll")
	}
	if open.Config.Data[ConfigFileName] != closed.Config.Data[ConfigFileName] || WritesClosed(&closed.Migration.Spec.Template) {
		t.Error("read-only reaches kinto.ini or the migration, which Kinto then skips")
	}
	if *closed.Migration.Spec.BackoffLimit != 1 {
		t.Errorf("the upgrade's migration retries %d times", *closed.Migration.Spec.BackoffLimit)
	}
}
