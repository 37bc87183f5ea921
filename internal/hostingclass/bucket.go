package hostingclass

import (
	"fmt"
	"path"
	"strings"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
)

// SharedBucket is the S3 destination a class gives the instances that set no spec.backup: one
// bucket and prefix for every tenant, each namespace in its own folder. Nil when the class has
// no S3 destination.
func SharedBucket(class *v1alpha1.KintoHostingClass) *v1alpha1.S3Destination {
	if class == nil || class.Spec.Backup == nil || class.Spec.Backup.Destination == nil {
		return nil
	}
	return class.Spec.Backup.Destination.S3
}

// SameBucket says whether conn names the bucket of shared: the same bucket at the same endpoint
// host (the scheme, a trailing slash and the case of the host aside).
func SameBucket(shared *v1alpha1.S3Destination, conn *v1alpha1.S3Connection) bool {
	if shared == nil || conn == nil || shared.Bucket != conn.Bucket {
		return false
	}
	a, errA := objectstore.ParseEndpoint(shared.Endpoint, shared.Insecure)
	b, errB := objectstore.ParseEndpoint(conn.Endpoint, conn.Insecure)
	return errA == nil && errB == nil && strings.EqualFold(a.Host, b.Host)
}

// TenantFolder is the folder of the shared bucket a namespace's dumps live in, ending in "/".
func TenantFolder(shared *v1alpha1.S3Destination, namespace string) string {
	return dumps.NamespaceFolder(shared.Prefix, namespace) + "/"
}

// KeyOutsideTenantFolder says why key, named by field, may not be read or written by the
// instances of namespace, "" when it may: a key of the class's shared bucket must lie in the
// namespace's own folder, as the other tenants' dumps lie beside it. A key of any other bucket
// is the tenant's own business (its own bucket and credentials).
func KeyOutsideTenantFolder(shared *v1alpha1.S3Destination, namespace string, conn *v1alpha1.S3Connection, key, field string) string {
	if !SameBucket(shared, conn) {
		return ""
	}
	folder := TenantFolder(shared, namespace)
	// A cleaned key has no "." or ".." segment to climb out of the folder with.
	if strings.HasPrefix(key, folder) && path.Clean(key) == key {
		return ""
	}
	return fmt.Sprintf("%s %q is in the bucket %s that the hosting class shares between tenants, outside this namespace's folder %s: an instance may only reach its own namespace's dumps there",
		field, key, shared.Bucket, folder)
}
