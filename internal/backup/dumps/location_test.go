package dumps

import (
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestKeyFor(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		prefix   string
		instance string
		t        time.Time
		want     string
	}{
		{"prefix and instance", "backups", "lug", at, "backups/lug/20261126T030000Z.dump"},
		{"no prefix", "", "lug", at, "lug/20261126T030000Z.dump"},
		{"slashes around the prefix are ignored", "/backups/", "lug", at, "backups/lug/20261126T030000Z.dump"},
		{"nested prefix", "coop/kinto", "lug", at, "coop/kinto/lug/20261126T030000Z.dump"},
		{"the dump's name, in UTC", "b", "lug", time.Date(2026, 11, 26, 4, 0, 0, 0, paris), "b/lug/20261126T030000Z.dump"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := KeyFor(c.prefix, c.instance, c.t); got != c.want {
				t.Errorf("KeyFor(%q, %q, %s) = %q, want %q", c.prefix, c.instance, c.t, got, c.want)
			}
		})
	}
}

func TestParseKeyTime(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		key    string
		want   time.Time
		wantOK bool
	}{
		{KeyFor("backups", "lug", at), at, true},
		{"20261126T030000Z.dump", at, true},
		{"backups/lug/notes.txt", time.Time{}, false},
		{"backups/lug/.20261126T030000Z.dump.partial", time.Time{}, false},
		{"backups/lug/", time.Time{}, false},
		{"backups/lug/20261126T030000Z.dump/", time.Time{}, false},
	}
	for _, c := range cases {
		got, ok := ParseKeyTime(c.key)
		if ok != c.wantOK || !got.Equal(c.want) {
			t.Errorf("ParseKeyTime(%q) = %s, %t; want %s, %t", c.key, got, ok, c.want, c.wantOK)
		}
	}
}

func TestInstancePrefix(t *testing.T) {
	cases := map[[2]string]string{
		{"backups", "lug"}:    "backups/lug/",
		{"backups/", "lug"}:   "backups/lug/",
		{"", "lug"}:           "lug/",
		{"/", "lug"}:          "lug/",
		{"a/b", "lug-shared"}: "a/b/lug-shared/",
	}
	for in, want := range cases {
		if got := InstancePrefix(in[0], in[1]); got != want {
			t.Errorf("InstancePrefix(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

func TestLocation(t *testing.T) {
	volume := &v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{}}
	s3 := &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{S3Connection: v1alpha1.S3Connection{Bucket: "kinto-backups"}, Prefix: "coop"}}
	cases := []struct {
		name         string
		dest         *v1alpha1.BackupDestination
		wantLocation string
	}{
		{"volume", volume, "pvc://notes-backups/20261126T030000Z.dump"},
		{"S3", s3, "s3://kinto-backups/coop/tenants/notes/20261126T030000Z.dump"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Location(tc.dest, "notes-backups", "20261126T030000Z.dump", "coop/tenants/notes/20261126T030000Z.dump")
			if got != tc.wantLocation {
				t.Errorf("location %q, want %q", got, tc.wantLocation)
			}
		})
	}
}
