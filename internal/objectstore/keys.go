package objectstore

import (
	"strings"
	"time"
)

// keyTimeLayout is the UTC basic ISO 8601 form: fixed width and most significant field first, so
// the lexical order of keys is their time order (for years 1000 to 9999), which is how S3 lists.
const keyTimeLayout = "20060102T150405Z"

// dumpSuffix ends the name of every dump (pg_dump custom format).
const dumpSuffix = ".dump"

// InstancePrefix is the folder holding the dumps of one instance: "<prefix>/<instance>/", or
// "<instance>/" when prefix is empty. Slashes around prefix are ignored.
func InstancePrefix(prefix, instance string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return instance + "/"
	}
	return prefix + "/" + instance + "/"
}

// KeyFor is the key of the dump of instance taken at t, such as
// "<prefix>/<instance>/20261126T030000Z.dump". The time is written in UTC to the second; two
// dumps of the same instance taken in the same second get the same key.
func KeyFor(prefix, instance string, t time.Time) string {
	return InstancePrefix(prefix, instance) + t.UTC().Format(keyTimeLayout) + dumpSuffix
}

// ParseKeyTime returns the time a key made by KeyFor carries, and false for any other key.
func ParseKeyTime(key string) (time.Time, bool) {
	name := key[strings.LastIndex(key, "/")+1:]
	stamp, ok := strings.CutSuffix(name, dumpSuffix)
	if !ok || len(stamp) != len(keyTimeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(keyTimeLayout, stamp)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
