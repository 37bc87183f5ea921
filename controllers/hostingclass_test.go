package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// Classes have no namespace: each test names its own, and deletes them when it ends, since a
// default class would host every instance of the tests after it.

// createClass creates a hosting class, deleted when the test ends.
func createClass(t testing.TB, name string, spec v1alpha1.KintoHostingClassSpec) *v1alpha1.KintoHostingClass {
	t.Helper()
	class := &v1alpha1.KintoHostingClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := k8s.Create(context.Background(), class); err != nil {
		t.Fatalf("creating hosting class %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := k8s.Delete(context.Background(), class); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting hosting class %s: %v", name, err)
		}
	})
	return class
}

// updateClass applies edit to the current class and writes it back, retrying on conflict.
func updateClass(t testing.TB, name string, edit func(*v1alpha1.KintoHostingClass)) {
	t.Helper()
	eventually(t, "updating hosting class "+name, func() error {
		class := &v1alpha1.KintoHostingClass{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, class); err != nil {
			return err
		}
		edit(class)
		return k8s.Update(context.Background(), class)
	})
}

// plan is a class with every default and bound: up to 3 server pods of at most 1 CPU and 1Gi,
// volumes of up to 10Gi, nightly backups, an Ingress of its own for each instance.
func plan() v1alpha1.KintoHostingClassSpec {
	return v1alpha1.KintoHostingClassSpec{
		Replicas: &v1alpha1.ReplicasPolicy{Default: ptr.To[int32](2), Max: ptr.To[int32](3)},
		Resources: &v1alpha1.ResourcesPolicy{
			Default: &corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			Max: v1alpha1.ResourceBounds{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
		Storage:        &v1alpha1.StoragePolicy{DefaultSize: ptr.To(resource.MustParse("3Gi")), MaxSize: ptr.To(resource.MustParse("10Gi")), StorageClassName: ptr.To("fast")},
		Backup:         &v1alpha1.BackupSpec{Schedule: "30 1 * * *"},
		DomainTemplate: "{name}.{namespace}.kinto.example.org",
		Ingress: &v1alpha1.ClassIngress{
			ClassName:   ptr.To("nginx"),
			Issuer:      &v1alpha1.CertManagerIssuer{Kind: "ClusterIssuer", Name: "letsencrypt"},
			Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
		},
	}
}

func inClass(name string) func(*v1alpha1.KintoInstance) {
	return func(i *v1alpha1.KintoInstance) { i.Spec.ClassName = name }
}

func TestClassDefaultsReachTheChildren(t *testing.T) {
	ns := newNamespace(t)
	createClass(t, "plan-defaults", plan())
	inst := createInstance(t, ns, "notes", inClass("plan-defaults"))
	cur := waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "Applied")
	if cur.Status.ClassName != "plan-defaults" {
		t.Errorf("status.className = %q", cur.Status.ClassName)
	}
	// Only replicas is written into the spec, for the scale subresource (see below).
	if cur.Spec.Resources != nil || cur.Spec.Backup != nil || cur.Spec.Ingress != nil {
		t.Errorf("the operator wrote the class's values into the spec: %+v", cur.Spec)
	}
	cur = bringUp(t, inst)
	host := fmt.Sprintf("notes.%s.kinto.example.org", ns)
	if cur.Status.URL != "https://"+host+"/v1/" {
		t.Errorf("status.url = %s", cur.Status.URL)
	}

	d := &appsv1.Deployment{}
	get(t, ns, resources.ServerName(inst), d)
	if *d.Spec.Replicas != 2 {
		t.Errorf("server replicas = %d, want the class's 2", *d.Spec.Replicas)
	}
	if got := d.Spec.Template.Spec.Containers[0].Resources; !equality.Semantic.DeepEqual(got, *plan().Resources.Default) {
		t.Errorf("server resources = %+v, want the class's", got)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	get(t, ns, resources.DataVolumeClaimName(inst), pvc)
	if pvc.Spec.Resources.Requests.Storage().String() != "3Gi" || ptr.Deref(pvc.Spec.StorageClassName, "") != "fast" {
		t.Errorf("database volume: %s of class %v, want the class's 3Gi of fast", pvc.Spec.Resources.Requests.Storage(), pvc.Spec.StorageClassName)
	}
	cj := &batchv1.CronJob{}
	get(t, ns, resources.BackupCronJobName(inst), cj)
	if cj.Spec.Schedule != "30 1 * * *" {
		t.Errorf("backup schedule = %q, want the class's", cj.Spec.Schedule)
	}
	get(t, ns, resources.BackupVolumeClaimName(inst), &corev1.PersistentVolumeClaim{})
	ing := &networkingv1.Ingress{}
	get(t, ns, resources.IngressName(inst), ing)
	if ing.Spec.Rules[0].Host != host || ptr.Deref(ing.Spec.IngressClassName, "") != "nginx" || len(ing.Spec.TLS) != 1 ||
		ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt" || ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"] != "8m" {
		t.Errorf("ingress = %+v %+v, want host %s of class nginx, certificate from letsencrypt", ing.Annotations, ing.Spec, host)
	}

	// A backup on demand goes where the class's backups go.
	createBackup(t, ns, "on-demand", inst.Name, "")
	job := &batchv1.Job{}
	eventually(t, "the on-demand backup's Job", func() error { return k8s.Get(context.Background(), key(ns, "on-demand"), job) })
	if !mountsClaim(job.Spec.Template.Spec, resources.BackupVolumeClaimName(inst)) {
		t.Errorf("the backup Job does not write to the class's backup volume")
	}
}

func TestInstanceValuesOverrideTheClassWithinItsBounds(t *testing.T) {
	ns := newNamespace(t)
	createClass(t, "plan-overrides", plan())
	limits := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	inst := bringUp(t, createInstance(t, ns, "notes", func(i *v1alpha1.KintoInstance) {
		i.Spec.ClassName = "plan-overrides"
		i.Spec.Replicas = ptr.To[int32](3)
		i.Spec.Resources = &corev1.ResourceRequirements{Limits: limits}
		i.Spec.Database = &v1alpha1.DatabaseSpec{Managed: &v1alpha1.ManagedDatabase{StorageSize: ptr.To(resource.MustParse("10Gi"))}}
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"}
	}))
	d := &appsv1.Deployment{}
	get(t, ns, resources.ServerName(inst), d)
	if *d.Spec.Replicas != 3 || !equality.Semantic.DeepEqual(d.Spec.Template.Spec.Containers[0].Resources.Limits, limits) {
		t.Errorf("server: %d replicas, resources %+v; want the instance's", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Resources)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	get(t, ns, resources.DataVolumeClaimName(inst), pvc)
	if pvc.Spec.Resources.Requests.Storage().String() != "10Gi" {
		t.Errorf("database volume of %s, want the instance's 10Gi", pvc.Spec.Resources.Requests.Storage())
	}
	// The instance's own Ingress, of the class's IngressClass; no certificate it did not ask for.
	ing := &networkingv1.Ingress{}
	get(t, ns, resources.IngressName(inst), ing)
	if ing.Spec.Rules[0].Host != "notes.example.org" || ptr.Deref(ing.Spec.IngressClassName, "") != "nginx" || len(ing.Spec.TLS) != 0 {
		t.Errorf("ingress = %+v", ing.Spec)
	}
}

// An instance asking for more than its class allows is held before anything is made for it, says
// why, and comes up once it fits.
func TestInstanceBeyondItsClassIsHeld(t *testing.T) {
	ns := newNamespace(t)
	createClass(t, "plan-bounds", plan())
	inst := createInstance(t, ns, "greedy", func(i *v1alpha1.KintoInstance) {
		i.Spec.ClassName = "plan-bounds"
		i.Spec.Replicas = ptr.To[int32](5)
		i.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi")}}
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionFalse, "ExceedsClass")
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "ExceedsClass")
	msg := hostingClassMessage(cur)
	for _, want := range []string{
		"spec.replicas is 5, above the 3 hosting class plan-bounds allows",
		"spec.resources.limits.memory is 4Gi, above the 1Gi hosting class plan-bounds allows",
		"spec.resources.limits.cpu is not set, and hosting class plan-bounds allows at most 1",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("HostingClass message %q does not say %q", msg, want)
		}
	}
	eventually(t, "a warning event says why", func() error {
		if e, ok := eventReasons(t, inst)["ExceedsClass"]; !ok || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "spec.replicas is 5") {
			return fmt.Errorf("no ExceedsClass warning: %+v", e)
		}
		return nil
	})
	for name, obj := range map[string]client.Object{
		resources.CredentialsSecretName(inst): &corev1.Secret{},
		resources.ConfigMapName(inst):         &corev1.ConfigMap{},
		resources.DatabaseName(inst):          &appsv1.StatefulSet{},
	} {
		if err := k8s.Get(context.Background(), key(ns, name), obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s was made for an instance its class holds: %v", obj, name, err)
		}
	}

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Replicas = ptr.To[int32](3)
		i.Spec.Resources = nil
	})
	bringUp(t, inst)
}

// A class tightened under a running instance holds the instance's changes and leaves what runs
// alone; loosened again, the changes go through.
func TestTightenedClassHoldsARunningInstance(t *testing.T) {
	ns := newNamespace(t)
	createClass(t, "plan-tightened", plan())
	inst := bringUp(t, createInstance(t, ns, "notes", func(i *v1alpha1.KintoInstance) {
		i.Spec.ClassName = "plan-tightened"
		i.Spec.Replicas = ptr.To[int32](3)
	}))
	d, cm := &appsv1.Deployment{}, &corev1.ConfigMap{}
	get(t, ns, resources.ServerName(inst), d)
	get(t, ns, resources.ConfigMapName(inst), cm)

	updateClass(t, "plan-tightened", func(c *v1alpha1.KintoHostingClass) { c.Spec.Replicas = &v1alpha1.ReplicasPolicy{Max: ptr.To[int32](2)} })
	waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionFalse, "ExceedsClass")
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Settings = map[string]v1alpha1.SettingValue{"kinto.paginate_by": "50"}
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "ExceedsClass")
	if !strings.Contains(hostingClassMessage(cur), "spec.replicas is 3, above the 2") {
		t.Errorf("conditions = %v", cur.Status.Conditions)
	}
	if cur.Status.ClassName != "plan-tightened" {
		t.Errorf("status.className = %q while held", cur.Status.ClassName)
	}
	held, heldConfig := &appsv1.Deployment{}, &corev1.ConfigMap{}
	get(t, ns, resources.ServerName(inst), held)
	get(t, ns, resources.ConfigMapName(inst), heldConfig)
	if held.Generation != d.Generation || *held.Spec.Replicas != 3 || !equality.Semantic.DeepEqual(heldConfig.Data, cm.Data) {
		t.Errorf("a held instance's objects changed: server generation %d -> %d, %d replicas, configuration changed %v",
			d.Generation, held.Generation, *held.Spec.Replicas, !equality.Semantic.DeepEqual(heldConfig.Data, cm.Data))
	}

	updateClass(t, "plan-tightened", func(c *v1alpha1.KintoHostingClass) { c.Spec.Replicas.Max = ptr.To[int32](4) })
	waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "Applied")
	eventually(t, "the held change reaches the configuration", func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cm), cm); err != nil {
			return err
		}
		if !strings.Contains(cm.Data[resources.ConfigFileName], "kinto.paginate_by = 50") {
			return fmt.Errorf("kinto.ini without the new setting")
		}
		return nil
	})
	markServerAvailable(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
}

// An instance naming a class that does not exist waits for it, holding everything.
func TestMissingClassHoldsTheInstance(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "early", inClass("plan-later"))
	cur := waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionFalse, "ClassNotFound")
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "ClassNotFound")
	if msg := hostingClassMessage(cur); !strings.Contains(msg, `KintoHostingClass "plan-later", which spec.className names, does not exist`) {
		t.Errorf("HostingClass message = %q", msg)
	}
	eventually(t, "a warning event says why", func() error {
		if e, ok := eventReasons(t, inst)["ClassNotFound"]; !ok || e.Type != corev1.EventTypeWarning {
			return fmt.Errorf("no ClassNotFound warning: %+v", e)
		}
		return nil
	})
	if err := k8s.Get(context.Background(), key(ns, resources.CredentialsSecretName(inst)), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("credentials were made for an instance without its class: %v", err)
	}

	createClass(t, "plan-later", plan())
	waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "Applied")
	bringUp(t, inst)
}

// The default class hosts the instances that name none; with two defaults, neither does.
func TestDefaultClass(t *testing.T) {
	ns := newNamespace(t)
	spec := plan()
	spec.Default = true
	createClass(t, "plan-default", spec)
	inst := createInstance(t, ns, "notes", nil)
	cur := waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "Applied")
	if cur.Status.ClassName != "plan-default" || !strings.Contains(hostingClassMessage(cur), "the default class") {
		t.Errorf("status.className %q, conditions %v", cur.Status.ClassName, cur.Status.Conditions)
	}
	bringUp(t, inst)
	d := &appsv1.Deployment{}
	get(t, ns, resources.ServerName(inst), d)
	if *d.Spec.Replicas != 2 {
		t.Errorf("server replicas = %d, want the default class's 2", *d.Spec.Replicas)
	}
	// An instance naming another class is that class's.
	other := createInstance(t, ns, "other", inClass("plan-other"))
	createClass(t, "plan-other", v1alpha1.KintoHostingClassSpec{Replicas: &v1alpha1.ReplicasPolicy{Default: ptr.To[int32](1)}})
	if cur := waitForCondition(t, other, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "Applied"); cur.Status.ClassName != "plan-other" {
		t.Errorf("status.className = %q, want plan-other", cur.Status.ClassName)
	}

	// A second default: the instance is held, as it was.
	updateClass(t, "plan-other", func(c *v1alpha1.KintoHostingClass) { c.Spec.Default = true })
	cur = waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionFalse, "SeveralDefaultClasses")
	if msg := hostingClassMessage(cur); !strings.Contains(msg, "plan-default, plan-other are all marked default") {
		t.Errorf("HostingClass message = %q", msg)
	}
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "SeveralDefaultClasses")
	get(t, ns, resources.ServerName(inst), d)
	if *d.Spec.Replicas != 2 {
		t.Errorf("a held instance's server went to %d replicas", *d.Spec.Replicas)
	}

	// One default again: the class that stopped being one lets the instance go on.
	updateClass(t, "plan-other", func(c *v1alpha1.KintoHostingClass) { c.Spec.Default = false })
	waitForCondition(t, inst, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "Applied")
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
}

func hostingClassMessage(inst *v1alpha1.KintoInstance) string {
	if c := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionHostingClass); c != nil {
		return c.Message
	}
	return ""
}

// A class offered to some namespaces holds an instance elsewhere that names it, until its
// namespace gets the label; as a default class it hosts only the namespaces it selects.
func TestClassOfferedToSomeNamespaces(t *testing.T) {
	ns := newNamespace(t)
	spec := plan()
	spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"plan": "premium"}}
	spec.Default = true
	createClass(t, "plan-premium", spec)

	unnamed := createInstance(t, ns, "unnamed", nil)
	if cur := waitForCondition(t, unnamed, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "NoClass"); cur.Status.ClassName != "" {
		t.Errorf("a default class for other namespaces hosts this one: status.className %q", cur.Status.ClassName)
	}
	named := createInstance(t, ns, "named", inClass("plan-premium"))
	cur := waitForCondition(t, named, v1alpha1.ConditionHostingClass, metav1.ConditionFalse, "ClassNotAllowed")
	if msg := hostingClassMessage(cur); !strings.Contains(msg, "not offered to namespace "+ns) {
		t.Errorf("HostingClass message = %q", msg)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.ConfigMapName(named)), &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("a held instance got its objects: %v", err)
	}

	namespace := &corev1.Namespace{}
	get(t, "", ns, namespace)
	namespace.Labels["plan"] = "premium"
	if err := k8s.Update(context.Background(), namespace); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, named, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "Applied")
	if cur := waitForCondition(t, unnamed, v1alpha1.ConditionHostingClass, metav1.ConditionTrue, "Applied"); cur.Status.ClassName != "plan-premium" {
		t.Errorf("the default class does not host its namespace's instance: status.className %q", cur.Status.ClassName)
	}
}

// An instance that leaves replicas to its class follows the class's default, with nothing
// written into its spec, until an autoscaler scales it: the autoscaler reads the scale
// subresource, which is 0 while spec.replicas is unset, so the class's default is written there
// then. An autoscaler of something else with the instance's name changes nothing.
func TestReplicasArePinnedForAnAutoscaler(t *testing.T) {
	ns := newNamespace(t)
	createClass(t, "plan-scaled", plan())
	autoscaler := func(name string, target autoscalingv2.CrossVersionObjectReference) *autoscalingv2.HorizontalPodAutoscaler {
		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: target, MinReplicas: ptr.To[int32](1), MaxReplicas: 3},
		}
		if err := k8s.Create(context.Background(), hpa); err != nil {
			t.Fatal(err)
		}
		return hpa
	}
	autoscaler("deployment", autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "scaled"})
	inst := createInstance(t, ns, "scaled", inClass("plan-scaled"))
	bringUp(t, inst)
	serverReplicas := func(want int32) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d server pods", want), func() error {
			d := &appsv1.Deployment{}
			get(t, ns, resources.ServerName(inst), d)
			if *d.Spec.Replicas != want {
				return fmt.Errorf("server replicas = %d", *d.Spec.Replicas)
			}
			return nil
		})
	}
	serverReplicas(2)
	updateClass(t, "plan-scaled", func(c *v1alpha1.KintoHostingClass) { c.Spec.Replicas.Default = ptr.To[int32](3) })
	serverReplicas(3)
	cur := &v1alpha1.KintoInstance{}
	get(t, ns, inst.Name, cur)
	if cur.Spec.Replicas != nil {
		t.Fatalf("spec.replicas = %d with no autoscaler of the instance, want it unset", *cur.Spec.Replicas)
	}

	autoscaler("kinto", autoscalingv2.CrossVersionObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "KintoInstance", Name: inst.Name})
	eventually(t, "spec.replicas written", func() error {
		get(t, ns, inst.Name, cur)
		if cur.Spec.Replicas == nil || *cur.Spec.Replicas != 3 {
			return fmt.Errorf("spec.replicas = %v, want the class's default 3", cur.Spec.Replicas)
		}
		return nil
	})
	scale := &autoscalingv1.Scale{}
	if err := k8s.SubResource("scale").Get(context.Background(), inst, scale); err != nil || scale.Spec.Replicas != 3 {
		t.Errorf("scale = %+v, %v", scale.Spec, err)
	}
	// The autoscaler's writes reach the server, and the operator leaves them. Like the
	// autoscaler, the write is made again on a conflict: the operator's status writes change
	// the instance's version meanwhile.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.SubResource("scale").Get(context.Background(), inst, scale); err != nil {
			return err
		}
		scale.Spec.Replicas = 2
		return k8s.SubResource("scale").Update(context.Background(), cur, client.WithSubResourceBody(scale))
	})
	if err != nil {
		t.Fatal(err)
	}
	serverReplicas(2)
}

// recordedEvents keeps the reasons of the events a reconciler records.
type recordedEvents struct {
	mu      sync.Mutex
	reasons []string
}

func (r *recordedEvents) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons = append(r.reasons, reason)
}

func (r *recordedEvents) has(reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.reasons, reason)
}

// With --require-class, an instance that no class hosts is held: its pass applies nothing and
// says why (HostingClass=False, ClassRequired, with a warning). The suite's operator runs
// without the flag, so a reconciler of the test's own takes the instance's pass.
func TestAClassCanBeRequired(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "classless", nil)
	events := &recordedEvents{}
	r := &controllers.KintoInstanceReconciler{Client: k8s, APIReader: k8s, Recorder: events, Network: testNetwork,
		OperatorImage: testOperatorImage, RequireClass: true}
	eventually(t, "the instance held for want of a class", func() error {
		// The suite's operator writes the instance too: a pass on a stale read is refused, and
		// taken again.
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(inst)}); err != nil {
			return err
		}
		if !events.has("ClassRequired") {
			return fmt.Errorf("no ClassRequired event among %v", events.reasons)
		}
		return nil
	})
}
