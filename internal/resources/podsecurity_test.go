package resources

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// podSpecs are every pod template the operator generates for an instance: those of its
// children (Children.All, for each kind of restore source), those of its KintoBackups' Jobs,
// and a KintoMirror's.
func podSpecs(t *testing.T, inst *v1alpha1.KintoInstance) map[string]corev1.PodSpec {
	t.Helper()
	s3 := testS3Connection()
	s3.CABundle = &v1alpha1.SecretKeyRef{Name: "minio-ca", Key: "ca.crt"}
	pods := map[string]corev1.PodSpec{}
	for variant, restore := range map[string]*RestoreSource{
		"":                      nil,
		" restoring a volume's": {VolumeClaimName: "old-backups", File: "f.dump"},
		" restoring S3's":       {S3: &s3, Key: "k/f.dump"},
	} {
		children, err := Desired(inst, Inputs{SchemaVersion: inst.Spec.Version, RestoreSource: restore, OperatorImage: testOperatorImage})
		if err != nil {
			t.Fatal(err)
		}
		for _, child := range children.All() {
			if pod, ok := kintotest.PodSpecOf(child); ok {
				pods[fmt.Sprintf("%s %s%s", child.GetObjectKind().GroupVersionKind().Kind, child.GetName(), variant)] = pod
			}
		}
	}
	pods["mirror"] = MirrorCronJob(newMirror(inst), inst, testOperatorImage).Spec.JobTemplate.Spec.Template.Spec
	if inst.Spec.ManagedDatabase() != nil {
		key := &v1alpha1.SecretKeyRef{Name: "age", Key: "key.txt"}
		pods["portable import of a volume's"] = ImportJob(inst, inst.Spec.Version, RestoreSource{VolumeClaimName: "old-backups", File: "f.yaml"}, testOperatorImage).Spec.Template.Spec
		pods["portable import of S3's, encrypted"] = ImportJob(inst, inst.Spec.Version, RestoreSource{S3: &s3, Key: "k/f.yaml.age", DecryptionKey: key}, testOperatorImage).Spec.Template.Spec
	}
	if job := BackupJob(inst, newBackup(inst), testOperatorImage, nil); job != nil {
		pods["on-demand backup"] = job.Spec.Template.Spec
	}
	if inst.Spec.Backup != nil {
		pods["dump deletion"] = DumpDeletionJob(completedBackup(inst), testOperatorImage, nil).Spec.Template.Spec
		if pod := (BackupReader{ID: "x"}).Pod(completedBackup(inst), testOperatorImage); pod != nil {
			pods["backup reader"] = pod.Spec
		}
		if job := VerifyJob(inst, completedBackup(inst), time.Now(), testOperatorImage); job != nil {
			pods["verification"] = job.Spec.Template.Spec
		}
		pods["result recovery"] = ResultRecoveryJob(completedBackup(inst), time.Now(), time.Now(), nil, testOperatorImage).Spec.Template.Spec
		u := &v1alpha1.UpgradeStatus{From: "26.4.0", To: "26.5.0", StartedAt: metav1.Now(), Baseline: map[string]string{"/buckets/": "x"}}
		pods["upgrade sample"] = UpgradeSampleJob(inst, u, "", testOperatorImage).Spec.Template.Spec
		gate, err := HealthGateJob(inst, u, testOperatorImage)
		if err != nil {
			t.Fatal(err)
		}
		pods["health gate"] = gate.Spec.Template.Spec
		if inst.Spec.ManagedDatabase() != nil {
			pods["rollback"] = RollbackJob(inst, u, RestoreSource{VolumeClaimName: "b", File: "f.dump"}, testOperatorImage).Spec.Template.Spec
		}
	}
	if inst.Spec.ManagedDatabase() != nil {
		u := &v1alpha1.UpgradeStatus{From: "26.4.0", To: "26.5.0", StartedAt: metav1.Now()}
		pods["safety dump"] = SafetyDumpJob(inst, u, testOperatorImage).Spec.Template.Spec
		pods["rollback to the safety dump"] = RollbackJob(inst, u, SafetyDumpSource(inst, "f.dump"), testOperatorImage).Spec.Template.Spec
	}
	if b := inst.Spec.Backup; b != nil && b.Destination != nil && b.Destination.S3 != nil && inst.Spec.ManagedDatabase() != nil {
		for name, obj := range sharedBucketObjects(t, inst) {
			if pod, ok := kintotest.PodSpecOf(obj); ok {
				pods["shared bucket's "+name] = pod
			}
		}
	}
	return pods
}

// Every pod of every spec variant passes the Pod Security "restricted" profile, checked by the
// same code the API server's admission plugin runs.
func TestEveryPodMeetsTheRestrictedProfile(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	level := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	variants := map[string]*v1alpha1.KintoInstance{
		"default":                          newInstance(),
		"external":                         newInstance(external),
		"openid":                           newInstance(withOpenID),
		"backups on a volume":              newInstance(withVolumeBackup),
		"backups in S3 with a CA bundle":   newInstance(withS3Backup, withCABundle),
		"external database, backups in S3": newInstance(external, withS3Backup),
		"scheduling and delete policy": newInstance(deletePolicy, func(i *v1alpha1.KintoInstance) {
			i.Spec.NodeSelector = map[string]v1alpha1.LabelValue{"pool": "tenants"}
			i.Spec.Tolerations = []corev1.Toleration{{Key: "tenants", Operator: corev1.TolerationOpExists}}
		}),
	}
	for variant, inst := range variants {
		for name, pod := range podSpecs(t, inst) {
			t.Run(fmt.Sprintf("%s/%s", variant, name), func(t *testing.T) {
				for _, r := range evaluator.EvaluatePod(level, &metav1.ObjectMeta{}, &pod) {
					if !r.Allowed {
						t.Errorf("%s: %s", r.ForbiddenReason, r.ForbiddenDetail)
					}
				}
			})
		}
	}
}
