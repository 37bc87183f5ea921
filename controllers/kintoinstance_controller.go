// Package controllers holds the reconcilers of the operator's resources.
package controllers

import (
	"context"
	"errors"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/catalog"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/rollout"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

// KintoInstanceReconciler turns each KintoInstance into the objects that run it.
type KintoInstanceReconciler struct {
	client.Client
	// APIReader reads objects the cache does not hold: Secrets the user references by name.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Network holds what the network policies need to know about the cluster.
	Network resources.NetworkOptions
	// GatewayAPI says whether the cluster serves HTTPRoutes (see GatewayAPIInstalled).
	GatewayAPI bool
	// RolloutLimits cap how many instances roll their running pods at once, in all and per
	// namespace. RolloutSlots counts them (its zero value is ready); RolloutRetryInterval is how
	// often a waiting instance looks for a free slot again; RolloutDeadline is how long an
	// instance may hold a slot before its rollout is taken for stalled (0: for ever).
	RolloutLimits        rollout.Limits
	RolloutSlots         rollout.Slots
	RolloutRetryInterval time.Duration
	RolloutDeadline      time.Duration
	// slotsFreed wakes the instances waiting for a slot when one is given back (see giveBackSlot).
	slotsFreed chan event.GenericEvent
	// OperatorImage runs the object-storage steps of backup and restore Jobs (`manager backup`).
	OperatorImage string
	// RequireClass holds every instance that no KintoHostingClass hosts.
	RequireClass bool
	// SharedBuckets signs the Jobs' access to the buckets hosting classes share between tenants.
	SharedBuckets SharedBuckets
	// Clock judges backup health.
	Clock
	// ownWrites keeps passes off cached reads older than the operator's own writes.
	ownWrites ownWrites
}

// Clock is the time a reconciler judges by: its timeouts and deadlines can then be tested.
type Clock struct {
	// Now is time.Now when nil.
	Now func() time.Time
}

func (c Clock) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// RBAC, least privilege: children are created, then written with server-side apply (create,
// patch), and removed by the garbage collector, except migration Jobs, Ingresses, HTTPRoutes and
// disruption budgets, which the operator deletes itself.
// The operator patches instances' finalizers (deletionPolicy Snapshot) and deletes the database
// volume once the final backup is taken, and a backup CronJob when spec.backup goes. It updates
// an instance's status (patches it while the instance is deleted).
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances/status,verbs=get;patch;update
// Owner references that block owner deletion need update on the owner's finalizers.
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch;create;patch
// What the final backup of the Snapshot policy needs is deleted after it (resources.KeptForFinalBackup).
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;patch;delete
// The server Deployment is deleted before the final backup of the Snapshot policy.
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// pass is the status one reconcile of one instance computes, and when to look at it again.
type pass struct {
	// inst is the instance as stored, whose generation the conditions describe.
	inst *v1alpha1.KintoInstance
	// status is the status being computed; it is written once, at the end of the pass.
	status *v1alpha1.KintoInstanceStatus
	// now is the operator's clock when the pass began: the time of the transitions it records,
	// against which deadlines are judged.
	now time.Time
	// releaseSlot says the instance gives its rollout slot back once its status is written.
	releaseSlot bool
	// rotatingPassword says a new database password waits for PostgreSQL to take it: the
	// instance keeps its rollout slot until the server has rolled to it.
	rotatingPassword bool
	// hmacSecretsDrawn says the credentials Secret holds HMAC secrets the operator drew for an
	// external database not yet migrated (resources.SecretKeyHMACSecretsDrawn).
	hmacSecretsDrawn bool
	// releaseImages are the images of the releases of the instance's catalogue, when it follows
	// one (see reconcileRelease).
	releaseImages map[string]string
	// recheckAt, when set, is when the instance must be looked at again though nothing changes.
	recheckAt time.Time
}

// requeueAt asks for a pass at t, or earlier if another stage asked for earlier.
func (p *pass) requeueAt(t time.Time) {
	if p.recheckAt.IsZero() || t.Before(p.recheckAt) {
		p.recheckAt = t
	}
}

// runStages runs the stages of one pass. The input stages read, in order, what the children
// depend on (hosting class, credentials, Secrets, restore source, the schema's release, the
// PostgreSQL server and its major upgrade); then
// every child is built once, gated, and held to the sizes its volumes can have; the first of
// these that fails ends the pass. The three
// stages after them need nothing of each other (an Ingress the API server refuses stops no
// backup): each runs, and one that fails turns its own condition false (see runIndependent).
func (r *KintoInstanceReconciler) runStages(ctx context.Context, p *pass) error {
	inst, err := r.reconcileHostingClass(ctx, p)
	if err != nil {
		return inStage(stageHostingClass, err)
	}
	credentials, err := r.reconcileCredentials(ctx, p, inst)
	if err != nil {
		return inStage(stageCredentials, err)
	}
	secrets, databasePort, err := r.reconcileReferencedSecrets(ctx, p, inst, credentials)
	if err != nil {
		return inStage(stageReferencedSecret, err)
	}
	restore, err := r.reconcileRestoreSource(ctx, p, inst)
	if err != nil {
		return inStage(stageRestoreSource, err)
	}
	if err := r.reconcileUpgrade(ctx, p, inst); err != nil {
		return inStage(stageUpgrade, err)
	}
	if err := r.reconcileSchemaVersion(ctx, p, inst); err != nil {
		return inStage(stageMigration, err)
	}
	databaseUpgrade, err := r.reconcileDatabaseUpgrade(ctx, p, inst)
	if err != nil {
		return inStage(stageDatabaseUpgrade, err)
	}
	sharedBucket, err := r.usesSharedBucket(ctx, inst)
	if err != nil {
		return inStage(stageBackups, err)
	}
	database, err := r.runningDatabase(ctx, inst)
	if err != nil {
		return inStage(stageDatabase, err)
	}
	children, err := resources.Desired(inst, resources.Inputs{
		SchemaVersion: p.status.Version, CredentialsRevision: credentials, SecretsRevision: secrets,
		ExternalDatabasePort: databasePort, RestoreSource: restore, PasswordRotation: p.rotatingPassword,
		Network: r.Network, GatewayAPI: r.GatewayAPI, OperatorImage: r.OperatorImage, SharedBucket: sharedBucket != nil,
		DatabaseUpgrade: databaseUpgradeInputs(inst, databaseUpgrade),
		ReleaseImages:   p.releaseImages,
		RunningDatabase: database,
		WritesClosed:    upgrade.WritesClosed(p.status.Upgrade),
	})
	if err != nil {
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "InvalidConfiguration", err.Error())
		return inStage(stageConfig, err)
	}
	if err := r.claimHost(ctx, p, inst, children); err != nil {
		return inStage(stageHost, err)
	}
	if err := r.reconcileRolloutSlot(ctx, p, inst, children); err != nil {
		return inStage(stageRolloutSlot, err)
	}
	if err := r.reconcileVolumeSizes(ctx, p, inst, children); err != nil {
		return inStage(stageVolumeSizes, err)
	}
	return runIndependent(p,
		stage{"", func() error {
			return r.reconcileWorkloads(ctx, p, inst, children, restore, credentials, secrets)
		}},
		stage{v1alpha1.ConditionExposed, func() error { return inStage(stageExposure, r.reconcileExposure(ctx, p, inst, children)) }},
		stage{v1alpha1.ConditionBackupHealthy, func() error {
			return inStage(stageBackups, r.reconcileBackups(ctx, p, inst, children, sharedBucket))
		}},
		stage{v1alpha1.ConditionBackupVerified, func() error {
			return inStage(stageBackupVerification, r.reconcileBackupVerification(ctx, p, inst, sharedBucket))
		}},
	)
}

// stage is a step of a pass that others do not wait for; its errors name their stage (inStage).
type stage struct {
	// condition is the one its failure turns false; "" for the workloads, whose failures Ready
	// reports (their own conditions say how far they got).
	condition string
	run       func() error
}

// runIndependent runs every stage, whatever the others do, and returns their failures.
func runIndependent(p *pass, stages ...stage) error {
	var failures []error
	for _, s := range stages {
		err := s.run()
		if err == nil {
			continue
		}
		if s.condition != "" {
			setCondition(p, s.condition, metav1.ConditionFalse, failureReason(err), err.Error())
		}
		failures = append(failures, err)
	}
	return errors.Join(failures...)
}

// failureReason is a failed stage's condition reason: Refused when the API server refused what
// the stage wrote (an admission policy or webhook, validation), else ReconcileError.
func failureReason(err error) string {
	if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) {
		return reasonRefused
	}
	return reasonReconcileError
}

// Reconcile reads the instance, runs the stages and records what they found in the status.
func (r *KintoInstanceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	inst := &v1alpha1.KintoInstance{}
	if err := r.Get(ctx, req.NamespacedName, inst); err != nil {
		if apierrors.IsNotFound(err) {
			r.ownWrites.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.ownWrites.behind(inst) {
		log.FromContext(ctx).V(1).Info("the cache has not shown the operator's last write to the instance yet; retrying", "after", cacheLagRetry)
		return ctrl.Result{RequeueAfter: cacheLagRetry}, nil
	}
	if !inst.DeletionTimestamp.IsZero() {
		// Children go with the garbage collector; data-holding ones stay unless owned. Under
		// the Snapshot policy a final backup comes first.
		result, err := r.finalizeDeletion(ctx, inst)
		if err != nil {
			countReconcileError(err, stageDeletion)
		}
		return result, err
	}
	if err := r.reconcileFinalizer(ctx, inst); err != nil {
		countReconcileError(err, stageFinalizer)
		return ctrl.Result{}, err
	}

	p := &pass{inst: inst, status: inst.Status.DeepCopy(), now: r.now()}
	var failure error
	err := r.runStages(ctx, p)
	// The class's watch brings back an instance its class holds when the class changes.
	waiting := errors.Is(err, errWaitingForRolloutSlot)
	if !waiting && !errors.Is(err, errHeldByClass) {
		failure = err
	}
	r.setReady(p, failure)
	r.releaseRolloutSlot(p)
	catalog.Settle(p.status, p.now)
	p.status.ObservedGeneration = inst.Generation

	if !equality.Semantic.DeepEqual(inst.Status, *p.status) {
		// The status is computed from the instance as read, which the cache can show a write
		// behind: written on that read's resource version only, so that a pass on a stale read
		// never undoes what the pass before it recorded (the rollout slot it took, say); the
		// pass is retried on a fresh read.
		before := inst.DeepCopy()
		inst.Status = *p.status
		err := r.updateStatus(ctx, inst)
		if apierrors.IsConflict(err) && failure == nil {
			// Soon, and not with the exponential backoff of errors: the write the cache has
			// not seen yet is often a status write, whose watch event brings no pass (the
			// predicates), so a backoff grown while the cache lagged (its watch broken, say)
			// would keep the instance waiting long after the cache caught up.
			log.FromContext(ctx).V(1).Info("status not written: the instance changed since it was read; retrying", "after", staleReadRetry)
			return ctrl.Result{RequeueAfter: staleReadRetry}, nil
		}
		if err != nil {
			countReconcileError(failure, stageStatus)
			return ctrl.Result{}, errors.Join(failure, err)
		}
		r.recordTransitions(before, p.status)
		countJobs(&before.Status, p.status)
		countUpgrade(&before.Status, p.status)
		countDatabaseUpgrade(&before.Status, p.status)
	}
	if p.releaseSlot {
		r.giveBackSlot(inst)
	}
	if failure != nil {
		// An error is logged by controller-runtime and retried with exponential backoff.
		countReconcileError(failure, stageStatus)
		return ctrl.Result{}, failure
	}
	result := ctrl.Result{}
	if waiting {
		result.RequeueAfter = r.RolloutRetryInterval
	}
	if !p.recheckAt.IsZero() {
		if after := p.recheckAt.Sub(r.now()) + time.Second; result.RequeueAfter == 0 || after < result.RequeueAfter {
			result.RequeueAfter = max(after, time.Second)
		}
	}
	return result, nil
}

// secretNameIndex indexes instances by the names of the user's Secrets they reference.
const secretNameIndex = ".spec.referencedSecretNames"

// staleReadRetry is how soon a pass whose status write found the instance changed since it
// was read runs again.
const staleReadRetry = time.Second

// exceptOwnCreation enqueues what mapping gives for each event of an object, but leaves the
// object's own instance out of the event of the operator's own creation of it (see
// verifiedChildren.created); other instances the object concerns still get it, and every other
// event goes to all.
func exceptOwnCreation(mapping handler.MapFunc) handler.EventHandler {
	all := handler.EnqueueRequestsFromMapFunc(mapping)
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			own := types.NamespacedName{}
			if verified.created(e.Object) {
				own = types.NamespacedName{Namespace: e.Object.GetNamespace(), Name: e.Object.GetLabels()[resources.InstanceLabel]}
			}
			for _, req := range mapping(ctx, e.Object) {
				if req.NamespacedName != own {
					q.Add(req)
				}
			}
		},
		UpdateFunc:  all.Update,
		DeleteFunc:  all.Delete,
		GenericFunc: all.Generic,
	}
}

// instanceRequests asks for a reconcile of each instance of list.
func instanceRequests(list *v1alpha1.KintoInstanceList) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// SetupWithManager watches instances and everything they own: a child changed or deleted by hand
// brings its instance back to a reconcile, which puts it back. A change to a Secret an instance
// references brings that instance back too, and rolls its pods; a change to a hosting class
// brings back the instances it hosts.
func (r *KintoInstanceReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.KintoInstance{}, secretNameIndex, func(o client.Object) []string {
		return resources.ReferencedSecretNames(o.(*v1alpha1.KintoInstance))
	})
	if err != nil {
		return err
	}
	if err := indexClassCatalogs(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if err := indexHosts(ctx, mgr, r.GatewayAPI); err != nil {
		return err
	}
	err = mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.KintoInstance{}, classNameIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.KintoInstance).Spec.ClassName}
	})
	if err != nil {
		return err
	}
	// Data-holding children outlive their instance under the Retain policy and then carry no
	// owner reference: they map back to their instance by label.
	instanceOf := func(o client.Object) []reconcile.Request {
		name, ok := o.GetLabels()[resources.InstanceLabel]
		if !ok || o.GetLabels()[resources.ManagedByLabel] != resources.ManagedBy {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	}
	// Children the final backup needs are not controlled by an instance under the Snapshot
	// policy (resources.KeptForFinalBackup): their labels name it.
	byInstanceLabel := handler.EnqueueRequestsFromMapFunc(
		func(_ context.Context, o client.Object) []reconcile.Request { return instanceOf(o) })
	referencing := func(ctx context.Context, secret client.Object) []reconcile.Request {
		if own := instanceOf(secret); own != nil {
			return own
		}
		list := &v1alpha1.KintoInstanceList{}
		if err := mgr.GetClient().List(ctx, list, client.InNamespace(secret.GetNamespace()),
			client.MatchingFields{secretNameIndex: secret.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "listing the instances that reference a Secret", "secret", secret.GetName())
			return nil
		}
		return instanceRequests(list)
	}
	// The creation of a child by the operator itself needs no new pass (verifiedChildren.created):
	// without these echoes, a fleet being provisioned takes one pass an instance, not two.
	notOwnCreation := builder.WithPredicates(predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !verified.created(e.Object) },
	})
	b := ctrl.NewControllerManagedBy(mgr)
	if r.GatewayAPI {
		b = b.Owns(&gatewayv1.HTTPRoute{}, notOwnCreation).
			Watches(&gatewayv1.HTTPRoute{}, exceptOwnCreation(instancesAskingForHosts(mgr.GetClient())))
	}
	return b.
		// Status writes change neither generation nor annotations: they need no new pass.
		For(&v1alpha1.KintoInstance{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.ConfigMap{}, notOwnCreation).
		Watches(&corev1.Service{}, byInstanceLabel, notOwnCreation).
		Watches(&appsv1.StatefulSet{}, byInstanceLabel, notOwnCreation).
		Owns(&appsv1.Deployment{}, notOwnCreation).
		Owns(&batchv1.Job{}, notOwnCreation).
		Owns(&batchv1.CronJob{}, notOwnCreation).
		Owns(&networkingv1.Ingress{}, notOwnCreation).
		// An Ingress that goes frees its host for the next instance asking for it.
		Watches(&networkingv1.Ingress{}, exceptOwnCreation(instancesAskingForHosts(mgr.GetClient()))).
		Watches(&networkingv1.NetworkPolicy{}, byInstanceLabel, notOwnCreation).
		Watches(&corev1.ServiceAccount{}, byInstanceLabel, notOwnCreation).
		Owns(&policyv1.PodDisruptionBudget{}, notOwnCreation).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(instanceAutoscaled)).
		Watches(&corev1.Secret{}, exceptOwnCreation(referencing)).
		Watches(&v1alpha1.KintoHostingClass{}, handler.EnqueueRequestsFromMapFunc(instancesOfClass(mgr.GetClient()))).
		Watches(&v1alpha1.KintoReleaseCatalog{}, handler.EnqueueRequestsFromMapFunc(instancesOfCatalog(mgr.GetClient()))).
		// A namespace's labels decide which classes its instances may have.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, ns client.Object) []reconcile.Request {
			list := &v1alpha1.KintoInstanceList{}
			if err := mgr.GetClient().List(ctx, list, client.InNamespace(ns.GetName())); err != nil {
				log.FromContext(ctx).Error(err, "listing the instances of a namespace", "namespace", ns.GetName())
				return nil
			}
			return instanceRequests(list)
		})).
		// A pod that cannot be scheduled, pull its image or start changes no workload's status:
		// its instance looks at it to say why it waits.
		Watches(&corev1.Pod{}, byInstanceLabel).
		Watches(&corev1.PersistentVolumeClaim{}, byInstanceLabel, notOwnCreation).
		// A backup's progress is the instance's BackupHealthy, and its final backup's, the
		// instance's way out.
		Watches(&v1alpha1.KintoBackup{}, handler.EnqueueRequestsFromMapFunc(
			func(_ context.Context, o client.Object) []reconcile.Request {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.(*v1alpha1.KintoBackup).Spec.Instance}}}
			})).
		WatchesRawSource(r.slotsFreedSource(mgr.GetClient())).
		Named("kintoinstance").
		Complete(r)
}
