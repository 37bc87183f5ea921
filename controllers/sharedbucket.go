// A hosting class's S3 destination is one bucket shared by every tenant: what an instance may
// reach there is confined to its own namespace's folder.

package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// reasonRestoreKeyRefused is Restored's reason when the dump to restore lies in another tenant's
// folder of the class's shared bucket.
const reasonRestoreKeyRefused = "RestoreKeyRefused"

// sharedBucket is the S3 destination the instance's hosting class shares between tenants, nil
// when its class has none (or it has no class).
func sharedBucket(ctx context.Context, c client.Reader, className string) (*v1alpha1.S3Destination, error) {
	if className == "" {
		return nil, nil
	}
	class := &v1alpha1.KintoHostingClass{}
	if err := c.Get(ctx, client.ObjectKey{Name: className}, class); err != nil {
		return nil, err
	}
	return hostingclass.SharedBucket(class), nil
}

// restoreKeyRefusal says why src may not be restored into inst, "" when it may: a dump of the
// class's shared bucket outside the namespace's folder is another tenant's.
func restoreKeyRefusal(shared *v1alpha1.S3Destination, inst *v1alpha1.KintoInstance, src *resources.RestoreSource) string {
	if src == nil || src.S3 == nil {
		return ""
	}
	from := inst.Spec.Bootstrap.FromBackup
	field := "spec.bootstrap.fromBackup.s3.key"
	if from.S3 == nil {
		field = fmt.Sprintf("the key of KintoBackup %q (status.key), which spec.bootstrap.fromBackup.backupName names,", from.BackupName)
	}
	return hostingclass.KeyOutsideTenantFolder(shared, inst.Namespace, src.S3, src.Key, field)
}
