package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestOwnWrites(t *testing.T) {
	read := func(uid types.UID, version string) *v1alpha1.KintoInstance {
		return &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "notes", UID: uid, ResourceVersion: version}}
	}
	var w ownWrites
	if w.behind(read("a", "1")) {
		t.Fatal("behind before any write")
	}
	// A pass read version 1 and wrote its finalizer (2), then its status (3).
	w.wrote(read("a", "2"), "1")
	w.wrote(read("a", "3"), "2")
	for _, tc := range []struct {
		name string
		read *v1alpha1.KintoInstance
		want bool
	}{
		{"the version the first write replaced", read("a", "1"), true},
		{"the version the second write replaced", read("a", "2"), true},
		{"another instance of the same name, created again", read("b", "1"), false},
	} {
		if got := w.behind(tc.read); got != tc.want {
			t.Errorf("%s: behind = %v, want %v", tc.name, got, tc.want)
		}
	}
	// The other instance's read dropped what was remembered under the name.
	if w.behind(read("a", "1")) {
		t.Error("still behind after a read of a newer instance of the same name")
	}

	w.wrote(read("a", "5"), "4")
	if w.behind(read("a", "5")) {
		t.Error("behind at the written version")
	}
	if w.behind(read("a", "4")) {
		t.Error("behind at a replaced version, after a read showed the cache past it")
	}

	w.wrote(read("a", "7"), "6")
	w.forget(types.NamespacedName{Namespace: "tenant", Name: "notes"})
	if w.behind(read("a", "6")) {
		t.Error("behind after the instance was forgotten")
	}
}
