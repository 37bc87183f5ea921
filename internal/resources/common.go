package resources

import (
	"maps"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// objectMeta is the metadata of a child of the instance, controlled by it so that Kubernetes'
// garbage collector removes the child with the instance.
func objectMeta(inst *v1alpha1.KintoInstance, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       inst.Namespace,
		Labels:          Labels(inst, component),
		OwnerReferences: []metav1.OwnerReference{ownerReference(inst)},
	}
}

// dataObjectMeta is the metadata of a child that holds data (the database volume, the
// credentials that go with it, the backup volume): it is controlled by the instance, and so
// deleted with it, only under the Delete policy. Otherwise it outlives the instance and a
// re-created instance of the same name adopts it.
func dataObjectMeta(inst *v1alpha1.KintoInstance, name, component string) metav1.ObjectMeta {
	meta := objectMeta(inst, name, component)
	if inst.Spec.DeletionPolicy != v1alpha1.DeletionPolicyDelete {
		meta.OwnerReferences = nil
	}
	return meta
}

// finalBackupObjectMeta is the metadata of a child the final backup needs (the database, its
// Services and network policies, the pods' ServiceAccount): under the Snapshot policy the
// instance does not control it, since a foreground deletion lets the garbage collector remove
// what the instance controls before the final backup runs. The operator deletes it once the
// final backup is taken (KeptForFinalBackup names it).
func finalBackupObjectMeta(inst *v1alpha1.KintoInstance, name, component string) metav1.ObjectMeta {
	meta := objectMeta(inst, name, component)
	if inst.Spec.DeletionPolicy == v1alpha1.DeletionPolicySnapshot {
		meta.OwnerReferences = nil
	}
	return meta
}

func ownerReference(inst *v1alpha1.KintoInstance) metav1.OwnerReference {
	return controllerReference("KintoInstance", inst)
}

// controllerReference makes owner, an object of the operator's API of the given kind, the
// controller of a child.
func controllerReference(kind string, owner metav1.Object) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// podSecurityContext makes a pod meet the Pod Security "restricted" profile, running as uid.
func podSecurityContext(uid int64) *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:        ptr.To(true),
		RunAsUser:           ptr.To(uid),
		RunAsGroup:          ptr.To(uid),
		FSGroup:             ptr.To(uid),
		FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
		SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// containerSecurityContext is the "restricted" profile's container part, with a read-only root
// file system: containers write only to their volumes.
func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// podSpecBase is what every pod of the instance shares: scheduling from the spec, no API token
// (no pod of an instance talks to the Kubernetes API) and no Service environment variables,
// which Kinto would read as settings (a Service named "kinto-..." yields KINTO_* variables).
func podSpecBase(inst *v1alpha1.KintoInstance, uid int64) corev1.PodSpec {
	return corev1.PodSpec{
		ServiceAccountName:           ServiceAccountName(inst),
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext:              podSecurityContext(uid),
		NodeSelector:                 nodeSelector(inst),
		Tolerations:                  inst.Spec.Tolerations,
		Affinity:                     inst.Spec.Affinity,
		PriorityClassName:            inst.Spec.PriorityClassName,
	}
}

// nodeSelector is spec.nodeSelector as a pod spec holds it; nil when unset, so that the pod
// templates (and their hashes) of instances without one stay as they were.
func nodeSelector(inst *v1alpha1.KintoInstance) map[string]string {
	if len(inst.Spec.NodeSelector) == 0 {
		return nil
	}
	labels := make(map[string]string, len(inst.Spec.NodeSelector))
	for k, v := range inst.Spec.NodeSelector {
		labels[k] = string(v)
	}
	return labels
}

func emptyDirVolume(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key},
	}}
}

// jobSpec runs pod once to completion, retried up to backoffLimit times within deadline.
func jobSpec(labels map[string]string, pod corev1.PodSpec, backoffLimit int32, deadline time.Duration) batchv1.JobSpec {
	return batchv1.JobSpec{
		Parallelism:           ptr.To[int32](1),
		Completions:           ptr.To[int32](1),
		BackoffLimit:          ptr.To(backoffLimit),
		ActiveDeadlineSeconds: ptr.To(int64(deadline / time.Second)),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
			Spec:       pod,
		},
	}
}
