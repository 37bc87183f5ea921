package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// TestEncryptedBackupIsRestoredOnlyWithItsKey: a backup of an instance with
// spec.backup.encryption is recorded as encrypted, for its keys' fingerprints; an instance
// starting from it is refused (condition and event naming spec.bootstrap.fromBackup.decryptionKey,
// no Job) without the key and with another key, and restored once given the right one, which
// only the download step mounts. The leak watch (secretleak_test.go) looks for the private keys
// of these Secrets in every log line, event and status of the run.
func TestEncryptedBackupIsRestoredOnlyWithItsKey(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	alice, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	source := bringUp(t, createInstance(t, ns, "home", func(i *v1alpha1.KintoInstance) {
		withVolumeBackups(7)(i)
		i.Spec.Backup.Encryption = &v1alpha1.BackupEncryption{Recipients: []v1alpha1.AgeRecipient{v1alpha1.AgeRecipient(alice.Recipient().String())}}
	}))
	createBackup(t, ns, "sealed", source.Name, "")
	job := &batchv1.Job{}
	eventually(t, "the backup Job", func() error { return k8s.Get(ctx, key(ns, "sealed"), job) })
	upload := ""
	for _, c := range job.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == backupenv.Recipients {
				upload, _ = c.Name, e.Value
				if e.Value != alice.Recipient().String() {
					t.Errorf("the upload seals for %q, want alice's key", e.Value)
				}
			}
		}
	}
	if upload == "" {
		t.Fatalf("no step of the backup Job is given the public keys: %+v", job.Spec.Template.Spec.Containers)
	}
	fingerprint := encryption.Fingerprint(alice.Recipient())
	result, err := json.Marshal(dumps.Result{File: dumps.FileName(time.Now()), Size: 14900, SHA256: testSHA256,
		Encryption: &dumps.Encryption{Recipients: []string{fingerprint}}})
	if err != nil {
		t.Fatal(err)
	}
	runJob(t, ns, "sealed", upload, string(result), false)
	backup := waitForBackup(t, ns, "sealed", v1alpha1.BackupCompleted)
	if e := backup.Status.Encryption; e == nil || !slices.Equal(e.Recipients, []string{fingerprint}) {
		t.Fatalf("status.encryption = %+v, want the fingerprint %s", e, fingerprint)
	}

	inst := createInstance(t, ns, "moved", func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: "sealed"}}
	})
	markDatabaseReady(t, inst)
	refused := func(reason string, says ...string) {
		t.Helper()
		waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, reason)
		// The reason may be the one before, for the key before: wait for the message.
		eventually(t, "Restored saying why", func() error {
			cur := &v1alpha1.KintoInstance{}
			if err := k8s.Get(ctx, key(ns, inst.Name), cur); err != nil {
				return err
			}
			c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored)
			for _, s := range append(says, "spec.bootstrap.fromBackup.decryptionKey") {
				if c == nil || c.Reason != reason || !strings.Contains(c.Message, s) {
					return fmt.Errorf("Restored %+v does not say %q", c, s)
				}
			}
			return nil
		})
		eventually(t, "the event "+reason, func() error {
			if _, ok := eventReasons(t, inst)[reason]; !ok {
				return apierrors.NewNotFound(corev1.Resource("events"), reason)
			}
			return nil
		})
		if err := k8s.Get(ctx, key(ns, resources.RestoreJobName(inst)), &batchv1.Job{}); !apierrors.IsNotFound(err) {
			t.Errorf("a restore Job exists while the restore is refused: %v", err)
		}
	}
	refused("DecryptionKeyMissing", "is encrypted", fingerprint)

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "moved-key"},
		Data:       map[string][]byte{"key.txt": []byte(mallory.String())},
	}
	if err := k8s.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap.FromBackup.DecryptionKey = &v1alpha1.SecretKeyRef{Name: "moved-key", Key: "key.txt"}
	})
	refused("DecryptionKeyRefused", "is not one of those", fingerprint, encryption.Fingerprint(mallory.Recipient()))

	// The operator labels the Secret it watches: each write starts from the Secret as it is.
	setKey := func(value string) {
		t.Helper()
		eventually(t, "writing the key", func() error {
			if err := k8s.Get(ctx, key(ns, secret.Name), secret); err != nil {
				return err
			}
			secret.Data["key.txt"] = []byte(value)
			return k8s.Update(ctx, secret)
		})
	}
	setKey("AGE-SECRET-KEY-1 pasted badly")
	refused("DecryptionKeyRefused", "line 1 is not an age private key")

	setKey(alice.String())
	restore := &batchv1.Job{}
	eventually(t, "the restore Job", func() error { return k8s.Get(ctx, key(ns, resources.RestoreJobName(inst)), restore) })
	pod := restore.Spec.Template.Spec
	mounted := map[string]bool{}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		for _, m := range c.VolumeMounts {
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "moved-key" {
					mounted[c.Name] = true
				}
			}
		}
	}
	if len(mounted) != 1 || !mounted["download"] {
		t.Errorf("the private key is mounted in %v, want the download step alone", mounted)
	}
	finishJob(t, ns, restore.Name, true)
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionTrue, "Restored")
}
