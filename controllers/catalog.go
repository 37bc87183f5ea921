// The release catalogue: which release, and which images, an instance that follows its hosting
// class's KintoReleaseCatalog (spec.updates) runs. internal/catalog decides; this applies it to
// the effective instance, whose spec.version the rest of the pass migrates to and rolls out, as
// for a change of spec.version by hand.

package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/catalog"
)

// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoreleasecatalogs,verbs=get;list;watch

// classCatalogIndex indexes hosting classes by the catalogue their spec.updates names.
const classCatalogIndex = ".spec.updates.catalog"

// reasonNoCatalog: the instance asks to follow a catalogue, and its class names none.
const reasonNoCatalog = "NoCatalog"

// reconcileRelease makes inst, the effective instance under class, run the release and images
// its class's catalogue gives it, when it follows one; it records what the catalogue offers in
// the status and ends the pass (errHeldByClass) while the release it runs cannot be run from the
// catalogue.
func (r *KintoInstanceReconciler) reconcileRelease(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, class *v1alpha1.ClassUpdates) error {
	if inst.Spec.Updates == nil {
		p.status.Updates = nil
		meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionRelease)
		return nil
	}
	if class == nil {
		p.status.Updates = nil
		setCondition(p, v1alpha1.ConditionRelease, metav1.ConditionFalse, reasonNoCatalog, fmt.Sprintf(
			"spec.updates asks to follow a release catalogue, and the instance's hosting class names none (spec.updates.catalog): spec.version %s applies",
			inst.Spec.Version))
		return nil
	}
	cat := &v1alpha1.KintoReleaseCatalog{}
	if err := r.Get(ctx, client.ObjectKey{Name: class.Catalog}, cat); apierrors.IsNotFound(err) {
		cat = nil
	} else if err != nil {
		return err
	}
	res := catalog.Resolve(cat, *class, p.inst, p.now)
	p.status.Updates = &res.Status
	status := metav1.ConditionTrue
	if !res.Healthy() {
		status = metav1.ConditionFalse
	}
	setCondition(p, v1alpha1.ConditionRelease, status, res.Reason, res.Message)
	if res.Hold {
		return errHeldByClass
	}
	if !res.RecheckAt.IsZero() {
		p.requeueAt(res.RecheckAt)
	}
	inst.Spec.Version, inst.Spec.Image = res.Version, ""
	p.releaseImages = res.Images
	if db := inst.Spec.ManagedDatabase(); db != nil {
		// The catalogue's default major reaches the instance as a change of
		// spec.database.managed.version would: by a PostgreSQL major upgrade.
		if res.DatabaseVersion != db.Version {
			db.Version, db.Image = res.DatabaseVersion, ""
		}
		if res.DatabaseImage != "" {
			db.Image = res.DatabaseImage
		}
	}
	return nil
}

// heldByCatalog is the Release condition of an instance its catalogue holds, else nil.
func heldByCatalog(p *pass) *metav1.Condition {
	c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionRelease)
	if c == nil || !catalog.Holds(c.Reason) {
		return nil
	}
	return c
}

// instancesOfCatalog maps a catalogue to the instances of the classes that name it, through the
// classes' index: a new release or image reaches them at once.
func instancesOfCatalog(c client.Reader) func(context.Context, client.Object) []reconcile.Request {
	ofClass := instancesOfClass(c)
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		classes := &v1alpha1.KintoHostingClassList{}
		if err := c.List(ctx, classes, client.MatchingFields{classCatalogIndex: o.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "listing the hosting classes of a release catalogue", "catalog", o.GetName())
			return nil
		}
		var reqs []reconcile.Request
		for i := range classes.Items {
			reqs = append(reqs, ofClass(ctx, &classes.Items[i])...)
		}
		return reqs
	}
}

// indexClassCatalogs indexes hosting classes by their catalogue (classCatalogIndex).
func indexClassCatalogs(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &v1alpha1.KintoHostingClass{}, classCatalogIndex, func(o client.Object) []string {
		if u := o.(*v1alpha1.KintoHostingClass).Spec.Updates; u != nil {
			return []string{u.Catalog}
		}
		return nil
	})
}
