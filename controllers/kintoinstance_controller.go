// Package controllers holds the reconcilers of the operator's resources.
package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// KintoInstanceReconciler turns each KintoInstance into the objects that run it.
type KintoInstanceReconciler struct {
	client.Client
	// APIReader reads objects the cache does not hold: Secrets the user references by name.
	APIReader client.Reader
	Recorder  events.EventRecorder
}

// RBAC, least privilege: children are written with server-side apply (create, patch) and
// removed by the garbage collector, except migration Jobs and Ingresses, which the operator
// deletes itself.
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances/status,verbs=get;patch
// Owner references that block owner deletion need update on the owner's finalizers.
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets;configmaps;services;persistentvolumeclaims,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// pass is what one reconcile of one instance learns as its stages run.
type pass struct {
	inst *v1alpha1.KintoInstance
	// status is the status being computed; it is written once, at the end of the pass.
	status *v1alpha1.KintoInstanceStatus
	// configHash identifies the rendered configuration the server pods must run.
	configHash string
}

// stage is one step of a reconcile. Stages run in order; one that fails ends the pass.
type stage struct {
	name string
	run  func(ctx context.Context, p *pass) error
}

func (r *KintoInstanceReconciler) stages() []stage {
	return []stage{
		{"credentials", r.reconcileCredentials},
		{"config", r.reconcileConfig},
		{"database", r.reconcileDatabase},
		{"migration", r.reconcileMigration},
		{"server", r.reconcileServer},
		{"ingress", r.reconcileIngress},
	}
}

// Reconcile reads the instance, runs the stages and records what they found in the status.
func (r *KintoInstanceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	inst := &v1alpha1.KintoInstance{}
	if err := r.Get(ctx, req.NamespacedName, inst); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !inst.DeletionTimestamp.IsZero() {
		// Children go with the garbage collector; data-holding ones stay unless owned.
		return ctrl.Result{}, nil
	}

	p := &pass{inst: inst, status: inst.Status.DeepCopy()}
	var failure error
	for _, s := range r.stages() {
		if err := s.run(ctx, p); err != nil {
			failure = fmt.Errorf("%s: %w", s.name, err)
			break
		}
	}
	r.setReady(p, failure)
	p.status.ObservedGeneration = inst.Generation
	r.recordTransitions(inst, p.status)

	if !equality.Semantic.DeepEqual(inst.Status, *p.status) {
		patch := client.MergeFrom(inst.DeepCopy())
		inst.Status = *p.status
		if err := r.Status().Patch(ctx, inst, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	if failure != nil {
		log.FromContext(ctx).Error(failure, "reconcile failed")
		// Returning the error retries with exponential backoff.
		return ctrl.Result{}, failure
	}
	return ctrl.Result{}, nil
}

// reconcileCredentials applies the generated credentials, keeping every value already stored.
func (r *KintoInstanceReconciler) reconcileCredentials(ctx context.Context, p *pass) error {
	existing := &corev1.Secret{}
	key := types.NamespacedName{Namespace: p.inst.Namespace, Name: resources.CredentialsSecretName(p.inst)}
	err := r.Get(ctx, key, existing)
	if apierrors.IsNotFound(err) {
		if holds, err := r.holdsData(ctx, p); err != nil || holds {
			if err == nil {
				err = fmt.Errorf("Secret %s is missing while the instance already holds data: new HMAC secrets would change every user id, "+
					"so the operator does not regenerate them; restore the Secret, or delete the instance's data to start afresh", key.Name)
				setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "CredentialsMissing", err.Error())
			}
			return err
		}
	} else if err != nil {
		return err
	}
	secret, err := resources.CredentialsSecret(p.inst, existing.Data, resources.RandomSource)
	if err != nil {
		return err
	}
	return apply(ctx, r.Client, secret)
}

// holdsData says whether the instance's database may already hold data: its schema was migrated,
// or its managed volume exists.
func (r *KintoInstanceReconciler) holdsData(ctx context.Context, p *pass) (bool, error) {
	if p.status.Version != "" {
		return true, nil
	}
	if p.inst.Spec.ManagedDatabase() == nil {
		return false, nil
	}
	pvc := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, types.NamespacedName{Namespace: p.inst.Namespace, Name: resources.DataVolumeClaimName(p.inst)}, pvc)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// reconcileConfig applies the rendered kinto.ini.
func (r *KintoInstanceReconciler) reconcileConfig(ctx context.Context, p *pass) error {
	cm, hash, err := resources.ConfigMap(p.inst)
	if err != nil {
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "InvalidConfiguration", err.Error())
		return err
	}
	p.configHash = hash
	return apply(ctx, r.Client, cm)
}

// reconcileDatabase runs the managed PostgreSQL server, or checks the external database's
// Secret, and reports DatabaseReady.
func (r *KintoInstanceReconciler) reconcileDatabase(ctx context.Context, p *pass) error {
	if ext := p.inst.Spec.ExternalDatabase(); ext != nil {
		if msg := r.checkSecretKey(ctx, p.inst.Namespace, ext.URLSecret); msg != "" {
			setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "SecretNotReady", msg)
			return fmt.Errorf("%s", msg)
		}
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "ExternalDatabase",
			"the external database URL is set; the migration Job checks that it answers")
		return nil
	}

	sts := resources.DatabaseStatefulSet(p.inst)
	objs := []client.Object{resources.DataVolumeClaim(p.inst)}
	for _, svc := range resources.DatabaseServices(p.inst) {
		objs = append(objs, svc)
	}
	for _, o := range append(objs, sts) {
		if err := apply(ctx, r.Client, o); err != nil {
			return err
		}
	}
	if err := r.Get(ctx, client.ObjectKeyFromObject(sts), sts); err != nil {
		return err
	}
	if sts.Status.ReadyReplicas > 0 && sts.Status.ObservedGeneration == sts.Generation {
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "PostgreSQLReady", "PostgreSQL accepts connections")
	} else {
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "PostgreSQLStarting", "waiting for the PostgreSQL pod to be ready")
	}
	return nil
}

// checkSecretKey says what is wrong with a Secret key the user referenced, or "" when it holds a
// value. It never reveals the value.
func (r *KintoInstanceReconciler) checkSecretKey(ctx context.Context, namespace string, ref v1alpha1.SecretKeyRef) string {
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("Secret %q not found", ref.Name)
	case err != nil:
		return fmt.Sprintf("reading Secret %q: %v", ref.Name, err)
	case len(secret.Data[ref.Key]) == 0:
		return fmt.Sprintf("Secret %q has no key %q", ref.Name, ref.Key)
	}
	return ""
}

// reconcileMigration runs `kinto migrate` once for spec.version before any server pod runs it,
// and moves status.version to it when the migration succeeded.
func (r *KintoInstanceReconciler) reconcileMigration(ctx context.Context, p *pass) error {
	target, current := p.inst.Spec.Version, p.status.Version
	if target == current {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated",
			fmt.Sprintf("the database schema is at Kinto %s", current))
		return nil
	}
	if current != "" && compareVersions(target, current) < 0 {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "DowngradeRefused",
			fmt.Sprintf("Kinto migrations only go forward: the schema is at %s, spec.version asks for %s; the server keeps running %s", current, target, current))
		return nil
	}
	if !meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionDatabaseReady) {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "WaitingForDatabase",
			fmt.Sprintf("the migration to Kinto %s starts when the database is ready", target))
		return nil
	}

	job := &batchv1.Job{}
	key := types.NamespacedName{Namespace: p.inst.Namespace, Name: resources.MigrateJobName(p.inst, target)}
	err := r.Get(ctx, key, job)
	if apierrors.IsNotFound(err) {
		// A Job's pod template is immutable: it is created once and then only read.
		job = resources.MigrateJob(p.inst, target)
		if err := apply(ctx, r.Client, job); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}

	switch jobState(job) {
	case batchv1.JobComplete:
		p.status.Version = target
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated",
			fmt.Sprintf("the database schema is at Kinto %s", target))
		return r.deleteOtherMigrateJobs(ctx, p.inst, target)
	case batchv1.JobFailed:
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "MigrationFailed",
			fmt.Sprintf("Job %s failed to migrate the schema to Kinto %s (see its pod's log); the server keeps running %q", job.Name, target, current))
	default:
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating",
			fmt.Sprintf("Job %s is migrating the schema to Kinto %s", job.Name, target))
	}
	return nil
}

// jobState is JobComplete or JobFailed once the Job has finished, "" while it runs.
func jobState(job *batchv1.Job) batchv1.JobConditionType {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// deleteOtherMigrateJobs removes the migration Jobs of other releases once one has succeeded.
func (r *KintoInstanceReconciler) deleteOtherMigrateJobs(ctx context.Context, inst *v1alpha1.KintoInstance, keep string) error {
	jobs := &batchv1.JobList{}
	sel := resources.SelectorLabels(inst, resources.ComponentMigrate)
	if err := r.List(ctx, jobs, client.InNamespace(inst.Namespace), client.MatchingLabels(sel)); err != nil {
		return err
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if job.Name == resources.MigrateJobName(inst, keep) {
			continue
		}
		if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// reconcileServer runs the Kinto server at the release the schema is migrated to, and reports
// ServerReady from the Deployment's rollout.
func (r *KintoInstanceReconciler) reconcileServer(ctx context.Context, p *pass) error {
	svc := resources.ServerService(p.inst)
	if err := apply(ctx, r.Client, svc); err != nil {
		return err
	}
	p.status.URL = resources.URL(p.inst)
	if p.status.Version == "" {
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "WaitingForMigration",
			"the server starts once the database schema is migrated")
		return nil
	}
	deploy := resources.ServerDeployment(p.inst, p.status.Version, p.configHash)
	if err := apply(ctx, r.Client, deploy); err != nil {
		return err
	}
	if err := r.Get(ctx, client.ObjectKeyFromObject(deploy), deploy); err != nil {
		return err
	}
	selector, err := metav1.LabelSelectorAsSelector(deploy.Spec.Selector)
	if err != nil {
		return err
	}
	p.status.Selector = selector.String()
	p.status.Replicas = deploy.Status.Replicas
	p.status.ReadyReplicas = deploy.Status.ReadyReplicas

	want := *deploy.Spec.Replicas
	s := deploy.Status
	switch {
	case s.ObservedGeneration < deploy.Generation || s.UpdatedReplicas < want || s.Replicas > s.UpdatedReplicas:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "RollingOut",
			fmt.Sprintf("%d of %d server pods run the current revision", s.UpdatedReplicas, want))
	case s.AvailableReplicas < want:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "PodsNotReady",
			fmt.Sprintf("%d of %d server pods are ready", s.AvailableReplicas, want))
	default:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionTrue, "Available",
			fmt.Sprintf("%d of %d server pods are ready", s.AvailableReplicas, want))
	}
	return nil
}

// reconcileIngress applies the Ingress, or removes it when spec.ingress is unset.
func (r *KintoInstanceReconciler) reconcileIngress(ctx context.Context, p *pass) error {
	if ing := resources.Ingress(p.inst); ing != nil {
		return apply(ctx, r.Client, ing)
	}
	stale := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: p.inst.Namespace, Name: resources.IngressName(p.inst)}}
	return client.IgnoreNotFound(r.Delete(ctx, stale))
}

// SetupWithManager watches instances and everything they own: a child changed or deleted by hand
// brings its instance back to a reconcile, which puts it back.
func (r *KintoInstanceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Data-holding children outlive their instance under the Retain policy and then carry no
	// owner reference: they map back to their instance by label.
	byInstanceLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		name, ok := o.GetLabels()[resources.InstanceLabel]
		if !ok || o.GetLabels()[resources.ManagedByLabel] != resources.ManagedBy {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		// Status writes change no generation: they need no new pass.
		For(&v1alpha1.KintoInstance{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&appsv1.Deployment{}).
		Owns(&batchv1.Job{}).
		Owns(&networkingv1.Ingress{}).
		Watches(&corev1.Secret{}, byInstanceLabel).
		Watches(&corev1.PersistentVolumeClaim{}, byInstanceLabel).
		Named("kintoinstance").
		Complete(r)
}
