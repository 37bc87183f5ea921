// Package controllers holds the reconcilers of the operator's resources.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
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
	// Network holds what the network policies need to know about the cluster.
	Network resources.NetworkOptions
}

// RBAC, least privilege: children are written with server-side apply (create, patch) and
// removed by the garbage collector, except migration Jobs, Ingresses and disruption budgets,
// which the operator deletes itself.
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances/status,verbs=get;patch
// Owner references that block owner deletion need update on the owner's finalizers.
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintoinstances/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets;configmaps;services;persistentvolumeclaims,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// pass is what one reconcile of one instance learns as its stages run.
type pass struct {
	inst *v1alpha1.KintoInstance
	// status is the status being computed; it is written once, at the end of the pass.
	status *v1alpha1.KintoInstanceStatus
	// configHash identifies the rendered configuration the server pods must run.
	configHash string
	// credentialsRevision and secretsRevision identify the state of the Secrets the database and
	// the server pods read.
	credentialsRevision, secretsRevision string
	// externalDatabasePort is the port of the external database's URL.
	externalDatabasePort int32
}

// stage is one step of a reconcile. Stages run in order; one that fails ends the pass.
type stage struct {
	name string
	run  func(ctx context.Context, p *pass) error
}

func (r *KintoInstanceReconciler) stages() []stage {
	return []stage{
		{"credentials", r.reconcileCredentials},
		{"referenced secrets", r.reconcileReferencedSecrets},
		{"config", r.reconcileConfig},
		{"service account", r.reconcileServiceAccount},
		{"network policies", r.reconcileNetworkPolicies},
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
	// An error is logged by controller-runtime and retried with exponential backoff.
	return ctrl.Result{}, failure
}

// reconcileCredentials applies the generated credentials, keeping every value already stored.
func (r *KintoInstanceReconciler) reconcileCredentials(ctx context.Context, p *pass) error {
	existing := &corev1.Secret{}
	key := types.NamespacedName{Namespace: p.inst.Namespace, Name: resources.CredentialsSecretName(p.inst)}
	if err := r.Get(ctx, key, existing); client.IgnoreNotFound(err) != nil {
		return err
	}
	holdsData := false
	if !resources.HasHMACSecrets(existing.Data) {
		var err error
		if holdsData, err = r.holdsData(ctx, p); err != nil {
			return err
		}
	}
	secret, err := resources.CredentialsSecret(p.inst, existing.Data, resources.RandomSource, holdsData)
	if errors.Is(err, resources.ErrHMACSecretsLost) {
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "CredentialsMissing",
			fmt.Sprintf("Secret %s: %v", key.Name, err))
	}
	if err != nil {
		return err
	}
	if err := apply(ctx, r.Client, secret); err != nil {
		return err
	}
	p.credentialsRevision = resources.SecretsRevision(map[string]string{secret.Name: secret.ResourceVersion})
	return nil
}

// reconcileReferencedSecrets checks the user's Secrets the instance reads, labels them so that
// the operator watches them, and notes their revision: a change rolls the server.
func (r *KintoInstanceReconciler) reconcileReferencedSecrets(ctx context.Context, p *pass) error {
	versions := map[string]string{resources.CredentialsSecretName(p.inst): p.credentialsRevision}
	for _, ref := range resources.ReferencedSecrets(p.inst) {
		secret, problem, err := r.readSecretKey(ctx, p.inst.Namespace, ref.SecretKeyRef)
		if err != nil {
			return err
		}
		if owner := secretOwner(secret); owner != "" && owner != p.inst.Name {
			secret, problem = nil, fmt.Sprintf("Secret %q belongs to KintoInstance %q: an instance may not read another instance's credentials", ref.Name, owner)
		}
		// Watched as soon as it exists, so that fixing it brings the instance back at once.
		if secret != nil && secret.Labels[resources.WatchedLabel] != "true" {
			// A merge patch of the label alone: it never creates the Secret, nor touches its data.
			patch := client.MergeFrom(secret.DeepCopy())
			metav1.SetMetaDataLabel(&secret.ObjectMeta, resources.WatchedLabel, "true")
			if err := r.Patch(ctx, secret, patch); err != nil {
				return err
			}
		}
		if problem == "" && ref.ForDatabase {
			p.externalDatabasePort, problem = databasePort(secret.Data[ref.Key])
		}
		if problem != "" {
			condType := v1alpha1.ConditionServerReady
			if ref.ForDatabase {
				condType = v1alpha1.ConditionDatabaseReady
			}
			setCondition(p, condType, metav1.ConditionFalse, "SecretNotReady", problem)
			return errors.New(problem)
		}
		versions[secret.Name] = secret.ResourceVersion
	}
	p.secretsRevision = resources.SecretsRevision(versions)
	return nil
}

// secretOwner is the instance a Secret of the operator's belongs to, "" for the user's Secrets.
func secretOwner(secret *corev1.Secret) string {
	if secret == nil || secret.Labels[resources.ManagedByLabel] != resources.ManagedBy {
		return ""
	}
	return secret.Labels[resources.InstanceLabel]
}

// databasePort is the port of a PostgreSQL URL, or what is wrong with the URL; it never quotes
// the URL, which holds a password.
func databasePort(raw []byte) (int32, string) {
	u, err := url.Parse(string(raw))
	if err != nil || u.Host == "" {
		return 0, "the external database URL is not a URL of the form postgresql://user:password@host:port/database"
	}
	if u.Scheme != "postgresql" {
		return 0, fmt.Sprintf("the external database URL uses the %q scheme; Kinto takes postgresql:// only", u.Scheme)
	}
	if u.Port() == "" {
		return resources.DatabasePort, ""
	}
	port, err := strconv.ParseInt(u.Port(), 10, 32)
	if err != nil || port < 1 || port > 65535 {
		return 0, "the external database URL has an invalid port"
	}
	return int32(port), ""
}

// reconcileNetworkPolicies isolates the instance's pods.
func (r *KintoInstanceReconciler) reconcileNetworkPolicies(ctx context.Context, p *pass) error {
	for _, policy := range resources.NetworkPolicies(p.inst, r.Network, p.externalDatabasePort) {
		if err := apply(ctx, r.Client, policy); err != nil {
			return err
		}
	}
	return nil
}

// readSecretKey reads a Secret the user referenced (nil when there is none) and says what is
// wrong with the key, or "" when it holds a value. It never reveals the value.
func (r *KintoInstanceReconciler) readSecretKey(ctx context.Context, namespace string, ref v1alpha1.SecretKeyRef) (*corev1.Secret, string, error) {
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Sprintf("Secret %q not found", ref.Name), nil
	case err != nil:
		return nil, "", err
	case len(secret.Data[ref.Key]) == 0:
		return secret, fmt.Sprintf("Secret %q has no key %q", ref.Name, ref.Key), nil
	}
	return secret, "", nil
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

// reconcileServiceAccount applies the identity every pod of the instance runs as.
func (r *KintoInstanceReconciler) reconcileServiceAccount(ctx context.Context, p *pass) error {
	return apply(ctx, r.Client, resources.ServiceAccount(p.inst))
}

// reconcileDatabase runs the managed PostgreSQL server and reports DatabaseReady.
func (r *KintoInstanceReconciler) reconcileDatabase(ctx context.Context, p *pass) error {
	if p.inst.Spec.ExternalDatabase() != nil {
		// The referenced-secrets stage has checked its URL Secret.
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "ExternalDatabase",
			"the external database URL is set; the migration Job checks that it answers")
		return nil
	}

	sts := resources.DatabaseStatefulSet(p.inst, p.credentialsRevision)
	objs := []client.Object{resources.DataVolumeClaim(p.inst)}
	for _, svc := range resources.DatabaseServices(p.inst) {
		objs = append(objs, svc)
	}
	for _, o := range append(objs, sts) {
		if err := apply(ctx, r.Client, o); err != nil {
			return err
		}
	}
	switch {
	case p.inst.Spec.Hibernate:
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, reasonHibernating, "PostgreSQL is scaled to zero; its volume is kept")
	case sts.Status.ReadyReplicas > 0 && sts.Status.ObservedGeneration == sts.Generation:
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "PostgreSQLReady", "PostgreSQL accepts connections")
	default:
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "PostgreSQLStarting", "waiting for the PostgreSQL pod to be ready")
	}
	return nil
}

// reconcileMigration runs `kinto migrate` once for spec.version before any server pod runs it,
// and moves status.version to it when the migration succeeded.
func (r *KintoInstanceReconciler) reconcileMigration(ctx context.Context, p *pass) error {
	target, current := p.inst.Spec.Version, p.status.Version
	if target == current {
		// A forced downgrade keeps its own reason while it lasts.
		if c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionSchemaMigrated); c == nil || c.Reason != "DowngradeForced" {
			setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated",
				fmt.Sprintf("the database schema is at Kinto %s", current))
		}
		return nil
	}
	if current != "" && compareVersions(target, current) < 0 {
		if p.inst.Annotations[v1alpha1.ForceDowngradeAnnotation] == target {
			p.status.Version = target
			setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "DowngradeForced",
				fmt.Sprintf("Kinto %s runs on a schema migrated for %s, as annotation %s asks", target, current, v1alpha1.ForceDowngradeAnnotation))
			return nil
		}
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "DowngradeRefused",
			fmt.Sprintf("Kinto migrations only go forward: the schema is at %s, spec.version asks for %s; the server keeps running %s "+
				"(to run %s anyway, annotate the instance with %s=%s)", current, target, current, target, v1alpha1.ForceDowngradeAnnotation, target))
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
	deploy := resources.ServerDeployment(p.inst, p.status.Version, p.configHash, p.secretsRevision)
	if err := apply(ctx, r.Client, deploy); err != nil {
		return err
	}
	if pdb := resources.ServerDisruptionBudget(p.inst); pdb != nil {
		if err := apply(ctx, r.Client, pdb); err != nil {
			return err
		}
	} else {
		stale := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: p.inst.Namespace, Name: resources.ServerName(p.inst)}}
		if err := r.Delete(ctx, stale); client.IgnoreNotFound(err) != nil {
			return err
		}
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
	case p.inst.Spec.Hibernate:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, reasonHibernating, "the server is scaled to zero")
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

// secretNameIndex indexes instances by the names of the user's Secrets they reference.
const secretNameIndex = ".spec.referencedSecretNames"

// SetupWithManager watches instances and everything they own: a child changed or deleted by hand
// brings its instance back to a reconcile, which puts it back. A change to a Secret an instance
// references brings that instance back too, and rolls its pods.
func (r *KintoInstanceReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.KintoInstance{}, secretNameIndex, func(o client.Object) []string {
		return resources.ReferencedSecretNames(o.(*v1alpha1.KintoInstance))
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
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, inst := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&inst)})
		}
		return reqs
	}
	return ctrl.NewControllerManagedBy(mgr).
		// Status writes change neither generation nor annotations: they need no new pass.
		For(&v1alpha1.KintoInstance{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&appsv1.Deployment{}).
		Owns(&batchv1.Job{}).
		Owns(&networkingv1.Ingress{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(referencing)).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(
			func(_ context.Context, o client.Object) []reconcile.Request { return instanceOf(o) })).
		Named("kintoinstance").
		Complete(r)
}
