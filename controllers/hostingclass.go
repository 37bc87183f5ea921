// The hosting class: which KintoHostingClass an instance is hosted under, and the instance it
// makes of it, for both controllers.

package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
)

// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintohostingclasses,verbs=get;list;watch
// A class's namespaceSelector is matched against the labels of the instance's namespace.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// classNameIndex indexes instances by spec.className: "" for those that name none, which the
// default class hosts.
const classNameIndex = ".spec.className"

// Reasons of the HostingClass condition.
const (
	reasonClassApplied          = "Applied"
	reasonNoClass               = "NoClass"
	reasonClassNotFound         = "ClassNotFound"
	reasonSeveralDefaultClasses = "SeveralDefaultClasses"
	reasonExceedsClass          = "ExceedsClass"
	reasonClassNotAllowed       = "ClassNotAllowed"
	reasonClassRequired         = "ClassRequired"
)

// errHeldByClass ends a pass whose instance does not fit its hosting class, or whose class cannot
// be found: the stages after it leave every object as it runs.
var errHeldByClass = errors.New("held by its hosting class")

// hosting is what an instance's hosting class makes of it.
type hosting struct {
	// inst is the effective instance (hostingclass.Effective); nil when the class is not found.
	inst *v1alpha1.KintoInstance
	// className is the class that applies, "" when none does; updates are its spec.updates.
	className string
	updates   *v1alpha1.ClassUpdates
	// The HostingClass condition.
	status          metav1.ConditionStatus
	reason, message string
}

// hostedInstance finds the hosting class of inst, the one spec.className names or else the one
// marked default, and makes the effective instance under it.
func hostedInstance(ctx context.Context, c client.Reader, inst *v1alpha1.KintoInstance, requireClass bool) (hosting, error) {
	held := func(reason, message string) (hosting, error) {
		return hosting{status: metav1.ConditionFalse, reason: reason,
			message: message + "; the instance's objects are left as they are until then"}, nil
	}
	namespace := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: inst.Namespace}, namespace); err != nil {
		return hosting{}, err
	}
	var class *v1alpha1.KintoHostingClass
	if name := inst.Spec.ClassName; name != "" {
		class = &v1alpha1.KintoHostingClass{}
		err := c.Get(ctx, client.ObjectKey{Name: name}, class)
		if apierrors.IsNotFound(err) {
			return held(reasonClassNotFound, fmt.Sprintf("KintoHostingClass %q, which spec.className names, does not exist", name))
		}
		if err != nil {
			return hosting{}, err
		}
		if offered, err := offeredTo(class, namespace); err != nil || !offered {
			return held(reasonClassNotAllowed, fmt.Sprintf("KintoHostingClass %q, which spec.className names, is not offered to namespace %s", name, inst.Namespace))
		}
	} else {
		list := &v1alpha1.KintoHostingClassList{}
		if err := c.List(ctx, list); err != nil {
			return hosting{}, err
		}
		var defaults []string
		for i := range list.Items {
			if offered, err := offeredTo(&list.Items[i], namespace); list.Items[i].Spec.Default && err == nil && offered {
				class = &list.Items[i]
				defaults = append(defaults, class.Name)
			}
		}
		if len(defaults) > 1 {
			slices.Sort(defaults) // the cache lists in no set order
			return held(reasonSeveralDefaultClasses, fmt.Sprintf("spec.className is unset and KintoHostingClasses %s are all marked default: "+
				"name one in spec.className, or leave one class default", strings.Join(defaults, ", ")))
		}
	}

	effective, violations := hostingclass.Effective(inst, class)
	h := hosting{inst: effective, status: metav1.ConditionTrue}
	if class != nil {
		h.updates = class.Spec.Updates
	}
	switch {
	case class == nil && requireClass:
		// Held, but effective as it is: its backups go on under the built-in defaults.
		h.status, h.reason = metav1.ConditionFalse, reasonClassRequired
		h.message = "this operator hosts only instances under a KintoHostingClass (--require-class): name one in spec.className " +
			"(kubectl get khc lists them); the instance's objects are left as they are until then"
	case class == nil && len(violations) > 0:
		h.status, h.reason = metav1.ConditionFalse, reasonExceedsClass
		h.message = fmt.Sprintf("the instance asks for what only a hosting class can allow, and its objects are left as they are until it does not: %s",
			strings.Join(violations, "; "))
	case class == nil:
		h.reason, h.message = reasonNoClass, "spec.className is unset and no KintoHostingClass is marked default: the built-in defaults apply"
	case len(violations) > 0:
		h.status, h.reason = metav1.ConditionFalse, reasonExceedsClass
		h.message = fmt.Sprintf("the instance asks for more than hosting class %s allows, and its objects are left as they are until it fits: %s",
			class.Name, strings.Join(violations, "; "))
	case inst.Spec.ClassName == "":
		h.className, h.reason, h.message = class.Name, reasonClassApplied, fmt.Sprintf("hosting class %s, the default class, applies", class.Name)
	default:
		h.className, h.reason, h.message = class.Name, reasonClassApplied, fmt.Sprintf("hosting class %s applies", class.Name)
	}
	return h, nil
}

// offeredTo says whether class is offered to the instances of namespace. A selector the API
// server let through but that does not parse offers the class to no one.
func offeredTo(class *v1alpha1.KintoHostingClass, namespace *corev1.Namespace) (bool, error) {
	if class.Spec.NamespaceSelector == nil {
		return true, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(class.Spec.NamespaceSelector)
	if err != nil {
		return false, err
	}
	return selector.Matches(labels.Set(namespace.Labels)), nil
}

// reconcileHostingClass returns the instance as its hosting class makes it, which the rest of
// the pass works on, or ends the pass while the class cannot apply. It comes first: nothing is
// applied for an instance its class holds, so that one whose class tightened keeps running as it
// was.
func (r *KintoInstanceReconciler) reconcileHostingClass(ctx context.Context, p *pass) (*v1alpha1.KintoInstance, error) {
	h, err := hostedInstance(ctx, r.Client, p.inst, r.RequireClass)
	if err != nil {
		return nil, err
	}
	if h.status != metav1.ConditionTrue {
		setCondition(p, v1alpha1.ConditionHostingClass, h.status, h.reason, h.message)
		return nil, errHeldByClass
	}
	if p.inst.Spec.Replicas == nil {
		if err := r.pinReplicasForAutoscaler(ctx, p.inst, *h.inst.Spec.Replicas); err != nil {
			return nil, err
		}
		h.inst.ObjectMeta = p.inst.ObjectMeta // the generation the conditions describe, if written
	}
	// Set after the write above, at the generation it made: the pass its watch event brings
	// then finds the status as it would write it, and writes nothing.
	setCondition(p, v1alpha1.ConditionHostingClass, h.status, h.reason, h.message)
	p.status.ClassName = h.className
	if err := r.reconcileRelease(ctx, p, h.inst, h.updates); err != nil {
		return nil, err
	}
	return h.inst, nil
}

// pinReplicasForAutoscaler writes replicas, the effective number of server pods, into the
// spec of an instance that leaves it to its class, once an autoscaler scales the instance: the
// autoscaler reads the scale subresource, whose spec.replicas is 0 while the spec has none, and
// leaves alone a target at 0. Other instances keep following their class's default, and cost no
// write to create.
func (r *KintoInstanceReconciler) pinReplicasForAutoscaler(ctx context.Context, inst *v1alpha1.KintoInstance, replicas int32) error {
	scaled, err := autoscaled(ctx, r.Client, inst)
	if err != nil || !scaled {
		return err
	}
	patch := client.MergeFromWithOptions(inst.DeepCopy(), client.MergeFromWithOptimisticLock{})
	inst.Spec.Replicas = ptr.To(replicas)
	return r.patchInstance(ctx, inst, patch, false)
}

// instancesOfClass maps a class to the instances it hosts: those that name it and, while it is
// the default class, those that name none. (On an update, controller-runtime maps the old class
// too, so a class that stops being the default reaches the instances it leaves.)
func instancesOfClass(c client.Reader) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		class := o.(*v1alpha1.KintoHostingClass)
		names := []string{class.Name}
		if class.Spec.Default {
			names = append(names, "")
		}
		var reqs []reconcile.Request
		for _, name := range names {
			list := &v1alpha1.KintoInstanceList{}
			if err := c.List(ctx, list, client.MatchingFields{classNameIndex: name}); err != nil {
				log.FromContext(ctx).Error(err, "listing the instances of a hosting class", "class", class.Name)
				return nil
			}
			reqs = append(reqs, instanceRequests(list)...)
		}
		return reqs
	}
}
