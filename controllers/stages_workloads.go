// The stages that apply the objects running an instance: configuration, identity, network
// isolation, database, migration, server and exposure.

package controllers

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

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

// reconcileNetworkPolicies isolates the instance's pods.
func (r *KintoInstanceReconciler) reconcileNetworkPolicies(ctx context.Context, p *pass) error {
	for _, policy := range resources.NetworkPolicies(p.inst, r.Network, p.externalDatabasePort, objectStoragePorts(p)) {
		if err := apply(ctx, r.Client, policy); err != nil {
			return err
		}
	}
	return nil
}

// objectStoragePorts are the ports of the object storage the instance's backup and restore pods
// reach: its backup destination's, and that of the backup it starts from until it is restored.
func objectStoragePorts(p *pass) []int32 {
	var ports []int32
	if b := p.inst.Spec.Backup; b != nil && b.Destination != nil && b.Destination.S3 != nil {
		ports = append(ports, resources.ObjectStoragePort(&b.Destination.S3.S3Connection))
	}
	if src := p.restoreSource; src != nil && src.S3 != nil {
		ports = append(ports, resources.ObjectStoragePort(src.S3))
	}
	return ports
}

// reconcileDatabase runs the managed PostgreSQL server and reports DatabaseReady.
func (r *KintoInstanceReconciler) reconcileDatabase(ctx context.Context, p *pass) error {
	if p.inst.Spec.ExternalDatabase() != nil {
		// The referenced-secrets stage has checked its URL Secret.
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "ExternalDatabase",
			"the external database URL is set; the migration Job checks that it answers")
		return nil
	}

	if err := r.applyClaim(ctx, resources.DataVolumeClaim(p.inst)); err != nil {
		return err
	}
	sts := databaseStatefulSet(p, r.OperatorImage)
	var objs []client.Object
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

// applyClaim applies a volume claim, keeping what an existing claim has fixed: its storage class,
// which cannot change, and its size, which cannot shrink. The instance's own values are held to
// that by the API, but the defaults of its hosting class may change under it.
func (r *KintoInstanceReconciler) applyClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	existing := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, client.ObjectKeyFromObject(pvc), existing)
	if client.IgnoreNotFound(err) != nil {
		return err
	}
	if err == nil {
		keepClaim(pvc, existing)
	}
	return apply(ctx, r.Client, pvc)
}

// keepClaim carries an existing claim's storage class over to the desired one, and its size
// when that is larger.
func keepClaim(desired, existing *corev1.PersistentVolumeClaim) {
	desired.Spec.StorageClassName = existing.Spec.StorageClassName
	requests := desired.Spec.Resources.Requests
	if size := existing.Spec.Resources.Requests[corev1.ResourceStorage]; size.Cmp(requests[corev1.ResourceStorage]) > 0 {
		requests[corev1.ResourceStorage] = size
	}
}

// databaseStatefulSet is the managed PostgreSQL server, restarted when its credentials change.
func databaseStatefulSet(p *pass, operatorImage string) *appsv1.StatefulSet {
	credentials := resources.SecretsRevision(map[string]string{resources.CredentialsSecretName(p.inst): p.credentialsVersion})
	return resources.DatabaseStatefulSet(p.inst, credentials, operatorImage)
}

// serverDeployment is the Kinto server at the release the schema is migrated to, with the given
// configuration.
func serverDeployment(p *pass, configHash string) *appsv1.Deployment {
	return resources.ServerDeployment(p.inst, p.status.Version, configHash, p.secretsRevision)
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
	if restorePending(p) {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "WaitingForRestore",
			fmt.Sprintf("the migration to Kinto %s starts once the backup is restored", target))
		return nil
	}

	key := types.NamespacedName{Namespace: p.inst.Namespace, Name: resources.MigrateJobName(p.inst, target)}
	job, err := startJob(ctx, r.Client, key, p.inst.UID, func() *batchv1.Job { return resources.MigrateJob(p.inst, target) })
	if err != nil {
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
		if err := r.deleteIfExists(ctx, job); err != nil {
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
	deploy := serverDeployment(p, p.configHash)
	if err := apply(ctx, r.Client, deploy); err != nil {
		return err
	}
	if pdb := resources.ServerDisruptionBudget(p.inst); pdb != nil {
		if err := apply(ctx, r.Client, pdb); err != nil {
			return err
		}
	} else {
		stale := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: p.inst.Namespace, Name: resources.ServerName(p.inst)}}
		if err := r.deleteIfExists(ctx, stale); err != nil {
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

// reconcileExposure applies the Ingress or the HTTPRoute the spec asks for, and removes the
// other. A route is refused, clearly, where the Gateway API is not installed.
func (r *KintoInstanceReconciler) reconcileExposure(ctx context.Context, p *pass) error {
	if ing := resources.Ingress(p.inst); ing != nil {
		if err := apply(ctx, r.Client, ing); err != nil {
			return err
		}
	} else {
		stale := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: p.inst.Namespace, Name: resources.IngressName(p.inst)}}
		if err := r.deleteIfExists(ctx, stale); err != nil {
			return err
		}
	}
	route := resources.HTTPRoute(p.inst)
	switch {
	case route != nil && !r.GatewayAPI:
		return errors.New("spec.gateway needs the Gateway API (HTTPRoute, gateway.networking.k8s.io/v1) installed in the cluster")
	case route != nil:
		return apply(ctx, r.Client, route)
	case r.GatewayAPI:
		stale := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: p.inst.Namespace, Name: resources.HTTPRouteName(p.inst)}}
		return r.deleteIfExists(ctx, stale)
	}
	return nil
}
