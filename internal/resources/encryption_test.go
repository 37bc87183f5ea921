package resources

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

const (
	testRecipientA = "age1lscm3ym4j5lcwywsyvd74g07k7vjn3ca0t47tp0hzga9p9g8venskvlq3k"
	testRecipientB = "age1g6y8gpsxy8eugln87skrzztgpdutjg2z6lzswv3vj2ln0qelcstqjdx2ar"
)

func withEncryption(i *v1alpha1.KintoInstance) {
	i.Spec.Backup.Encryption = &v1alpha1.BackupEncryption{Recipients: []v1alpha1.AgeRecipient{testRecipientA, testRecipientB}}
}

// mountOf is the mount of volume in c, nil when c does not mount it.
func mountOf(c *corev1.Container, volume string) *corev1.VolumeMount {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return &m
		}
	}
	return nil
}

// TestEncryptedBackupPod: with spec.backup.encryption, the upload step of every destination gets
// the public keys and may write its sealed copy beside the dump; on a volume, the dump waits in
// scratch space and only the upload step mounts the backup volume, whatever the destination
// nothing else gets the keys.
func TestEncryptedBackupPod(t *testing.T) {
	grant := &ObjectGrant{Key: "coop/tenants/notes/20261126T030000Z.dump", URL: testUploadURL}
	cases := []struct {
		name  string
		inst  *v1alpha1.KintoInstance
		grant *ObjectGrant
	}{
		{"volume", newInstance(withVolumeBackup, withEncryption), nil},
		{"s3", newInstance(withS3Backup, withEncryption), nil},
		{"class bucket", newInstance(withS3Backup, withEncryption), grant},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := BackupJob(c.inst, newBackup(c.inst), testOperatorImage, c.grant).Spec.Template.Spec
			checkJobSteps(t, pod)
			upload := podContainer(pod, stepUpload)
			if upload == nil || BackupResultContainerOf(pod) != stepUpload {
				t.Fatalf("steps %q: want an upload step reporting the result", podSteps(pod))
			}
			if v, _ := envValue(upload, backupenv.Recipients); v != testRecipientA+"\n"+testRecipientB {
				t.Errorf("upload's %s = %q, want both keys, one a line", backupenv.Recipients, v)
			}
			if m := mountOf(upload, dumpVolume); m == nil || m.ReadOnly {
				t.Errorf("upload mounts the dumps %+v, want writable (the sealed copy)", m)
			}
			for _, step := range slices.Concat(pod.InitContainers, pod.Containers) {
				if _, ok := envValue(&step, backupenv.Recipients); ok && step.Name != stepUpload {
					t.Errorf("step %s gets the keys", step.Name)
				}
				if mountOf(&step, backupVolume) != nil && step.Name != stepUpload {
					t.Errorf("step %s mounts the backup volume", step.Name)
				}
			}
			dumps := podVolume(pod, dumpVolume)
			if dumps == nil || dumps.EmptyDir == nil {
				t.Errorf("the dump step writes to %+v, want scratch space, not the backup volume", dumps)
			}
			if c.name == "volume" {
				claim := podVolume(pod, backupVolume)
				if claim == nil || claim.PersistentVolumeClaim == nil || claim.PersistentVolumeClaim.ClaimName != BackupVolumeClaimName(c.inst) {
					t.Errorf("backup volume %+v", claim)
				}
				if want := storeInVolumeCommand(dumpDir, backupDir); !slices.Equal(upload.Command, want) {
					t.Errorf("upload runs %q, want %q", upload.Command, want)
				}
			}
		})
	}
	// Without encryption, a volume backup stays one step writing to the volume.
	plain := BackupJob(newInstance(withVolumeBackup), newBackup(newInstance(withVolumeBackup)), testOperatorImage, nil).Spec.Template.Spec
	if podContainer(plain, stepUpload) != nil || podVolume(plain, dumpVolume).PersistentVolumeClaim == nil {
		t.Errorf("a plain volume backup: steps %q", podSteps(plain))
	}
}

// TestRestoreJobWithDecryptionKey: the private key is a file of a Secret volume mounted in the
// download step alone (never in the environment, never in the restore step, which runs the
// database's image); the restore then checks the dump against the result file the download
// wrote (the plaintext's), not against the record (the ciphertext's).
func TestRestoreJobWithDecryptionKey(t *testing.T) {
	key := &v1alpha1.SecretKeyRef{Name: "notes-backup-key", Key: "key.txt"}
	inst := newInstance(withVolumeBackup)
	const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name string
		src  RestoreSource
	}{
		{"volume", RestoreSource{VolumeClaimName: "notes-backups", File: "20261126T030000Z.dump", SHA256: sum, DecryptionKey: key, Encryption: &v1alpha1.BackupEncryptionRecord{}}},
		{"s3", RestoreSource{S3: ptr.To(testS3Connection()), Key: "kinto/ns/notes/20261126T030000Z.dump", SHA256: sum, DecryptionKey: key, Encryption: &v1alpha1.BackupEncryptionRecord{}}},
		{"class bucket", RestoreSource{S3: ptr.To(testS3Connection()), Key: "coop/ns/notes/20261126T030000Z.dump", SHA256: sum, DecryptionKey: key,
			Grant: &ObjectGrant{Key: "coop/ns/notes/20261126T030000Z.dump", URL: testDownloadURL}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := RestoreJob(inst, c.src, testOperatorImage).Spec.Template.Spec
			checkJobSteps(t, pod)
			v := podVolume(pod, identityVolume)
			if v == nil || v.Secret == nil || v.Secret.SecretName != key.Name || !slices.Equal(v.Secret.Items, []corev1.KeyToPath{{Key: key.Key, Path: identityFile}}) {
				t.Fatalf("identity volume %+v", v)
			}
			for _, step := range slices.Concat(pod.InitContainers, pod.Containers) {
				mounted := mountOf(&step, identityVolume) != nil
				file, inEnv := envValue(&step, backupenv.IdentityFile)
				if mounted != (step.Name == stepDownload) || inEnv != mounted || (inEnv && file != identityDir+"/"+identityFile) {
					t.Errorf("step %s: key mounted %t, %s=%q; want the download step alone", step.Name, mounted, backupenv.IdentityFile, file)
				}
				for _, e := range step.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == key.Name {
						t.Errorf("step %s: the key in the environment (%s)", step.Name, e.Name)
					}
				}
			}
			restore := podContainer(pod, stepRestore)
			if _, ok := envValue(restore, backupenv.DumpSHA256); ok {
				t.Error("the restore checks the dump against the record of the ciphertext")
			}
			if c.name == "volume" {
				download := podContainer(pod, stepDownload)
				if want := openFromVolumeCommand(backupDir, c.src.File, dumpDir+"/"+c.src.File, sum); download == nil || !slices.Equal(download.Command, want) {
					t.Errorf("steps %q; want a download step running %q", podSteps(pod), want)
				}
				if m := mountOf(download, backupVolume); m == nil || !m.ReadOnly {
					t.Errorf("the download mounts the backup volume %+v, want read-only", m)
				}
			}
		})
	}
}
