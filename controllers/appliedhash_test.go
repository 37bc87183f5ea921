package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// unstructuredHash is appliedHash's form as the children in clusters carry it: the object
// converted to a map, without its status, resource version and creation timestamps, encoded as
// JSON.
func unstructuredHash(t *testing.T, obj client.Object) string {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(u, "spec", "template", "metadata", "creationTimestamp")
	raw, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// TestAppliedHashIsOfTheUnstructuredForm holds appliedHash, made from the typed JSON, to the
// form every child already carries, for every child of the samples and for objects with what
// JSON encodes in more than one way: escaped characters (in keys too, which sort unescaped),
// binary data, numbers or strings in one field, quantities, times.
func TestAppliedHashIsOfTheUnstructuredForm(t *testing.T) {
	var objs []client.Object
	class := &v1alpha1.KintoHostingClass{}
	readSample(t, "hosting_v1alpha1_kintohostingclass.yaml", class)
	for _, sample := range []string{"hosting_v1alpha1_kintoinstance.yaml", "hosting_v1alpha1_kintoinstance_community.yaml", "hosting_v1alpha1_kintoinstance_external.yaml"} {
		inst := &v1alpha1.KintoInstance{}
		readSample(t, sample, inst)
		inst.Namespace, inst.UID = "tenant", "uid"
		var c *v1alpha1.KintoHostingClass
		if inst.Spec.ClassName == class.Name {
			c = class
		}
		effective, _ := hostingclass.Effective(inst, c)
		secret, err := resources.CredentialsSecret(effective, nil, resources.RandomSource, false, false)
		if err != nil {
			t.Fatal(err)
		}
		children, err := resources.Desired(effective, resources.Inputs{
			SchemaVersion: v1alpha1.DefaultKintoVersion, CredentialsRevision: "42", OperatorImage: "operator",
			Network: resources.NetworkOptions{ClusterCIDRs: []string{"10.0.0.0/8"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, secret, resources.MigrateJob(effective, v1alpha1.DefaultKintoVersion))
		objs = append(objs, children.All()...)
	}

	odd := "<a href=\"x\">&\u2028\u2029 é 😀 \\ \x7f \xff"
	config := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: "odd", Namespace: "tenant", ResourceVersion: "7",
			CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)),
			Labels:            map[string]string{"<": "1", "=": "2", ";": "3", "\u2028": "4", "a\"b": odd},
			Annotations:       map[string]string{odd: odd},
		},
		Data:       map[string]string{"z": odd, "é": "", "\\": "x", "A": "y"},
		BinaryData: map[string][]byte{"bin": {0, 1, 2, 0xff}},
	}
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "tenant"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "by-number", Port: 80, TargetPort: intstr.FromInt32(8888)},
			{Name: "by-name", Port: 81, TargetPort: intstr.FromString("http")},
		}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "10.0.0.1"}}}},
	}
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "tenant"},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1.5Gi")},
		}},
	}
	deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "tenant"}}
	deployment.Spec.Template.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	deployment.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Args: []string{}, Env: nil}}
	objs = append(objs, config, service, claim, deployment, &corev1.Secret{})

	if len(objs) < 40 {
		t.Fatalf("only %d objects to compare", len(objs))
	}
	for _, obj := range objs {
		got, err := appliedHash(obj)
		if err != nil {
			t.Fatalf("%T %s: %v", obj, obj.GetName(), err)
		}
		if want := unstructuredHash(t, obj); got != want {
			t.Errorf("%T %s: hash %s, the unstructured form's %s", obj, obj.GetName(), got, want)
		}
	}
}

// readSample reads into the document of the sample file name of into's kind.
func readSample(t *testing.T, name string, into client.Object) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "config", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	kind := reflect.TypeOf(into).Elem().Name()
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == kind {
			if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no %s in %s", kind, name)
}

func TestJSONSorterRefusesMalformedJSON(t *testing.T) {
	for _, src := range []string{``, `{`, `{"a"`, `{"a":1`, `{"a":1;`, `[1`, `"abc`, `{"a\`, `{a:1}`} {
		if _, _, err := (&jsonSorter{}).sorted(nil, []byte(src), nil); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}
