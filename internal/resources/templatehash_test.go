package resources

import (
	"testing"

	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// The template hash on a workload changes exactly when its pod template does: replicas and
// hibernation change no pod, a release, a configuration or a Secret revision rolls them all.
func TestTemplateHashFollowsThePodTemplate(t *testing.T) {
	inst := newInstance()
	serverHash := func(inst *v1alpha1.KintoInstance, version, config, secrets string) string {
		d := ServerDeployment(inst, version, config, secrets)
		if got := d.Annotations[TemplateHashAnnotation]; got != TemplateHash(d.Spec.Template) {
			t.Fatalf("Deployment annotation %q is not the hash of its template", got)
		}
		if _, onPods := d.Spec.Template.Annotations[TemplateHashAnnotation]; onPods {
			t.Fatal("the template hash is on the pod template: adding it would roll every pod")
		}
		return d.Annotations[TemplateHashAnnotation]
	}
	base := serverHash(inst, "26.5.0", "c1", "s1")
	if again := serverHash(newInstance(), "26.5.0", "c1", "s1"); again != base {
		t.Errorf("the same inputs hash differently: %s, %s", base, again)
	}
	scaled := newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Replicas = ptr.To[int32](5) })
	if serverHash(scaled, "26.5.0", "c1", "s1") != base {
		t.Error("replicas changed the template hash")
	}
	for name, h := range map[string]string{
		"release":         serverHash(inst, "26.4.0", "c1", "s1"),
		"configuration":   serverHash(inst, "26.5.0", "c2", "s1"),
		"secret revision": serverHash(inst, "26.5.0", "c1", "s2"),
	} {
		if h == base {
			t.Errorf("a new %s left the template hash unchanged", name)
		}
	}

	sts := DatabaseStatefulSet(inst, "r1", testOperatorImage, false)
	if sts.Annotations[TemplateHashAnnotation] != TemplateHash(sts.Spec.Template) {
		t.Error("StatefulSet annotation is not the hash of its template")
	}
	asleep := newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Hibernate = true })
	if DatabaseStatefulSet(asleep, "r1", testOperatorImage, false).Annotations[TemplateHashAnnotation] != sts.Annotations[TemplateHashAnnotation] {
		t.Error("hibernation changed the database template hash")
	}
	if DatabaseStatefulSet(inst, "r2", testOperatorImage, false).Annotations[TemplateHashAnnotation] == sts.Annotations[TemplateHashAnnotation] {
		t.Error("new credentials left the database template hash unchanged")
	}
}
