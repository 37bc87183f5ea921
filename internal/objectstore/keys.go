package objectstore

import (
	"strings"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/dumps"
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

// KeyFor is the key of the dump of instance taken at t: the dump's name (dumps.FileName) in the
// instance's folder, such as "<prefix>/<instance>/20261126T030000Z.dump". Keys of one folder
// sort by time, as the names do; two dumps of the same instance taken in the same second get the
// same key.
func KeyFor(prefix, instance string, t time.Time) string {
	return InstancePrefix(prefix, instance) + dumps.FileName(t)
}

// ParseKeyTime returns the time the key of a dump carries in its last segment
// (dumps.ParseFileName), and false for any other key.
func ParseKeyTime(key string) (time.Time, bool) {
	return dumps.ParseFileName(key[strings.LastIndex(key, "/")+1:])
}
