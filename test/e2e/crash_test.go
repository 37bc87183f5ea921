//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The crash test's size (make test-crash sets E2E_CRASH=1; the other variables are optional).
const (
	crashEnv          = "E2E_CRASH"
	crashInstancesEnv = "E2E_CRASH_INSTANCES"
	crashKillsEnv     = "E2E_CRASH_KILLS"
)

// crashReadyTimeout bounds an instance's way to Ready in the crash test, where many start at
// once on a small machine while the operator keeps being killed.
const crashReadyTimeout = 20 * time.Minute

// crashRoles are what the crash test does with an instance, each while the operator is killed.
var crashRoles = []string{"retain", "upgrade", "backup", "restore", "delete", "snapshot"}

// TestOperatorSurvivesKills kills the operator with SIGKILL at random moments while instances
// are provisioned, backed up, restored, upgraded and deleted under each policy (make
// test-crash: 30 instances and 20 kills by default). Every instance reaches its end state, no
// Job runs twice for one intent (each Job name is created once), no credentials change, no
// backup fails, and the bucket holds exactly the dumps the KintoBackups record.
func TestOperatorSurvivesKills(t *testing.T) {
	if os.Getenv(crashEnv) != "1" {
		t.Skipf("the crash test runs with %s=1 (make test-crash)", crashEnv)
	}
	instances, kills := envInt(t, crashInstancesEnv, 30), envInt(t, crashKillsEnv, 20)
	bucket := newS3Bucket(t)
	namespaces := make([]string, 5)
	for i := range namespaces {
		namespaces[i] = newNamespace(t)
	}
	jobs := recordJobCreations(t, namespaces)

	ctx, stopKilling := context.WithCancel(context.Background())
	killed := make(chan int)
	go func() { killed <- killOperator(ctx, t, kills) }()

	var mu sync.Mutex
	creds := map[types.NamespacedName]string{}
	recordCredentials := func(t *testing.T, inst *v1alpha1.KintoInstance) {
		mu.Lock()
		defer mu.Unlock()
		creds[client.ObjectKeyFromObject(inst)] = credentialsDigest(t, inst.Namespace, inst.Name)
	}
	start := time.Now()
	t.Run("instances", func(t *testing.T) {
		for i := range instances {
			role := crashRoles[i%len(crashRoles)]
			ns := namespaces[i%len(namespaces)]
			t.Run(fmt.Sprintf("%s-%02d", role, i), func(t *testing.T) {
				t.Parallel()
				crashRole(t, role, ns, fmt.Sprintf("c%02d", i), bucket, recordCredentials)
			})
		}
	})
	scenario := time.Since(start)
	stopKilling()
	done := <-killed
	t.Logf("the scenario took %s; the operator was killed %d times during it", scenario.Round(time.Second), done)
	if done < kills {
		t.Errorf("the operator was killed %d times, want %d: the scenario ended first", done, kills)
	}

	// After the last kill, every instance still there converges again with the same credentials.
	for key, digest := range creds {
		inst := &v1alpha1.KintoInstance{}
		switch err := k8s.Get(context.Background(), key, inst); {
		case apierrors.IsNotFound(err):
		case err != nil:
			t.Fatal(err)
		default:
			waitReadyWithin(t, inst, crashReadyTimeout)
		}
		secret := &corev1.Secret{}
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: key.Namespace, Name: resources.CredentialsSecretName(&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: key.Name}})}, secret)
		if apierrors.IsNotFound(err) {
			continue // deleted with its instance under the Delete policy, which its role checked
		}
		if got := credentialsDigest(t, key.Namespace, key.Name); got != digest {
			t.Errorf("the credentials of %s changed", key)
		}
	}

	created := jobs()
	twice := 0
	for name, uids := range created {
		if len(uids) > 1 {
			twice++
			t.Errorf("Job %s was created %d times", name, len(uids))
		}
	}
	t.Logf("Jobs: %d created, %d names created more than once; credentials checked: %d", len(created), twice, len(creds))

	var backups v1alpha1.KintoBackupList
	if err := k8s.List(context.Background(), &backups); err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, b := range backups.Items {
		if !slices.Contains(namespaces, b.Namespace) {
			continue
		}
		switch b.Status.Phase {
		case v1alpha1.BackupCompleted:
			recorded[b.Status.Key] = true
		default:
			t.Errorf("KintoBackup %s/%s is %s after the scenario: %s", b.Namespace, b.Name, b.Status.Phase, b.Status.Error)
		}
	}
	stored, err := listFolder(bucket)
	if err != nil {
		t.Fatal(err)
	}
	for key := range recorded {
		if !stored[key] {
			t.Errorf("dump %s, recorded by a Completed KintoBackup, is not in the bucket", key)
		}
	}
	for key := range stored {
		if !recorded[key] {
			t.Errorf("dump %s is in the bucket with no KintoBackup recording it", key)
		}
	}
	t.Logf("dumps: %d recorded, %d stored", len(recorded), len(stored))
}

// crashRole takes the instance ns/name through role, checking its end state.
func crashRole(t *testing.T, role, ns, name string, bucket *s3Bucket, recordCredentials func(*testing.T, *v1alpha1.KintoInstance)) {
	withS3 := func(i *v1alpha1.KintoInstance) {
		i.Spec.Backup = &v1alpha1.BackupSpec{
			Schedule: "0 3 1 1 *", // no scheduled run during the test
			Destination: &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{
				S3Connection: bucket.connection(t, ns),
				Prefix:       bucket.prefix,
			}},
		}
	}
	inst := applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Name = name
		// Small requests: the built-in ones (50m per pod) would not fit thirty instances on a
		// two-core node, and the scheduler, not the operator, would hold the test.
		small := &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}
		i.Spec.Resources = small
		i.Spec.Database = &v1alpha1.DatabaseSpec{Managed: &v1alpha1.ManagedDatabase{Resources: small.DeepCopy()}}
		switch role {
		case "retain":
			i.Spec.DeletionPolicy = v1alpha1.DeletionPolicyRetain
		case "upgrade":
			i.Spec.Version = previousKintoVersion
		case "backup", "restore":
			withS3(i)
		case "delete":
			i.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete
		case "snapshot":
			withS3(i)
			i.Spec.DeletionPolicy = v1alpha1.DeletionPolicySnapshot
		}
	})
	inst = waitReadyWithin(t, inst, crashReadyTimeout)
	recordCredentials(t, inst)

	switch role {
	case "retain":
		deleteAndWait(t, inst)
		for _, kept := range []client.Object{
			&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.DataVolumeClaimName(inst)}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.CredentialsSecretName(inst)}},
		} {
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(kept), kept); err != nil || kept.GetDeletionTimestamp() != nil {
				t.Errorf("%T %s was not kept under the Retain policy: %v", kept, kept.GetName(), err)
			}
		}
	case "upgrade":
		patch := client.MergeFrom(inst.DeepCopy())
		inst.Spec.Version = v1alpha1.DefaultKintoVersion
		if err := k8s.Patch(context.Background(), inst, patch); err != nil {
			t.Fatal(err)
		}
		waitReadyWithin(t, inst, crashReadyTimeout)
	case "backup":
		backup := &v1alpha1.KintoBackup{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-on-demand"},
			Spec:       v1alpha1.KintoBackupSpec{Instance: name},
		}
		if err := k8s.Create(context.Background(), backup); err != nil {
			t.Fatal(err)
		}
		waitBackupCompleted(t, ns, backup.Name)
	case "restore":
		data := populate(t, inst)
		backup := &v1alpha1.KintoBackup{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-source"},
			Spec:       v1alpha1.KintoBackupSpec{Instance: name},
		}
		if err := k8s.Create(context.Background(), backup); err != nil {
			t.Fatal(err)
		}
		waitBackupCompleted(t, ns, backup.Name)
		restoreInto(t, inst, ns, name+"-restored", v1alpha1.BackupSource{BackupName: backup.Name}, data)
		restored := &v1alpha1.KintoInstance{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name + "-restored"}, restored); err != nil {
			t.Fatal(err)
		}
		recordCredentials(t, restored)
	case "delete":
		deleteAndWait(t, inst)
		// The garbage collector deletes the volume once the instance is gone.
		kintotest.Eventually(t, time.Minute, pollInterval, "the database volume of "+name+" deleted under the Delete policy", func() (bool, string) {
			claim := &corev1.PersistentVolumeClaim{}
			err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.DataVolumeClaimName(inst)}, claim)
			return apierrors.IsNotFound(err) || (err == nil && claim.DeletionTimestamp != nil), fmt.Sprint(err)
		})
	case "snapshot":
		deleteAndWait(t, inst)
		waitBackupCompleted(t, ns, resources.FinalBackupName(inst))
	}
}

// deleteAndWait deletes the instance and waits until it is gone.
func deleteAndWait(t *testing.T, inst *v1alpha1.KintoInstance) {
	t.Helper()
	if err := k8s.Delete(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	kintotest.Eventually(t, backupTimeout, pollInterval, fmt.Sprintf("instance %s gone", inst.Name), func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), &v1alpha1.KintoInstance{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// credentialsDigest identifies the content of the instance's credentials Secret.
func credentialsDigest(t *testing.T, ns, instance string) string {
	t.Helper()
	secret := &corev1.Secret{}
	name := resources.CredentialsSecretName(&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: instance}})
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, secret); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range secret.Data {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(h, "%s=%x;", k, secret.Data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// recordJobCreations watches the Jobs of the namespaces from now on, and returns a function
// giving the UIDs each Job name was created with.
func recordJobCreations(t *testing.T, namespaces []string) func() map[string][]types.UID {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	watcher, err := client.NewWithWatch(cfg, client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	created := map[string][]types.UID{}
	for _, ns := range namespaces {
		w, err := watcher.Watch(context.Background(), &batchv1.JobList{}, client.InNamespace(ns))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		go func() {
			for e := range w.ResultChan() {
				job, ok := e.Object.(*batchv1.Job)
				if !ok || e.Type != watch.Added {
					continue
				}
				mu.Lock()
				name := job.Namespace + "/" + job.Name
				if !slices.Contains(created[name], job.UID) {
					created[name] = append(created[name], job.UID)
				}
				mu.Unlock()
			}
		}()
	}
	return func() map[string][]types.UID {
		mu.Lock()
		defer mu.Unlock()
		return created
	}
}

// killOperator sends SIGKILL to the operator's process kills times, at random moments 5 to 30
// seconds after it runs again, until ctx ends; it returns how many kills it made. A container
// that kubelet holds in its crash back-off is replaced by deleting its pod, so that twenty kills
// fit in a test run.
func killOperator(ctx context.Context, t *testing.T, kills int) int {
	done := 0
	for done < kills {
		if _, err := waitOperatorProcess(ctx, t); err != nil {
			return done
		}
		select {
		case <-ctx.Done():
			return done
		case <-time.After(5*time.Second + rand.N(25*time.Second)):
		}
		// The process found before the pause may have been replaced since.
		pid, err := operatorProcess()
		if err != nil || pid == 0 {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Logf("killing the operator (pid %d): %v", pid, err)
			continue
		}
		done++
		t.Logf("kill %d: SIGKILL to the operator (pid %d)", done, pid)
	}
	return done
}

// waitOperatorProcess waits until the operator runs, replacing a pod held in the crash back-off.
func waitOperatorProcess(ctx context.Context, t *testing.T) (int, error) {
	for {
		if pid, err := operatorProcess(); err == nil && pid != 0 {
			return pid, nil
		}
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, client.InNamespace(operatorNamespace), client.MatchingLabels{"app.kubernetes.io/name": "kinto-operator"}); err == nil {
			for _, p := range pods.Items {
				for _, s := range p.Status.ContainerStatuses {
					if s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" {
						t.Logf("operator pod %s in CrashLoopBackOff: deleting it", p.Name)
						_ = k8s.Delete(ctx, &p, client.GracePeriodSeconds(0))
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// operatorProcess finds the operator's manager process among this machine's processes (the
// local cluster's containers run here): /manager started with --leader-elect, which the
// manager's tool commands in instance pods never are.
func operatorProcess() (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return 0, err
	}
	for _, path := range dirs {
		cmdline, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if len(args) > 1 && filepath.Base(string(args[0])) == "manager" && slices.ContainsFunc(args[1:], func(a []byte) bool { return string(a) == "--leader-elect" }) {
			return strconv.Atoi(filepath.Base(filepath.Dir(path)))
		}
	}
	return 0, nil
}

// listFolder lists the keys of every object of the test's folder of the bucket.
func listFolder(b *s3Bucket) (map[string]bool, error) {
	objects, err := objectstore.List(context.Background(), b.config())
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, o := range objects {
		keys[o.Key] = true
	}
	return keys, nil
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
