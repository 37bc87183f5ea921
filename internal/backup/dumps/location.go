// Where dumps are: in a bucket, <prefix>/<namespace>/<instance>/<name>; on a backup volume,
// <name> at its root. Status shows either as a location URL.

package dumps

import (
	"path"
	"strings"
	"time"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// InstancePrefix is the folder holding the dumps of one instance: "<prefix>/<instance>/", or
// "<instance>/" when prefix is empty. Slashes around prefix are ignored.
func InstancePrefix(prefix, instance string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return instance + "/"
	}
	return prefix + "/" + instance + "/"
}

// KeyFor is the key of the dump of instance taken at t: the dump's name (FileName) in the
// instance's folder, such as "<prefix>/<instance>/20261126T030000Z.dump". Keys of one folder
// sort by time, as the names do; two dumps of the same instance taken in the same second get the
// same key.
func KeyFor(prefix, instance string, t time.Time) string {
	return InstancePrefix(prefix, instance) + FileName(t)
}

// ParseKeyTime returns the time the key of a dump carries in its last segment
// (ParseFileName), and false for any other key.
func ParseKeyTime(key string) (time.Time, bool) {
	return ParseFileName(key[strings.LastIndex(key, "/")+1:])
}

// NamespaceFolder is the folder of a bucket that holds the dumps of a namespace's instances, each
// in a folder of its own name: <prefix>/<namespace>. Instances of one name in two namespaces
// may share a bucket and prefix (a co-op's tenants do) without pruning each other's dumps.
func NamespaceFolder(prefix, namespace string) string {
	return path.Join(prefix, namespace)
}

// Location is how status shows where a dump is: "pvc://<claim>/<file>" or
// "s3://<bucket>/<key>".
func Location(dest *v1alpha1.BackupDestination, claimName, file, key string) string {
	if dest != nil && dest.S3 != nil {
		return "s3://" + dest.S3.Bucket + "/" + key
	}
	return "pvc://" + claimName + "/" + file
}
