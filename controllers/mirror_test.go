package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

func createMirror(t testing.TB, ns, name, local, remote string) *v1alpha1.KintoMirror {
	t.Helper()
	m := &v1alpha1.KintoMirror{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.KintoMirrorSpec{
			Local:  v1alpha1.MirrorLocal{Instance: local, Credentials: v1alpha1.KintoCredentials{User: "mirror", Password: &v1alpha1.SecretKeyRef{Name: "mirror", Key: "password"}}},
			Remote: v1alpha1.MirrorRemote{Instance: remote, Credentials: v1alpha1.KintoCredentials{User: "mirror", Password: &v1alpha1.SecretKeyRef{Name: "mirror", Key: "password"}}},
		},
	}
	if err := k8s.Create(context.Background(), m); err != nil {
		t.Fatalf("creating mirror: %v", err)
	}
	return m
}

// waitForMirror waits until the mirror's Ready condition has status and reason, and returns it.
func waitForMirror(t testing.TB, m *v1alpha1.KintoMirror, status metav1.ConditionStatus, reason string) *v1alpha1.KintoMirror {
	t.Helper()
	cur := &v1alpha1.KintoMirror{}
	eventually(t, fmt.Sprintf("mirror Ready %s (%s)", status, reason), func() error {
		get(t, m.Namespace, m.Name, cur)
		c := meta.FindStatusCondition(cur.Status.Conditions, "Ready")
		if c == nil || c.Status != status || c.Reason != reason || cur.Status.ObservedGeneration != cur.Generation {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	return cur
}

// startMirrorRun starts a run of the mirror's CronJob, as the CronJob controller would.
func startMirrorRun(t testing.TB, m *v1alpha1.KintoMirror, name string) {
	t.Helper()
	cj := &batchv1.CronJob{}
	get(t, m.Namespace, resources.MirrorChildName(m), cj)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: m.Namespace, Name: name, Labels: cj.Spec.JobTemplate.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: ptr.To(true)}},
		},
		Spec: cj.Spec.JobTemplate.Spec,
	}
	if err := k8s.Create(context.Background(), job); err != nil {
		t.Fatalf("starting a sync: %v", err)
	}
}

func TestMirrorRunsOnItsScheduleAndReportsItsSyncs(t *testing.T) {
	ns := newNamespace(t)
	notes := createInstance(t, ns, "notes", nil)
	createInstance(t, ns, "home", nil)
	// The Secret the mirror's pod reads, whose values a failure's output is masked of.
	if err := k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mirror"},
		StringData: map[string]string{"password": "mirror-secret-1"}}); err != nil {
		t.Fatal(err)
	}
	m := createMirror(t, ns, "to-home", "notes", "home")
	waitForMirror(t, m, metav1.ConditionTrue, "Scheduled")

	cj := &batchv1.CronJob{}
	get(t, ns, resources.MirrorChildName(m), cj)
	if owner := metav1.GetControllerOf(cj); owner == nil || owner.Kind != "KintoMirror" || cj.Spec.Schedule != "0 * * * *" || *cj.Spec.Suspend {
		t.Errorf("CronJob: controller %v, schedule %q (want the default, hourly), suspended %v", owner, cj.Spec.Schedule, *cj.Spec.Suspend)
	}
	np := &networkingv1.NetworkPolicy{}
	get(t, ns, resources.MirrorChildName(m), np)
	if owner := metav1.GetControllerOf(np); owner == nil || owner.Kind != "KintoMirror" || len(np.Spec.Egress) != 3 {
		t.Errorf("NetworkPolicy: controller %v, egress %+v", owner, np.Spec.Egress)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	get(t, ns, resources.MirrorStateClaimName(m), pvc)
	if owner := metav1.GetControllerOf(pvc); owner == nil || owner.Kind != "KintoMirror" {
		t.Errorf("state claim: controller %v, want the mirror", owner)
	}
	// The local instance's server admits the mirror's pods.
	eventually(t, "the server's policy admits the mirror", func() error {
		kinto := &networkingv1.NetworkPolicy{}
		if err := k8s.Get(context.Background(), key(ns, resources.KintoNetworkPolicyName(notes)), kinto); err != nil {
			return err
		}
		for _, p := range kinto.Spec.Ingress[0].From {
			if p.PodSelector != nil && p.PodSelector.MatchLabels[resources.MirrorLocalLabel] == "notes" {
				return nil
			}
		}
		return fmt.Errorf("ingress from %+v", kinto.Spec.Ingress[0].From)
	})

	conflict := "/buckets/library/collections/books/records/changed"
	startMirrorRun(t, m, cj.Name+"-1")
	runJob(t, ns, cj.Name+"-1", resources.MirrorResultContainer,
		fmt.Sprintf(`{"copied":9,"deleted":1,"conflictCount":1,"conflicts":[%q]}`, conflict), false)
	synced := waitForMirror(t, m, metav1.ConditionTrue, "Synced")
	if s := synced.Status; s.LastSyncResult != "Succeeded" || s.LastSyncJob != cj.Name+"-1" || s.LastSyncTime == nil ||
		s.Copied != 9 || s.Deleted != 1 || s.ConflictCount != 1 || !slices.Equal(s.Conflicts, []string{conflict}) {
		t.Errorf("status after a sync: %+v", s)
	}
	if c := meta.FindStatusCondition(synced.Status.Conditions, "Conflicts"); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Conflicts condition %+v, want True", c)
	}

	startMirrorRun(t, m, cj.Name+"-2")
	runJob(t, ns, cj.Name+"-2", resources.MirrorResultContainer, "PUT /buckets/library as mirror-secret-1: 403 Forbidden", true)
	failed := waitForMirror(t, m, metav1.ConditionFalse, "SyncFailed")
	if s := failed.Status; s.LastSyncResult != "Failed" || s.LastSyncJob != cj.Name+"-2" || s.Copied != 0 || s.ConflictCount != 0 {
		t.Errorf("status after a failed sync: %+v", s)
	}
	if c := meta.FindStatusCondition(failed.Status.Conditions, "Ready"); !strings.Contains(c.Message, "403 Forbidden") || strings.Contains(c.Message, "mirror-secret-1") {
		t.Errorf("Ready message %q, want why the sync failed, the password masked", c.Message)
	}
	if c := meta.FindStatusCondition(failed.Status.Conditions, "Conflicts"); c != nil {
		t.Errorf("Conflicts condition %+v after a failed sync, which found none", c)
	}
}

func TestMirrorWaitsForItsInstancesInItsNamespace(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	createInstance(t, ns, "notes", nil)
	createInstance(t, other, "home", nil)
	// home exists, but in another namespace: never found.
	m := createMirror(t, ns, "to-other", "notes", "home")
	waiting := waitForMirror(t, m, metav1.ConditionFalse, "InstanceNotFound")
	if c := meta.FindStatusCondition(waiting.Status.Conditions, "Ready"); c.Message != "spec.remote.instance: no KintoInstance home in namespace "+ns {
		t.Errorf("Ready message %q", c.Message)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.MirrorChildName(m)), &batchv1.CronJob{}); err == nil {
		t.Error("a CronJob for a mirror whose remote instance is missing")
	}
	createInstance(t, ns, "home", nil)
	waitForMirror(t, m, metav1.ConditionTrue, "Scheduled")
}
