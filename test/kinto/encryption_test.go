//go:build kinto

package kinto_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The steps of an encrypted backup and of its restore run here as the builders render them
// (resources.BackupJob's upload step, resources.RestoreJob's download and restore steps): the
// operator's binary from the tools volume, the pod's directories mapped into the test's.

// renderedStep is the command and environment of the container name of pod, with the pod's
// directories (dirs: mount path -> the test's directory) mapped, run by the manager binary of
// the tools volume.
func renderedStep(t *testing.T, pod corev1.PodSpec, name string, dirs map[string]string) ([]string, []string) {
	t.Helper()
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		if c.Name != name {
			continue
		}
		command := []string{resources.DumpCommand()[0]}
		for _, a := range c.Command[1:] {
			for from, to := range dirs {
				if rest, ok := strings.CutPrefix(a, from); ok && (rest == "" || rest[0] == '/') {
					a = to + rest
				}
			}
			command = append(command, a)
		}
		var env []string
		for _, e := range c.Env {
			v := e.Value
			for from, to := range dirs {
				if rest, ok := strings.CutPrefix(v, from); ok && (rest == "" || rest[0] == '/') {
					v = to + rest
				}
			}
			env = append(env, e.Name+"="+v)
		}
		return command, env
	}
	t.Fatalf("the pod has no step %s: %+v", name, pod.Containers)
	return nil, nil
}

// TestEncryptedBackupRestore: a real instance's dump, sealed for a member's key by the backup's
// upload step, reaches the backup volume as age ciphertext; the restore refuses it without a
// key and with another key, leaving the new database empty, and restores it with the key: the
// data reads back the same through Kinto.
func TestEncryptedBackupRestore(t *testing.T) {
	t.Parallel()
	alice, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	src := deploy(t, backupInstance("backup-sealed", func(s *v1alpha1.KintoInstanceSpec) {
		s.Backup = &v1alpha1.BackupSpec{Encryption: &v1alpha1.BackupEncryption{Recipients: []v1alpha1.AgeRecipient{v1alpha1.AgeRecipient(alice.Recipient().String())}}}
	}))
	src.migrate()
	srcAPI := newAPI(t, src.startServer())
	recordIDs := kintotest.Populate(t, srcAPI)
	before := kintotest.Snapshot(t, srcAPI, recordIDs)

	// The backup: the dump into scratch space, then the upload step seals it into the volume.
	scratch, volume := src.backupDir(), src.backupDir()
	dumped, _ := src.backup(scratch)
	backupPod := resources.BackupJob(src.inst, &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: "sealed", Namespace: "ns"}}, "operator", nil).Spec.Template.Spec
	termLog := filepath.Join(src.backupDir(), "termination-log")
	command, env := renderedStep(t, backupPod, "upload", map[string]string{"/dumps": scratch, "/backups": volume, corev1.TerminationMessagePathDefault: termLog})
	if run := src.runScript(command, volume, env...); run.err != nil {
		t.Fatalf("the upload step failed (%v):\n%s", run.err, run.out)
	}
	stored, err := os.ReadFile(filepath.Join(volume, dumped.File))
	if err != nil {
		t.Fatal(err)
	}
	if !encryption.IsSealed(stored) || bytes.Contains(stored, []byte("PGDMP")) {
		t.Fatalf("the backup volume holds %q..., want age ciphertext, not a pg_dump file", stored[:24])
	}
	result, err := dumps.ParseResult(mustRead(t, termLog))
	if err != nil || result.Encryption == nil || !slices.Equal(result.Encryption.Recipients, []string{encryption.Fingerprint(alice.Recipient())}) {
		t.Fatalf("the upload reported %+v (%v), want the sealed dump for alice's key", result, err)
	}
	t.Logf("dump of %d bytes sealed into %d bytes for %s", dumped.Size, result.Size, result.Encryption.Recipients)

	dst := deploy(t, backupInstance("backup-unsealed", nil))
	record := &v1alpha1.BackupEncryptionRecord{Recipients: result.Encryption.Recipients}
	source := resources.RestoreSource{VolumeClaimName: "backup-sealed-backups", File: result.File, SHA256: result.SHA256, Encryption: record}

	// Without the key (the operator refuses earlier; the restore step refuses too).
	if run := dst.restore(filepath.Join(volume, result.File), "DUMP_SHA256="+result.SHA256); run.err == nil || !strings.Contains(run.out, "is encrypted (age)") {
		t.Errorf("restore of the sealed dump without a key: %v, want refused saying it is encrypted; output:\n%s", run.err, run.out)
	}
	// With a key: the download step opens it into scratch space, then the restore step.
	restoreWith := func(id *age.X25519Identity) (string, scriptRun) {
		t.Helper()
		keyDir, opened := dst.backupDir(), dst.backupDir()
		writeFileAs(t, dst, filepath.Join(keyDir, "key.txt"), []byte(id.String()+"\n"))
		source.DecryptionKey = &v1alpha1.SecretKeyRef{Name: "key", Key: "key.txt"}
		pod := resources.RestoreJob(dst.inst, source, "operator").Spec.Template.Spec
		command, env := renderedStep(t, pod, "download", map[string]string{"/dumps": opened, "/backups": volume, "/etc/kinto-backup/decryption-key": keyDir})
		run := dst.runScript(command, opened, env...)
		if strings.Contains(run.out, id.String()) {
			t.Errorf("the download step printed the private key")
		}
		return opened, run
	}
	opened, run := restoreWith(mallory)
	if run.err == nil || !strings.Contains(run.out, encryption.ErrWrongKey.Error()) {
		t.Errorf("opening with another key: %v, want refused saying %q; output:\n%s", run.err, encryption.ErrWrongKey, run.out)
	}
	if left := dirNames(t, opened); len(left) != 0 {
		t.Errorf("a refused download left %q", left)
	}
	if got := publicTables(t, dst); got != "" {
		t.Fatalf("refused restores left tables %s", got)
	}

	opened, run = restoreWith(alice)
	if run.err != nil {
		t.Fatalf("opening with the key failed (%v):\n%s", run.err, run.out)
	}
	if run := dst.restore(filepath.Join(opened, result.File)); run.err != nil {
		t.Fatalf("restore of the opened dump failed (%v):\n%s", run.err, run.out)
	}
	dst.migrate()
	dstAPI := newAPI(t, dst.startServer())
	if status, checks := dstAPI.Heartbeat(); status != http.StatusOK {
		t.Fatalf("restored instance's heartbeat: %d %v", status, checks)
	}
	kintotest.CompareSnapshots(t, "the instance restored from the encrypted backup", before, kintotest.Snapshot(t, dstAPI, recordIDs))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
