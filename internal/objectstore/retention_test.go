package objectstore

import (
	"slices"
	"testing"
	"time"
)

func TestExpired(t *testing.T) {
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// backup is the dump of instance lug taken age ago.
	backup := func(age time.Duration) Object {
		return Object{Key: KeyFor("b", "lug", now.Add(-age)), Size: 1}
	}
	// daily is one backup per day for n days, newest first: ages 0, 1d, 2d, ...
	daily := func(n int) []Object {
		var objects []Object
		for i := range n {
			objects = append(objects, backup(time.Duration(i)*day))
		}
		return objects
	}
	cases := []struct {
		name     string
		objects  []Object
		keepLast int
		maxAge   time.Duration
		want     []Object // oldest first
	}{
		{name: "nothing stored", objects: nil, keepLast: 3, maxAge: day},
		{name: "no bound drops nothing", objects: daily(5)},
		{name: "fewer than keepLast", objects: daily(3), keepLast: 5},
		{name: "exactly keepLast", objects: daily(3), keepLast: 3},
		{
			name: "count: the oldest beyond keepLast", objects: daily(5), keepLast: 3,
			want: []Object{backup(4 * day), backup(3 * day)},
		},
		{
			name: "keepLast 1 keeps the newest only", objects: daily(3), keepLast: 1,
			want: []Object{backup(2 * day), backup(day)},
		},
		{
			name: "age: older than maxAge", objects: daily(5), maxAge: 2 * day,
			want: []Object{backup(4 * day), backup(3 * day)},
		},
		{
			name: "age: exactly maxAge old is kept", objects: []Object{backup(0), backup(2 * day), backup(2*day + time.Second)}, maxAge: 2 * day,
			want: []Object{backup(2*day + time.Second)},
		},
		{
			name: "both bounds apply: count is tighter", objects: daily(10), keepLast: 2, maxAge: 5 * day,
			want: []Object{backup(9 * day), backup(8 * day), backup(7 * day), backup(6 * day), backup(5 * day), backup(4 * day), backup(3 * day), backup(2 * day)},
		},
		{
			name: "both bounds apply: age is tighter", objects: daily(10), keepLast: 7, maxAge: 3 * day,
			want: []Object{backup(9 * day), backup(8 * day), backup(7 * day), backup(6 * day), backup(5 * day), backup(4 * day)},
		},
		{
			name: "the newest survives when every backup is too old", objects: []Object{backup(40 * day), backup(45 * day), backup(50 * day)}, maxAge: 30 * day,
			want: []Object{backup(50 * day), backup(45 * day)},
		},
		{
			name: "a single too old backup is kept", objects: []Object{backup(400 * day)}, keepLast: 1, maxAge: day,
		},
		{
			name: "input order does not matter", objects: []Object{backup(3 * day), backup(0), backup(5 * day), backup(day)}, keepLast: 2,
			want: []Object{backup(5 * day), backup(3 * day)},
		},
		{
			name: "negative bounds are no bounds", objects: daily(4), keepLast: -1, maxAge: -day,
		},
		{
			name: "a backup dated in the future (clock skew) is the newest and kept", objects: []Object{backup(-time.Hour), backup(0), backup(day)}, keepLast: 1,
			want: []Object{backup(day), backup(0)},
		},
		{
			name:    "the key's time wins over LastModified (objects copied to another bucket)",
			objects: []Object{withModified(backup(10*day), now), withModified(backup(0), now.Add(-time.Hour))}, keepLast: 1,
			want: []Object{withModified(backup(10*day), now)},
		},
		{
			name:    "LastModified for keys without a time",
			objects: []Object{{Key: "b/lug/old", LastModified: now.Add(-3 * day)}, {Key: "b/lug/new", LastModified: now}}, maxAge: day,
			want: []Object{{Key: "b/lug/old", LastModified: now.Add(-3 * day)}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			input := slices.Clone(c.objects)
			got := Expired(c.objects, c.keepLast, c.maxAge, now)
			if !slices.Equal(got, c.want) {
				t.Errorf("Expired(keepLast %d, maxAge %s) =\n  %v\nwant\n  %v", c.keepLast, c.maxAge, keys(got), keys(c.want))
			}
			if !slices.Equal(input, c.objects) {
				t.Errorf("Expired reordered its input")
			}
		})
	}
}

func withModified(o Object, t time.Time) Object {
	o.LastModified = t
	return o
}

func keys(objects []Object) []string {
	var ks []string
	for _, o := range objects {
		ks = append(ks, o.Key)
	}
	return ks
}
