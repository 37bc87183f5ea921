package resources

import (
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestDataVolumeClaim(t *testing.T) {
	cases := []struct {
		name      string
		inst      *v1alpha1.KintoInstance
		wantSize  string
		wantClass *string
		owned     bool
	}{
		{"default", newInstance(), "1Gi", nil, false},
		{"size and class", newInstance(func(i *v1alpha1.KintoInstance) {
			i.Spec.Database.Managed.StorageSize = ptr.To(resource.MustParse("20Gi"))
			i.Spec.Database.Managed.StorageClassName = ptr.To("fast")
		}), "20Gi", ptr.To("fast"), false},
		{"owned under Delete", newInstance(deletePolicy), "1Gi", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pvc := DataVolumeClaim(tc.inst)
			if got := pvc.Spec.Resources.Requests.Storage().String(); got != tc.wantSize {
				t.Errorf("size = %s, want %s", got, tc.wantSize)
			}
			if ptr.Deref(pvc.Spec.StorageClassName, "") != ptr.Deref(tc.wantClass, "") {
				t.Errorf("class = %v", pvc.Spec.StorageClassName)
			}
			if got := len(pvc.OwnerReferences) == 1; got != tc.owned {
				t.Errorf("owned = %v, want %v", got, tc.owned)
			}
		})
	}
}

func TestDatabaseStatefulSet(t *testing.T) {
	cases := []struct {
		name      string
		inst      *v1alpha1.KintoInstance
		wantImage string
	}{
		{"official image of the major version", newInstance(), "postgres:15"},
		{"image override", newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Database.Managed.Image = "registry.example/pg:15.8" }), "registry.example/pg:15.8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sts := DatabaseStatefulSet(tc.inst, "r", testOperatorImage, false)
			pod := sts.Spec.Template.Spec
			if got, want := podSteps(pod), []string{install, "init-database " + tc.wantImage, "postgres " + tc.wantImage}; !slices.Equal(got, want) {
				t.Errorf("containers %q, want %q", got, want)
			}
			if c := pod.Containers[0]; c.Command[0] != "postgres" || podContainer(pod, "init-database").Command[2] != "init" {
				t.Errorf("commands %q, %q", podContainer(pod, "init-database").Command, c.Command)
			}
			if *sts.Spec.Replicas != 1 || sts.Spec.ServiceName != DatabaseHeadlessName(tc.inst) {
				t.Errorf("replicas %d service %s", *sts.Spec.Replicas, sts.Spec.ServiceName)
			}
			if len(sts.Spec.VolumeClaimTemplates) != 0 {
				t.Error("the volume is made by the operator, not by claim templates")
			}
			claim := ""
			for _, v := range pod.Volumes {
				if v.PersistentVolumeClaim != nil {
					claim = v.PersistentVolumeClaim.ClaimName
				}
			}
			if claim != DataVolumeClaimName(tc.inst) {
				t.Errorf("data volume claim = %q", claim)
			}
			// The init container sets the password; the server does not need it.
			if _, set := envValue(&pod.Containers[0], "POSTGRES_PASSWORD"); set {
				t.Error("the server's container has the password in its environment")
			}
			for _, e := range podContainer(pod, "init-database").Env {
				if e.Name == "POSTGRES_PASSWORD" && (e.Value != "" || e.ValueFrom.SecretKeyRef.Name != CredentialsSecretName(tc.inst) || e.ValueFrom.SecretKeyRef.Key != SecretKeyDatabasePassword) {
					t.Errorf("password must come from the credentials Secret: %+v", e)
				}
			}
		})
	}
}

// A new operator image alone leaves a running database's template as it is: its tools come from
// the image it runs until something else in its template changes.
func TestDatabaseStatefulSetKeepingTools(t *testing.T) {
	const previousImage = "kinto-operator:previous"
	inst := newInstance()
	running := DatabaseStatefulSet(inst, "r1", previousImage, false)
	noTools := running.DeepCopy()
	noTools.Spec.Template.Spec.InitContainers = noTools.Spec.Template.Spec.InitContainers[1:]
	cases := []struct {
		name                string
		inst                *v1alpha1.KintoInstance
		credentialsRevision string
		rotating            bool
		running             *appsv1.StatefulSet
		wantTools           string
	}{
		{"no StatefulSet yet", inst, "r1", false, nil, testOperatorImage},
		{"only the operator image differs", inst, "r1", false, running, previousImage},
		{"the credentials changed", inst, "r2", false, running, testOperatorImage},
		{"the password rotates", inst, "r1", true, running, testOperatorImage},
		{"the resources changed", newInstance(func(i *v1alpha1.KintoInstance) {
			i.Spec.Database.Managed.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
		}), "r1", false, running, testOperatorImage},
		{"a template without the tools step", inst, "r1", false, noTools, testOperatorImage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DatabaseStatefulSetKeepingTools(tc.inst, tc.credentialsRevision, testOperatorImage, tc.rotating, tc.running)
			if tools := podContainer(got.Spec.Template.Spec, stepInstallTools).Image; tools != tc.wantTools {
				t.Errorf("tools from %q, want %q", tools, tc.wantTools)
			}
			if want := DatabaseStatefulSet(tc.inst, tc.credentialsRevision, tc.wantTools, tc.rotating); !reflect.DeepEqual(got, want) {
				t.Errorf("the StatefulSet is not the one built with the tools of %s", tc.wantTools)
			}
		})
	}
}

func TestDatabaseServices(t *testing.T) {
	svcs := DatabaseServices(newInstance())
	if svcs[0].Name != "notes-postgres" || svcs[0].Spec.ClusterIP != "" {
		t.Errorf("client service %s %q", svcs[0].Name, svcs[0].Spec.ClusterIP)
	}
	if svcs[1].Spec.ClusterIP != "None" || !svcs[1].Spec.PublishNotReadyAddresses {
		t.Errorf("headless service %+v", svcs[1].Spec)
	}
}
