//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore/s3testserver"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// backupTimeout bounds a backup, from its KintoBackup's creation to Completed (a Job's pod,
// pg_dump of a small database, the upload), and the deletion of an instance that takes a final
// backup first.
const backupTimeout = 3 * time.Minute

// dumpFilePattern is the name of every dump, <UTC time>.dump.
var dumpFilePattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z\.dump$`)

// TestBackupAndRestoreOnAVolume backs the README's sample up on demand to its backup volume,
// then starts a new instance from that backup, with the first one's HMAC secrets: the new
// instance serves the same data, its accounts log in, and it takes writes.
func TestBackupAndRestoreOnAVolume(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	source := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.Backup = &v1alpha1.BackupSpec{} // every default: daily, keep 7, on a volume
	}))
	cronJob := backupCronJob(t, source)
	if cronJob.Spec.Schedule != "0 3 * * *" {
		t.Errorf("CronJob %s runs on %q, want the default 0 3 * * *", cronJob.Name, cronJob.Spec.Schedule)
	}
	claim := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.BackupVolumeClaimName(source)}, claim); err != nil {
		t.Fatalf("the backup volume claim: %v", err)
	}
	data := populate(t, source)

	backup := &v1alpha1.KintoBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: source.Name + "-on-demand"},
		Spec:       v1alpha1.KintoBackupSpec{Instance: source.Name},
	}
	if err := k8s.Create(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	backup = waitBackupCompleted(t, ns, backup.Name)
	checkCompletedBackup(t, backup)
	if backup.Status.Destination == nil || backup.Status.Destination.Volume == nil {
		t.Errorf("KintoBackup %s records destination %+v, want the volume", backup.Name, backup.Status.Destination)
	}
	if backup.Status.VolumeClaimName != claim.Name {
		t.Errorf("KintoBackup %s is on volume claim %q, want %s", backup.Name, backup.Status.VolumeClaimName, claim.Name)
	}
	if want := "pvc://" + claim.Name + "/" + backup.Status.File; backup.Status.Location != want {
		t.Errorf("KintoBackup %s is at %q, want %s", backup.Name, backup.Status.Location, want)
	}
	waitLastBackup(t, source, backup)

	restoreInto(t, source, ns, source.Name+"-restored", v1alpha1.BackupSource{BackupName: backup.Name}, data)
}

// TestScheduledBackupToS3AndMoveByBucket backs an instance up to an S3 bucket by running its
// backup CronJob by hand, as an admin would, then moves it by the bucket alone: a new instance in
// another namespace, given the bucket's key, the dump's checksum and the first one's HMAC
// secrets, serves the same data.
func TestScheduledBackupToS3AndMoveByBucket(t *testing.T) {
	t.Parallel()
	bucket := newS3Bucket(t)
	ns := newNamespace(t)
	source := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.Backup = &v1alpha1.BackupSpec{
			Schedule: "0 3 1 1 *", // never during the test: the run is started by hand
			Destination: &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{
				S3Connection: bucket.connection(t, ns),
				Prefix:       bucket.prefix,
			}},
		}
	}))
	cronJob := backupCronJob(t, source)
	if cronJob.Spec.JobTemplate.Labels[v1alpha1.ScheduledBackupLabel] != "true" {
		t.Errorf("the Jobs of CronJob %s are labelled %v, want %s=true", cronJob.Name, cronJob.Spec.JobTemplate.Labels, v1alpha1.ScheduledBackupLabel)
	}
	data := populate(t, source)

	job := source.Name + "-backup-by-hand"
	if out, err := exec.Command(kubectl, "create", "job", "-n", ns, "--from=cronjob/"+cronJob.Name, job).CombinedOutput(); err != nil {
		t.Fatalf("kubectl create job --from=cronjob/%s: %v: %s", cronJob.Name, err, out)
	}
	backup := waitBackupCompleted(t, ns, job)
	checkCompletedBackup(t, backup)
	for label, want := range map[string]string{v1alpha1.ScheduledBackupLabel: "true", resources.InstanceLabel: source.Name} {
		if got := backup.Labels[label]; got != want {
			t.Errorf("KintoBackup %s has label %s=%q, want %q", backup.Name, label, got, want)
		}
	}
	if backup.Spec.Instance != source.Name {
		t.Errorf("KintoBackup %s backs up instance %q, want %s", backup.Name, backup.Spec.Instance, source.Name)
	}
	if backup.Status.Destination == nil || backup.Status.Destination.S3 == nil {
		t.Errorf("KintoBackup %s records destination %+v, want the bucket", backup.Name, backup.Status.Destination)
	}
	if want := dumps.InstancePrefix(dumps.NamespaceFolder(bucket.prefix, source.Namespace), source.Name) + backup.Status.File; backup.Status.Key != want {
		t.Errorf("KintoBackup %s has key %q, want %s", backup.Name, backup.Status.Key, want)
	}
	if want := "s3://" + bucket.name + "/" + backup.Status.Key; backup.Status.Location != want {
		t.Errorf("KintoBackup %s is at %q, want %s", backup.Name, backup.Status.Location, want)
	}
	bucket.checkHolds(t, source, backup)
	waitLastBackup(t, source, backup)

	// Another host knows the bucket, the key and the checksum; the instance keeps its name there.
	nsMoved := newNamespace(t)
	restoreInto(t, source, nsMoved, source.Name, v1alpha1.BackupSource{S3: &v1alpha1.S3Source{
		S3Connection: bucket.connection(t, nsMoved),
		Key:          backup.Status.Key,
		SHA256:       backup.Status.SHA256,
	}}, data)
}

// TestSnapshotPolicyTakesAFinalBackup deletes an instance under deletionPolicy Snapshot, with
// background and with foreground propagation (as kubectl --cascade=foreground and GitOps tools
// pruning in the foreground do, where the garbage collector deletes what the instance controls
// first): a final KintoBackup completes before the database volume goes, the backup volume and
// the credentials stay, and a new instance started from the final backup serves the data the
// deleted one served.
func TestSnapshotPolicyTakesAFinalBackup(t *testing.T) {
	t.Parallel()
	for _, propagation := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground} {
		t.Run(string(propagation), func(t *testing.T) {
			t.Parallel()
			takeFinalBackup(t, propagation)
		})
	}
}

func takeFinalBackup(t *testing.T, propagation metav1.DeletionPropagation) {
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.DeletionPolicy = v1alpha1.DeletionPolicySnapshot
		i.Spec.Backup = &v1alpha1.BackupSpec{}
	}))
	data := populate(t, inst)
	creds := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.CredentialsSecretName(inst)}, creds); err != nil {
		t.Fatal(err)
	}
	backupClaim := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.BackupVolumeClaimName(inst)}, backupClaim); err != nil {
		t.Fatalf("the backup volume claim: %v", err)
	}

	if err := k8s.Delete(context.Background(), inst, client.PropagationPolicy(propagation)); err != nil {
		t.Fatal(err)
	}
	kintotest.Eventually(t, backupTimeout, pollInterval, "the instance gone after its final backup", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), &v1alpha1.KintoInstance{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		return false, fmt.Sprintf("instance: %v; backups: %s", err, describeBackups(t, ns))
	})

	var finals v1alpha1.KintoBackupList
	if err := k8s.List(context.Background(), &finals, client.InNamespace(ns), client.MatchingLabels{resources.FinalBackupLabel: "true"}); err != nil {
		t.Fatal(err)
	}
	if len(finals.Items) != 1 {
		t.Fatalf("%d KintoBackups labelled %s=true, want 1; backups: %s", len(finals.Items), resources.FinalBackupLabel, describeBackups(t, ns))
	}
	final := &finals.Items[0]
	if want := inst.Name + "-final-" + string(inst.UID)[:8]; final.Name != want {
		t.Errorf("the final backup is named %s, want %s", final.Name, want)
	}
	if final.Spec.Instance != inst.Name {
		t.Errorf("the final backup backs up instance %q, want %s", final.Spec.Instance, inst.Name)
	}
	if final.Status.Phase != v1alpha1.BackupCompleted {
		t.Fatalf("the final backup %s is %s (error %q) after its instance went, want Completed", final.Name, final.Status.Phase, final.Status.Error)
	}
	checkCompletedBackup(t, final)
	if want := "pvc://" + backupClaim.Name + "/" + final.Status.File; final.Status.Location != want {
		t.Errorf("the final backup is at %q, want %s", final.Status.Location, want)
	}

	pgdata := &corev1.PersistentVolumeClaim{}
	switch err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.DataVolumeClaimName(inst)}, pgdata); {
	case apierrors.IsNotFound(err):
	case err != nil:
		t.Fatal(err)
	case pgdata.DeletionTimestamp == nil:
		t.Errorf("the database volume claim %s outlived its instance under deletionPolicy Snapshot", pgdata.Name)
	}
	for _, child := range resources.KeptForFinalBackup(inst) {
		kintotest.Eventually(t, time.Minute, pollInterval, fmt.Sprintf("%T %s, which the final backup needed, gone", child, child.GetName()), func() (bool, string) {
			err := k8s.Get(context.Background(), client.ObjectKeyFromObject(child), child)
			return apierrors.IsNotFound(err), fmt.Sprintf("%v", err)
		})
	}
	keptClaim := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(backupClaim), keptClaim); err != nil || keptClaim.UID != backupClaim.UID || keptClaim.DeletionTimestamp != nil {
		t.Errorf("the backup volume claim %s was not kept as it was: %v (uid %s, was %s; deletion %v)", backupClaim.Name, err, keptClaim.UID, backupClaim.UID, keptClaim.DeletionTimestamp)
	}
	keptCreds := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(creds), keptCreds); err != nil || keptCreds.UID != creds.UID || keptCreds.DeletionTimestamp != nil {
		t.Fatalf("the credentials Secret %s was not kept as it was: %v (uid %s, was %s; deletion %v)", creds.Name, err, keptCreds.UID, creds.UID, keptCreds.DeletionTimestamp)
	}

	// The kept credentials Secret holds the deleted instance's HMAC secrets.
	restoreInto(t, inst, ns, inst.Name+"-from-final", v1alpha1.BackupSource{BackupName: final.Name}, data)
}

// servedData is what an instance served when it was backed up, to compare a restored one with.
type servedData struct {
	ids      []string
	snapshot map[string]string
	// userIDs are the Kinto user ids of Populate's accounts.
	userIDs map[string]string
}

// populate writes kintotest's dataset into the instance and records what it serves.
func populate(t *testing.T, inst *v1alpha1.KintoInstance) servedData {
	t.Helper()
	api := kintoAPI(t, inst)
	waitHealthy(t, api)
	data := servedData{ids: kintotest.Populate(t, api), userIDs: map[string]string{}}
	data.snapshot = kintotest.Snapshot(t, api, data.ids)
	for user, password := range populateAccounts {
		data.userIDs[user] = api.As(user, password).UserID()
	}
	return data
}

// populateAccounts are the accounts kintotest.Populate creates, with their passwords.
var populateAccounts = map[string]string{"alice": "alice-secret-1", "bob": "bob-secret-1"}

// checkRestored waits until an instance started from a backup of source is Ready, restored, and
// serves what source served: the same reads, its accounts logging in as the same users, its HMAC
// secrets; and that it takes writes.
func checkRestored(t *testing.T, restored, source *v1alpha1.KintoInstance, want servedData) {
	t.Helper()
	restored = waitReady(t, restored)
	if c := meta.FindStatusCondition(restored.Status.Conditions, v1alpha1.ConditionRestored); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "Restored" {
		t.Errorf("instance %s is Ready with condition Restored %+v, want True, reason Restored", restored.Name, c)
	}
	api := kintoAPI(t, restored)
	waitHealthy(t, api)
	kintotest.CompareSnapshots(t, "the instance restored from "+source.Name+"'s backup", want.snapshot, kintotest.Snapshot(t, api, want.ids))
	for user, password := range populateAccounts {
		if got := api.As(user, password).UserID(); got != want.userIDs[user] {
			t.Errorf("%s logs in on the restored instance as %q, was %q", user, got, want.userIDs[user])
		}
	}

	// The operator adopted the HMAC secrets given to it and filled in the rest of the Secret.
	creds := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: restored.Namespace, Name: resources.CredentialsSecretName(restored)}, creds); err != nil {
		t.Fatal(err)
	}
	for key, value := range hmacSecrets(t, source) {
		if string(creds.Data[key]) != string(value) {
			t.Errorf("the restored instance's credentials Secret %s does not hold %s's %s", creds.Name, source.Name, key)
		}
	}
	for _, key := range []string{resources.SecretKeyDatabasePassword, resources.SecretKeyDatabaseURL} {
		if len(creds.Data[key]) == 0 {
			t.Errorf("the restored instance's credentials Secret %s has no %s", creds.Name, key)
		}
	}

	api.As("alice", populateAccounts["alice"]).Must("PUT", kintotest.BooksPath+"/after-restore",
		map[string]any{"data": map[string]any{"title": "written after the restore"}}, nil, http.StatusCreated)
}

// hmacSecrets are the two secrets of an instance's credentials Secret that its data depends on
// (user ids, default bucket ids) and that its dumps do not carry.
func hmacSecrets(t *testing.T, inst *v1alpha1.KintoInstance) map[string][]byte {
	t.Helper()
	creds := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: inst.Namespace, Name: resources.CredentialsSecretName(inst)}, creds); err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{}
	for _, key := range []string{resources.SecretKeyUserIDHMACSecret, resources.SecretKeyDefaultBucketHMACSecret} {
		if len(creds.Data[key]) == 0 {
			t.Fatalf("credentials Secret %s has no %s", creds.Name, key)
		}
		secrets[key] = creds.Data[key]
	}
	return secrets
}

// restoreInto moves source as a user would: its HMAC secrets carried into the credentials
// Secret of a new instance of the README's sample, named name in namespace ns, which starts from
// the backup from; then checks the new instance serves what source served.
func restoreInto(t *testing.T, source *v1alpha1.KintoInstance, ns, name string, from v1alpha1.BackupSource, want servedData) {
	t.Helper()
	carryHMACSecrets(t, source, ns, name)
	restored := applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Name = name
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &from}
	})
	checkRestored(t, restored, source, want)
}

// carryHMACSecrets does what a user moving an instance does before creating the new one: creates
// its credentials Secret, in namespace ns, with the source's HMAC secrets and nothing else.
func carryHMACSecrets(t *testing.T, source *v1alpha1.KintoInstance, ns, instance string) {
	t.Helper()
	target := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: instance}}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.CredentialsSecretName(target)},
		Data:       hmacSecrets(t, source),
	}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatalf("creating the credentials Secret of %s: %v", instance, err)
	}
}

// backupCronJob is the instance's backup CronJob.
func backupCronJob(t *testing.T, inst *v1alpha1.KintoInstance) *batchv1.CronJob {
	t.Helper()
	cronJob := &batchv1.CronJob{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: inst.Namespace, Name: resources.BackupCronJobName(inst)}, cronJob); err != nil {
		t.Fatalf("the backup CronJob: %v", err)
	}
	return cronJob
}

// waitBackupCompleted waits until the KintoBackup ns/name, which may not exist yet, has
// completed, and returns it; a failed backup fails the test at once with its error.
func waitBackupCompleted(t *testing.T, ns, name string) *v1alpha1.KintoBackup {
	t.Helper()
	backup := &v1alpha1.KintoBackup{}
	var phases []v1alpha1.BackupPhase
	kintotest.Eventually(t, backupTimeout, pollInterval, fmt.Sprintf("KintoBackup %s/%s Completed", ns, name), func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, backup); err != nil {
			return false, err.Error()
		}
		if len(phases) == 0 || phases[len(phases)-1] != backup.Status.Phase {
			phases = append(phases, backup.Status.Phase)
		}
		if backup.Status.Phase == v1alpha1.BackupFailed {
			t.Fatalf("KintoBackup %s failed: %s", name, backup.Status.Error)
		}
		return backup.Status.Phase == v1alpha1.BackupCompleted, fmt.Sprintf("phases %v, error %q", phases, backup.Status.Error)
	})
	t.Logf("KintoBackup %s went through phases %v: %s, %d bytes", name, phases, backup.Status.Location, backup.Status.Size)
	return backup
}

// checkCompletedBackup checks what every completed backup reports, whatever its destination.
func checkCompletedBackup(t *testing.T, backup *v1alpha1.KintoBackup) {
	t.Helper()
	s := backup.Status
	if !dumpFilePattern.MatchString(s.File) {
		t.Errorf("KintoBackup %s names its dump %q, want <UTC time>.dump", backup.Name, s.File)
	}
	if s.Size <= 0 {
		t.Errorf("KintoBackup %s reports a size of %d bytes", backup.Name, s.Size)
	}
	if sum, err := hex.DecodeString(s.SHA256); err != nil || len(sum) != 32 || strings.ToLower(s.SHA256) != s.SHA256 {
		t.Errorf("KintoBackup %s reports sha256 %q, want 64 lower-case hexadecimal digits", backup.Name, s.SHA256)
	}
	if s.CompletedAt == nil {
		t.Errorf("KintoBackup %s is Completed with no completedAt", backup.Name)
	}
	if s.JobName != backup.Name {
		t.Errorf("KintoBackup %s was taken by Job %q, want the Job of its name", backup.Name, s.JobName)
	}
	if s.Error != "" {
		t.Errorf("KintoBackup %s is Completed with error %q", backup.Name, s.Error)
	}
}

// waitLastBackup waits until the instance reports the backup as its last one, with BackupHealthy
// true.
func waitLastBackup(t *testing.T, inst *v1alpha1.KintoInstance, backup *v1alpha1.KintoBackup) {
	t.Helper()
	got := &v1alpha1.KintoInstance{}
	kintotest.Eventually(t, time.Minute, pollInterval, fmt.Sprintf("instance %s reporting backup %s", inst.Name, backup.Name), func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), got); err != nil {
			return false, err.Error()
		}
		last := got.Status.LastBackup
		healthy := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBackupHealthy)
		done := last != nil && last.Name == backup.Name && last.Location == backup.Status.Location &&
			last.Size == backup.Status.Size && backup.Status.CompletedAt != nil && last.CompletedAt.Equal(backup.Status.CompletedAt) &&
			healthy != nil && healthy.Status == metav1.ConditionTrue && healthy.Reason == "BackedUp"
		return done, fmt.Sprintf("lastBackup %+v; %s", last, describeStatus(got))
	})
}

// describeBackups is the namespace's KintoBackups in one line, for failure messages.
func describeBackups(t *testing.T, ns string) string {
	t.Helper()
	var backups v1alpha1.KintoBackupList
	if err := k8s.List(context.Background(), &backups, client.InNamespace(ns)); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, kb := range backups.Items {
		fmt.Fprintf(&b, "%s %v (%s: %s, error %q); ", kb.Name, kb.Labels, kb.Spec.Instance, kb.Status.Phase, kb.Status.Error)
	}
	return b.String()
}

// s3Bucket is a bucket of S3-compatible object storage that both the cluster's pods and this
// process reach, with a folder of the test's own.
type s3Bucket struct {
	endpoint        string
	name            string
	insecure        bool
	region          string
	accessKeyID     string
	secretAccessKey string
	// prefix is the test's folder of the bucket.
	prefix string
}

// The S3 server of the backup tests when they run on another cluster than the local one:
// endpoint (host:port for TLS, http://host:port for plain http), an existing bucket, and an
// access key allowed to write, list and delete there. The tests work in a folder of their own.
const (
	s3EndpointEnv        = "E2E_S3_ENDPOINT"
	s3BucketEnv          = "E2E_S3_BUCKET"
	s3RegionEnv          = "E2E_S3_REGION"
	s3AccessKeyIDEnv     = "E2E_S3_ACCESS_KEY_ID"
	s3SecretAccessKeyEnv = "E2E_S3_SECRET_ACCESS_KEY"
)

// s3CredentialsSecret is the Secret holding the bucket's access key in a test's namespace.
const s3CredentialsSecret = "backup-s3"

// newS3Bucket is the bucket of $E2E_S3_ENDPOINT when it is set. Otherwise, on the local cluster,
// it starts versitygw ($VERSITYGW_BIN) on the node's address, which pods reach, and creates a
// bucket there; on another cluster (USE_EXISTING_CLUSTER=true), where this host has no address
// pods are known to reach, it skips the test. Objects left in the folder are deleted at the end.
func newS3Bucket(t *testing.T) *s3Bucket {
	t.Helper()
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	bucket := &s3Bucket{prefix: "kinto-operator-e2e/" + hex.EncodeToString(suffix)}
	switch {
	case os.Getenv(s3EndpointEnv) != "":
		bucket.endpoint = os.Getenv(s3EndpointEnv)
		bucket.insecure = strings.HasPrefix(bucket.endpoint, "http://")
		bucket.region = os.Getenv(s3RegionEnv)
		for env, value := range map[string]*string{s3BucketEnv: &bucket.name, s3AccessKeyIDEnv: &bucket.accessKeyID, s3SecretAccessKeyEnv: &bucket.secretAccessKey} {
			if *value = os.Getenv(env); *value == "" {
				t.Fatalf("%s is set but %s is not", s3EndpointEnv, env)
			}
		}
	case os.Getenv("USE_EXISTING_CLUSTER") == "true":
		t.Skipf("no S3 server for the cluster's pods: on a cluster other than the local one, set %s, %s, %s and %s to a bucket that both this host and the pods reach",
			s3EndpointEnv, s3BucketEnv, s3AccessKeyIDEnv, s3SecretAccessKeyEnv)
	default:
		server := s3testserver.Start(t, s3testserver.Options{Host: nodeAddress(t)})
		bucket.endpoint, bucket.insecure = server.Endpoint, true
		bucket.name, bucket.accessKeyID, bucket.secretAccessKey = "kinto-backups", server.AccessKeyID, server.SecretAccessKey
		server.CreateBucket(t, bucket.name)
	}
	t.Logf("backups go to %s", bucket.config())
	t.Cleanup(func() {
		objects, err := objectstore.List(context.Background(), bucket.config())
		if err == nil {
			var keys []string
			for _, o := range objects {
				keys = append(keys, o.Key)
			}
			err = objectstore.Delete(context.Background(), bucket.config(), keys...)
		}
		if err != nil {
			t.Logf("cleaning the test's folder of the bucket: %v", err)
		}
	})
	return bucket
}

// nodeAddress is the InternalIP of the local cluster's single node, which the pods reach: an
// address of this process, which hack/e2e.sh runs in the node's network namespace.
func nodeAddress(t *testing.T) string {
	t.Helper()
	var nodes corev1.NodeList
	if err := k8s.List(context.Background(), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 1 {
		t.Fatalf("%d nodes, want the local cluster's single one", len(nodes.Items))
	}
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	t.Fatalf("node %s has no InternalIP among %v", nodes.Items[0].Name, nodes.Items[0].Status.Addresses)
	return ""
}

// config is the objectstore configuration of the test's folder, for this process.
func (b *s3Bucket) config() objectstore.Config {
	return objectstore.Config{
		Endpoint:        b.endpoint,
		Bucket:          b.name,
		Prefix:          b.prefix,
		Region:          b.region,
		Insecure:        b.insecure,
		AccessKeyID:     b.accessKeyID,
		SecretAccessKey: b.secretAccessKey,
	}
}

// connection is how an instance of namespace ns reaches the bucket: the access key from a Secret
// of ns, created here the first time.
func (b *s3Bucket) connection(t *testing.T, ns string) v1alpha1.S3Connection {
	t.Helper()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s3CredentialsSecret},
		StringData: map[string]string{"access-key-id": b.accessKeyID, "secret-access-key": b.secretAccessKey},
	}
	if err := k8s.Create(context.Background(), secret); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return v1alpha1.S3Connection{
		Endpoint: b.endpoint,
		Bucket:   b.name,
		Region:   b.region,
		Insecure: b.insecure,
		Credentials: v1alpha1.S3Credentials{
			AccessKeyID:     v1alpha1.SecretKeyRef{Name: s3CredentialsSecret, Key: "access-key-id"},
			SecretAccessKey: v1alpha1.SecretKeyRef{Name: s3CredentialsSecret, Key: "secret-access-key"},
		},
	}
}

// checkHolds checks that the instance's folder of the bucket holds the backup's dump, and nothing
// else, with the size and checksum the KintoBackup reports.
func (b *s3Bucket) checkHolds(t *testing.T, inst *v1alpha1.KintoInstance, backup *v1alpha1.KintoBackup) {
	t.Helper()
	folder := b.config()
	folder.Prefix = dumps.InstancePrefix(dumps.NamespaceFolder(b.prefix, inst.Namespace), inst.Name)
	objects, err := objectstore.List(context.Background(), folder)
	if err != nil {
		t.Fatal(err)
	}
	if len(objects) != 1 || objects[0].Key != backup.Status.Key || objects[0].Size != backup.Status.Size {
		t.Errorf("the bucket's folder %s holds %+v, want only %s of %d bytes", folder.Prefix, objects, backup.Status.Key, backup.Status.Size)
	}
	stored, err := objectstore.Stat(context.Background(), b.config(), backup.Status.Key)
	if err != nil {
		t.Fatal(err)
	}
	if stored.SHA256 != backup.Status.SHA256 {
		t.Errorf("object %s is stored with sha256 %q, its KintoBackup reports %s", backup.Status.Key, stored.SHA256, backup.Status.SHA256)
	}
}
