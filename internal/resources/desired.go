package resources

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Inputs are what an instance's children depend on besides its spec: what the reconciler read
// from the cluster before building them, and how the operator runs.
type Inputs struct {
	// SchemaVersion is the release the database schema is migrated to (status.version): the
	// server runs it. Empty before the first migration, when no server runs yet.
	SchemaVersion string
	// CredentialsRevision is the resource version of the credentials Secret, which the database
	// pod reads; SecretsRevision identifies every Secret the server pods read (SecretsRevision).
	CredentialsRevision, SecretsRevision string
	// PasswordRotation says a new database password waits in the credentials Secret for
	// PostgreSQL to take it.
	PasswordRotation bool
	// ExternalDatabasePort is the port of the external database's URL.
	ExternalDatabasePort int32
	// RestoreSource is the dump spec.bootstrap names while it waits to be restored, else nil.
	RestoreSource *RestoreSource
	// Network is what the network policies need to know about the cluster.
	Network NetworkOptions
	// GatewayAPI says whether the cluster serves HTTPRoutes: without it, none is built or removed.
	GatewayAPI bool
	// OperatorImage runs the object-storage steps of backup and restore pods.
	OperatorImage string
	// RunningDatabase is the database's StatefulSet as it is, nil before it exists: the tools
	// image it runs stays while nothing else changes (DatabaseStatefulSetKeepingTools).
	RunningDatabase *appsv1.StatefulSet
	// WritesClosed says a safe upgrade runs the server in Kinto's read-only mode (CloseWrites),
	// and its migration, if due, runs as one of its steps.
	WritesClosed bool
	// SharedBucket says the instance's backups go to its hosting class's bucket, shared by every
	// tenant, whose credentials its pods never get: the operator runs the schedule itself
	// (ScheduledBackupJob), so no CronJob is built.
	SharedBucket bool
	// DatabaseUpgrade is what the step of a PostgreSQL major upgrade runs; nil when it runs
	// nothing besides the serving server.
	DatabaseUpgrade *DatabaseUpgradeStep
	// ReleaseImages are the images of the releases of the instance's release catalogue, when it
	// follows one (spec.updates): the server runs the image of SchemaVersion, the migration the
	// image of spec.version. Nil: spec.image, else the official image, for both.
	ReleaseImages map[string]string
}

// DatabaseUpgradeStep is what one step of a PostgreSQL major upgrade (internal/pgupgrade) asks of
// the children.
type DatabaseUpgradeStep struct {
	// CloseWrites runs the Kinto server in Kinto's read-only mode while the database is copied.
	CloseWrites bool
	// Target, when set, is the new server to run beside the serving one; CopyFrom, when set
	// too, the server its copy Job dumps into it.
	Target, CopyFrom *v1alpha1.DatabaseServerRef
	// Retired are servers to delete: their StatefulSet, and their volume claim when
	// WithVolume.
	Retired []RetiredDatabase
}

// RetiredDatabase is a server of the instance that goes.
type RetiredDatabase struct {
	Server     v1alpha1.DatabaseServerRef
	WithVolume bool
}

// Children are every object an instance owns, as one pass wants them. Nil fields are children
// the instance does not have (an external database has no StatefulSet; no server runs before
// the first migration).
type Children struct {
	// Config holds the rendered kinto.ini; ConfigHash identifies it.
	Config     *corev1.ConfigMap
	ConfigHash string
	// ServiceAccount is the identity every pod of the instance runs as.
	ServiceAccount  *corev1.ServiceAccount
	NetworkPolicies []*networkingv1.NetworkPolicy
	// The managed database: its volume, its Services and PostgreSQL.
	DataVolumeClaim  *corev1.PersistentVolumeClaim
	DatabaseServices []*corev1.Service
	Database         *appsv1.StatefulSet
	// The Kinto server at the schema's release, and how it is reached.
	ServerService    *corev1.Service
	Server           *appsv1.Deployment
	DisruptionBudget *policyv1.PodDisruptionBudget
	Ingress          *networkingv1.Ingress
	HTTPRoute        *gatewayv1.HTTPRoute
	// The scheduled backups, applied once their destination is checked.
	BackupVolumeClaim *corev1.PersistentVolumeClaim
	BackupSchedule    *batchv1.CronJob
	// A PostgreSQL major upgrade's new server, while it is started and filled (the serving one
	// is Database), and its copy Job; the reconciler adds them as its step asks.
	UpgradeVolumeClaim *corev1.PersistentVolumeClaim
	UpgradeDatabase    *appsv1.StatefulSet
	DatabaseCopy       *batchv1.Job
	// Jobs are created once, when their step is due: their pod template cannot change.
	// Migration migrates the schema to spec.version; Restore restores RestoreSource, a dump,
	// before it; Import loads RestoreSource, a portable export, after it.
	Migration, Restore, Import *batchv1.Job
	// Remove are the optional children the spec does not ask for, to delete where they exist.
	Remove []client.Object
}

// Desired builds every child of the effective instance inst, once per pass: the reconciler
// hashes the workloads for the rollout gate, applies the rest as they are, and reports status
// from what the API server returned for them.
func Desired(inst *v1alpha1.KintoInstance, in Inputs) (*Children, error) {
	config, hash, err := ConfigMap(inst)
	if err != nil {
		return nil, err
	}
	c := &Children{
		Config:          config,
		ConfigHash:      hash,
		ServiceAccount:  ServiceAccount(inst),
		NetworkPolicies: NetworkPolicies(inst, in.Network, in.ExternalDatabasePort, objectStoragePorts(inst, in.RestoreSource)),
		ServerService:   ServerService(inst),
		Ingress:         Ingress(inst),
		Migration:       MigrateJob(withReleaseImage(inst, in.ReleaseImages, inst.Spec.Version), inst.Spec.Version),
	}
	if np := ImportNetworkPolicy(inst, in.RestoreSource, in.Network); np != nil {
		c.NetworkPolicies = append(c.NetworkPolicies, np)
	} else if from := BootstrapSource(inst); from != nil && from.Server != nil {
		// Imported (or refused): the way out to the server closes.
		c.Remove = append(c.Remove, &networkingv1.NetworkPolicy{ObjectMeta: childMeta(inst, ImportNetworkPolicyName(inst))})
	}
	if !in.SharedBucket {
		c.BackupSchedule = BackupCronJob(inst, in.OperatorImage)
	}
	if in.WritesClosed {
		// A failed migration is the upgrade's answer, and rolls it back: one retry, for a pod
		// lost, not the backoff that waits for a database starting.
		c.Migration.Spec.BackoffLimit = ptr.To[int32](1)
	}
	if inst.Spec.ExternalDatabase() != nil && in.SchemaVersion == "" {
		GuardHMACSecrets(inst, c.Migration)
	}
	if inst.Spec.ManagedDatabase() != nil {
		credentials := SecretsRevision(map[string]string{CredentialsSecretName(inst): in.CredentialsRevision})
		c.DataVolumeClaim = DataVolumeClaim(inst)
		c.DatabaseServices = DatabaseServices(inst)
		c.Database = DatabaseStatefulSetKeepingTools(inst, credentials, in.OperatorImage, in.PasswordRotation, in.RunningDatabase)
		c.BackupVolumeClaim = BackupVolumeClaim(inst)
		switch {
		case in.RestoreSource == nil:
		case inst.Spec.Bootstrap != nil && inst.Spec.Bootstrap.FromPortable != nil:
			// The API allows spec.bootstrap with a managed database only.
			c.Import = ImportJob(withReleaseImage(inst, in.ReleaseImages, inst.Spec.Version), inst.Spec.Version, *in.RestoreSource, in.OperatorImage)
		default:
			c.Restore = RestoreJob(inst, *in.RestoreSource, in.OperatorImage)
		}
		if u := in.DatabaseUpgrade; u != nil {
			c.withDatabaseUpgrade(inst, u, credentials, in.OperatorImage)
		}
	}
	// The server starts once the import is done: nobody writes before it.
	if in.SchemaVersion != "" && c.Import == nil {
		c.Server = ServerDeployment(withReleaseImage(inst, in.ReleaseImages, in.SchemaVersion), in.SchemaVersion, hash, in.SecretsRevision)
		if in.WritesClosed || (in.DatabaseUpgrade != nil && in.DatabaseUpgrade.CloseWrites) {
			CloseWrites(c.Server)
		}
		if c.DisruptionBudget = ServerDisruptionBudget(inst); c.DisruptionBudget == nil {
			c.Remove = append(c.Remove, &policyv1.PodDisruptionBudget{ObjectMeta: childMeta(inst, ServerName(inst))})
		}
	}
	if c.Ingress == nil {
		c.Remove = append(c.Remove, &networkingv1.Ingress{ObjectMeta: childMeta(inst, IngressName(inst))})
	}
	if in.GatewayAPI {
		if c.HTTPRoute = HTTPRoute(inst); c.HTTPRoute == nil {
			c.Remove = append(c.Remove, &gatewayv1.HTTPRoute{ObjectMeta: childMeta(inst, HTTPRouteName(inst))})
		}
	}
	if c.BackupSchedule == nil {
		// Backups taken before spec.backup went stay, as KintoBackups.
		c.Remove = append(c.Remove, &batchv1.CronJob{ObjectMeta: childMeta(inst, BackupCronJobName(inst))})
	}
	return c, nil
}

// withDatabaseUpgrade adds the new server a major upgrade's step runs, with its copy Job, and
// removes the servers it retires (never the serving one).
func (c *Children) withDatabaseUpgrade(inst *v1alpha1.KintoInstance, u *DatabaseUpgradeStep, credentials, operatorImage string) {
	if u.Target != nil {
		c.UpgradeVolumeClaim = DatabaseVolumeClaim(inst, *u.Target)
		c.UpgradeDatabase = DatabaseServerStatefulSet(inst, *u.Target, credentials, operatorImage, false)
		if u.CopyFrom != nil {
			c.DatabaseCopy = DatabaseCopyJob(inst, *u.CopyFrom, *u.Target, operatorImage)
		}
	}
	serving := ServingDatabase(inst)
	for _, r := range u.Retired {
		if r.Server.StatefulSet != serving.StatefulSet {
			c.Remove = append(c.Remove, &appsv1.StatefulSet{ObjectMeta: childMeta(inst, r.Server.StatefulSet)})
		}
		if r.WithVolume && r.Server.VolumeClaim != serving.VolumeClaim {
			c.Remove = append(c.Remove, &corev1.PersistentVolumeClaim{ObjectMeta: childMeta(inst, r.Server.VolumeClaim)})
		}
	}
}

// withReleaseImage is inst with the image images give release as its spec.image; inst itself
// when they give none.
func withReleaseImage(inst *v1alpha1.KintoInstance, images map[string]string, release string) *v1alpha1.KintoInstance {
	image, ok := images[release]
	if !ok {
		return inst
	}
	out := *inst // only spec.image differs: the rest is shared, and read only
	out.Spec.Image = image
	return &out
}

// WithoutExposure drops the instance's Ingress and HTTPRoute from what is applied and removes
// them where they exist: its host is another instance's.
func (c *Children) WithoutExposure() {
	if c.Ingress != nil {
		c.Remove = append(c.Remove, c.Ingress)
		c.Ingress = nil
	}
	if c.HTTPRoute != nil {
		c.Remove = append(c.Remove, c.HTTPRoute)
		c.HTTPRoute = nil
	}
}

// childMeta names a child to remove.
func childMeta(inst *v1alpha1.KintoInstance, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: inst.Namespace, Name: name}
}

// objectStoragePorts are the ports of the object storage the instance's backup and restore pods
// reach: its backup destination's, and that of the backup it starts from until it is restored.
func objectStoragePorts(inst *v1alpha1.KintoInstance, restore *RestoreSource) []int32 {
	var ports []int32
	if b := inst.Spec.Backup; b != nil && b.Destination != nil && b.Destination.S3 != nil {
		ports = append(ports, ObjectStoragePort(&b.Destination.S3.S3Connection))
	}
	if restore != nil && restore.S3 != nil {
		ports = append(ports, ObjectStoragePort(restore.S3))
	}
	return ports
}

// Applied are the children every pass applies, in order: configuration and identity, isolation,
// the database and the server. Their exposure is applied apart (Exposure): a public host the
// cluster refuses stops nothing else.
func (c *Children) Applied() []client.Object {
	objs := []client.Object{c.Config, c.ServiceAccount}
	for _, np := range c.NetworkPolicies {
		objs = append(objs, np)
	}
	if c.DataVolumeClaim != nil {
		objs = append(objs, c.DataVolumeClaim)
	}
	if c.UpgradeVolumeClaim != nil {
		objs = append(objs, c.UpgradeVolumeClaim)
	}
	for _, svc := range c.DatabaseServices {
		objs = append(objs, svc)
	}
	objs = append(objs, nonNil(c.Database, c.UpgradeDatabase, c.ServerService, c.Server, c.DisruptionBudget)...)
	return objs
}

// Exposure are the children that serve the instance's public host: its Ingress or its route.
func (c *Children) Exposure() []client.Object {
	return nonNil(c.Ingress, c.HTTPRoute)
}

// All are every child of the instance: those applied on every pass, the backup schedule and the
// Jobs. Tests iterate it to hold every child to the same rules (owned, labelled, restricted pods).
func (c *Children) All() []client.Object {
	all := append(c.Applied(), c.Exposure()...)
	return append(all, nonNil(c.BackupVolumeClaim, c.BackupSchedule, c.Migration, c.Restore, c.Import, c.DatabaseCopy)...)
}

// nonNil drops the children an instance does not have: typed nil pointers, which are not nil
// as interfaces.
func nonNil(objs ...client.Object) []client.Object {
	var out []client.Object
	for _, o := range objs {
		if !reflect.ValueOf(o).IsNil() {
			out = append(out, o)
		}
	}
	return out
}
