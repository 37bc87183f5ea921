package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// sharedBucketClass is a class whose instances back up to one bucket for every tenant.
func sharedBucketClass() v1alpha1.KintoHostingClassSpec {
	return v1alpha1.KintoHostingClassSpec{Backup: &v1alpha1.BackupSpec{Destination: &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{
		Prefix:       "coop",
		S3Connection: sharedBucketConnection("class-s3"),
	}}}}
}

func sharedBucketConnection(secret string) v1alpha1.S3Connection {
	return v1alpha1.S3Connection{
		Endpoint: "https://s3.example.org:9000", Bucket: "coop-backups",
		Credentials: v1alpha1.S3Credentials{
			AccessKeyID:     v1alpha1.SecretKeyRef{Name: secret, Key: "id"},
			SecretAccessKey: v1alpha1.SecretKeyRef{Name: secret, Key: "secret"},
		},
	}
}

func TestRestoreFromAnotherTenantsFolderIsRefused(t *testing.T) {
	ns := newNamespace(t)
	createClass(t, "shared-bucket-"+ns, sharedBucketClass())
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own-s3"},
		StringData: map[string]string{"id": "tenant", "secret": "not-shown"}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	restoring := func(name, endpoint, key string) *v1alpha1.KintoInstance {
		return createInstance(t, ns, name, func(i *v1alpha1.KintoInstance) {
			i.Spec.ClassName = "shared-bucket-" + ns
			conn := sharedBucketConnection("own-s3")
			conn.Endpoint = endpoint
			i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: v1alpha1.BackupSource{S3: &v1alpha1.S3Source{S3Connection: conn, Key: key}}}
		})
	}

	for name, key := range map[string]string{
		"neighbour": "coop/other-tenant/notes/20261126T030000Z.dump",
		"outside":   "elsewhere/" + ns + "/notes/20261126T030000Z.dump",
		"prefix":    "coop/" + ns + "x/notes/20261126T030000Z.dump", // a namespace whose name begins as this one's
	} {
		// The endpoint written otherwise is still the class's bucket.
		inst := restoring(name, "S3.example.org:9000/", key)
		cur := waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "RestoreKeyRefused")
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored)
		if !strings.Contains(c.Message, "spec.bootstrap.fromBackup.s3.key") || !strings.Contains(c.Message, key) {
			t.Errorf("%s: Restored message %q names neither the field nor the key", name, c.Message)
		}
		eventually(t, name+": the RestoreKeyRefused warning", func() error {
			if e, ok := eventReasons(t, inst)["RestoreKeyRefused"]; !ok || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "spec.bootstrap.fromBackup.s3.key") {
				return fmt.Errorf("no RestoreKeyRefused warning naming the field among %v", keys(eventReasons(t, inst)))
			}
			return nil
		})
	}

	// The namespace's own folder of the shared bucket, and any key of another bucket, go on.
	own := restoring("own", "https://s3.example.org:9000", "coop/"+ns+"/notes/20261126T030000Z.dump")
	waitForCondition(t, own, v1alpha1.ConditionRestored, metav1.ConditionFalse, "WaitingForDatabase")
	elsewhere := restoring("elsewhere", "https://tenant-s3.example.org", "coop/other-tenant/notes/20261126T030000Z.dump")
	waitForCondition(t, elsewhere, v1alpha1.ConditionRestored, metav1.ConditionFalse, "WaitingForDatabase")
}
