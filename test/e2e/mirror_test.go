//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestMirrorBetweenTwoInstances pushes one instance to another of its namespace with a
// KintoMirror: its scheduled Job (Pod Security restricted) reads the first instance and writes
// the second through their Services, past both servers' network policies and its own, and the
// mirror's status reports what the sync copied; the second instance then serves the records.
func TestMirrorBetweenTwoInstances(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const mirrorUser, password = "mirror", "mirror-secret-1"
	withAccounts := func(readAll bool) func(*v1alpha1.KintoInstance) {
		return func(i *v1alpha1.KintoInstance) {
			i.Spec.Auth = &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{Enabled: true, Admins: []string{mirrorUser}}}
			if readAll {
				i.Spec.Settings = map[string]v1alpha1.SettingValue{}
				for _, kind := range []string{"bucket", "collection", "group", "record"} {
					i.Spec.Settings[kind+"_read_principals"] = "account:" + mirrorUser
				}
			}
		}
	}
	source := applySample(t, ns, defaultSample, withAccounts(true))
	target := applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Name = "home"
		withAccounts(false)(i)
	})
	source, target = waitReady(t, source), waitReady(t, target)
	data := populate(t, source)
	kintoAPI(t, source).CreateAccount(mirrorUser, password)
	targetAPI := kintoAPI(t, target)
	waitHealthy(t, targetAPI)
	targetAPI.CreateAccount(mirrorUser, password)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mirror-kinto"}, StringData: map[string]string{"password": password}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	creds := v1alpha1.KintoCredentials{User: mirrorUser, Password: &v1alpha1.SecretKeyRef{Name: secret.Name, Key: "password"}}
	m := &v1alpha1.KintoMirror{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-home"},
		Spec: v1alpha1.KintoMirrorSpec{
			Local:    v1alpha1.MirrorLocal{Instance: source.Name, Credentials: creds},
			Remote:   v1alpha1.MirrorRemote{Instance: target.Name, Credentials: creds},
			Schedule: "* * * * *", // the next minute
		},
	}
	if err := k8s.Create(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	kintotest.Eventually(t, 4*time.Minute, pollInterval, "a sync reported", func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(m), m); err != nil {
			return false, err.Error()
		}
		s := m.Status
		return s.LastSyncResult != "", fmt.Sprintf("%+v", s)
	})
	if s := m.Status; s.LastSyncResult != "Succeeded" || s.Copied != 1+1+int64(len(data.ids)) || s.Deleted != 0 || s.ConflictCount != 0 {
		t.Fatalf("first sync: %+v, want Succeeded with the bucket, the collection and %d records copied", s, len(data.ids))
	}
	mirrored := targetAPI.As(mirrorUser, password)
	var list kintotest.List
	mirrored.Must("GET", kintotest.BooksPath, nil, &list, 200)
	if len(list.Data) != len(data.ids) {
		t.Errorf("the target serves %d records, want %d", len(list.Data), len(data.ids))
	}
	t.Logf("mirror %s: %d copied at %s", m.Name, m.Status.Copied, m.Status.LastSyncTime)
}
