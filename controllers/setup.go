package controllers

import (
	"cmp"
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/rollout"
)

// Options are the operator's settings, from its command line.
type Options struct {
	MetricsAddr, ProbeAddr string
	LeaderElect            bool
	// LeaderElectionNamespace holds the leader's lease; the pod's own namespace when empty, as
	// in a cluster (a manager run outside one must name it).
	LeaderElectionNamespace string
	Network                 resources.NetworkOptions
	// MaxConcurrentReconciles is how many instances, and how many backups, each controller
	// reconciles at once (controller-runtime's default is one): a pass mostly waits on the API
	// server, so a fleet provisions several times faster with a few. Never two passes of the
	// same object at once; the rollout slots are counted under a mutex.
	MaxConcurrentReconciles int
	// ClientQPS and ClientBurst bound the requests the operator sends to the API server, a
	// second and in a burst (client-go's rate limiter); with ClientQPS zero the configuration's
	// own limits hold (none from ctrl.GetConfig: the API server's priority and fairness).
	ClientQPS   float32
	ClientBurst int
	// MaxConcurrentRollouts caps how many instances roll their running pods at once (a new
	// release, configuration or Secret); 0 means no cap.
	MaxConcurrentRollouts int
	// MaxRolloutsPerNamespace caps the slots the instances of one namespace (one tenant) hold at
	// once, so that one tenant's stuck rollouts never hold them all; 0 means only the cap above.
	MaxRolloutsPerNamespace int
	// RolloutRetryInterval is how often an instance waiting for a rollout slot tries again;
	// DefaultRolloutRetryInterval when zero.
	RolloutRetryInterval time.Duration
	// RolloutDeadline is how long an instance may hold a slot without becoming Ready: past it,
	// its rollout is taken for stalled and the slot given back. 0 means no deadline.
	RolloutDeadline time.Duration
	// RequireClass holds the instances no KintoHostingClass hosts (HostingClass=False,
	// ClassRequired), so that every instance runs under a plan of the host's.
	RequireClass bool
	// Now is the operator's clock; time.Now when nil (tests move it forward).
	Now func() time.Time
	// OperatorImage is the operator's own image, which backup, restore and dump-deletion Jobs
	// run for their object-storage steps (`manager backup`).
	OperatorImage string
	// WatchNamespaces are the only namespaces the operator watches, caches and writes to, so
	// that its install can grant it Roles there instead of ClusterRoles; empty: every namespace.
	WatchNamespaces []string
	// SecondManager lets a process run this manager beside another (a test of each install):
	// controller-runtime otherwise refuses a second controller of the same name.
	SecondManager bool
	// OperatorNamespace is the operator's own namespace, where the Secrets of the buckets hosting
	// classes share between tenants are read; "" leaves such buckets unreachable.
	OperatorNamespace string
	// DownloadAddr is where BackupDownloads serves the members' page, whose ServiceAccount is
	// PageServiceAccount of OperatorNamespace; "" or "0" serves nothing, nor does an unknown
	// OperatorNamespace.
	DownloadAddr, PageServiceAccount string
}

// The manager's defaults, measured by `make bench-fleet` (README, "At fleet scale").
const (
	// DefaultMaxConcurrentReconciles: a pass mostly waits on the API server, so provisioning
	// scales with the passes at once: 500 instances took 111 s with 4, 40 s with 16, 52 s with 32.
	DefaultMaxConcurrentReconciles = 16
	// DefaultClientQPS and DefaultClientBurst: none on the client (0), as controller-runtime's
	// own default: the API server's priority and fairness share it between its clients.
	DefaultClientQPS   float32 = 0
	DefaultClientBurst int     = 0
	// DefaultMaxConcurrentRollouts instances roll their pods at once.
	DefaultMaxConcurrentRollouts = 5
)

// DefaultRolloutRetryInterval is how often, by default, an instance waiting for a rollout slot
// tries again: slots free up as rollouts finish, which takes a minute or more.
const DefaultRolloutRetryInterval = 15 * time.Second

// The metrics server asks the API server who a client is and whether it may get /metrics.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// MetricsServerOptions serve the operator's metrics at addr over https (a self-signed
// certificate unless one is mounted), to the clients Kubernetes authenticates and authorises to
// get /metrics only: they tell the size and state of every tenant's instances.
func MetricsServerOptions(addr string) metricsserver.Options {
	return metricsserver.Options{BindAddress: addr, SecureServing: true, FilterProvider: filters.WithAuthenticationAndAuthorization}
}

// NewManager sets up the operator's manager with its KintoInstance controller, as main runs it:
// the Gateway API's HTTPRoutes are cached and watched only where the cluster serves them, since
// a manager asked to cache a kind the cluster lacks does not start.
func NewManager(ctx context.Context, cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	if opts.ClientQPS != 0 {
		cfg = rest.CopyConfig(cfg)
		cfg.QPS, cfg.Burst = opts.ClientQPS, opts.ClientBurst
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	gatewayAPI, err := GatewayAPIInstalled(mapper)
	if err != nil {
		return nil, fmt.Errorf("looking for the Gateway API: %w", err)
	}
	ctrl.Log.WithName("setup").Info("Gateway API", "installed", gatewayAPI)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Metrics:                 MetricsServerOptions(opts.MetricsAddr),
		HealthProbeBindAddress:  opts.ProbeAddr,
		LeaderElection:          opts.LeaderElect,
		LeaderElectionID:        "kinto-operator.hosting.kinto-storage.org",
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// The process exits once the manager stops, so the lease can be handed over at once: a new
		// pod of a rolling update leads without waiting for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			ByObject:          CacheByObject(gatewayAPI),
			DefaultNamespaces: namespaceCaches(opts.WatchNamespaces),
			// The operator reads no managed fields: dropped, they would be a good part of what
			// it keeps in memory (server-side apply records every field of every child).
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		Controller: config.Controller{MaxConcurrentReconciles: opts.MaxConcurrentReconciles, SkipNameValidation: ptr.To(opts.SecondManager)},
	})
	if err != nil {
		return nil, err
	}
	err = mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.KintoBackup{}, backupInstanceIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.KintoBackup).Spec.Instance}
	})
	if err != nil {
		return nil, err
	}
	recorder := mgr.GetEventRecorder("kinto-operator")
	sharedBuckets := SharedBuckets{Namespace: opts.OperatorNamespace, Secrets: mgr.GetAPIReader()}
	r := &KintoInstanceReconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Recorder:      recorder,
		Network:       opts.Network,
		GatewayAPI:    gatewayAPI,
		OperatorImage: opts.OperatorImage,

		RolloutLimits:        rollout.Limits{Max: opts.MaxConcurrentRollouts, PerNamespace: opts.MaxRolloutsPerNamespace},
		RolloutRetryInterval: cmp.Or(opts.RolloutRetryInterval, DefaultRolloutRetryInterval),
		RolloutDeadline:      opts.RolloutDeadline,
		RequireClass:         opts.RequireClass,
		SharedBuckets:        sharedBuckets,
		Clock:                Clock{Now: opts.Now},
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	// The registry is the process's: a second manager (a test of each install) leaves the
	// instances' metrics to the first.
	if !opts.SecondManager {
		err = ctrlmetrics.Registry.Register(&instanceCollector{cache: mgr.GetClient(), slots: &r.RolloutSlots, limits: r.RolloutLimits})
		if err != nil {
			return nil, fmt.Errorf("registering the instances' metrics: %w", err)
		}
	}
	backups := &KintoBackupReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder,
		OperatorImage: opts.OperatorImage, SharedBuckets: sharedBuckets, Clock: Clock{Now: opts.Now}}
	if err := backups.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	mirrors := &KintoMirrorReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder,
		Network: opts.Network, OperatorImage: opts.OperatorImage}
	if err := mirrors.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if opts.DownloadAddr != "" && opts.DownloadAddr != "0" && opts.OperatorNamespace != "" && opts.PageServiceAccount != "" {
		handler := (&BackupDownloads{Reviews: mgr.GetClient(), Reader: mgr.GetAPIReader(), SharedBuckets: sharedBuckets, Network: opts.Network,
			Page:    "system:serviceaccount:" + opts.OperatorNamespace + ":" + opts.PageServiceAccount,
			Readers: mgr.GetClient(), OperatorImage: opts.OperatorImage, OperatorNamespace: opts.OperatorNamespace,
			// The labels both the install bundle and the chart give the operator's pods (not the page's,
			// which shares the name).
			OperatorPods: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "kinto-operator", "app.kubernetes.io/component": "manager"}}}).Handler()
		if err := mgr.Add(downloadServer{addr: opts.DownloadAddr, handler: handler}); err != nil {
			return nil, err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Scheme holds every kind the operator reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	return s
}

// CacheByObject keeps only the operator's own children in the informer cache, not every Secret,
// ConfigMap or Deployment of the cluster: a shared cluster holds far more of those than any
// operator should keep in memory. Of Secrets it caches its own and those instances reference,
// which it labels.
func CacheByObject(gatewayAPI bool) map[client.Object]cache.ByObject {
	owned := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{resources.ManagedByLabel: resources.ManagedBy})}
	watched := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{resources.WatchedLabel: "true"})}
	byObject := map[client.Object]cache.ByObject{
		&corev1.Secret{}:                watched,
		&corev1.ConfigMap{}:             owned,
		&corev1.Service{}:               owned,
		&corev1.PersistentVolumeClaim{}: owned,
		&appsv1.StatefulSet{}:           owned,
		&appsv1.Deployment{}:            owned,
		&batchv1.Job{}:                  owned,
		&batchv1.CronJob{}:              owned,
		&corev1.Pod{}:                   owned,
		&networkingv1.Ingress{}:         owned,
		&networkingv1.NetworkPolicy{}:   owned,
		&corev1.ServiceAccount{}:        owned,
		&policyv1.PodDisruptionBudget{}: owned,
		// Every autoscaler, for what it scales only (see pinReplicasForAutoscaler).
		&autoscalingv2.HorizontalPodAutoscaler{}: {Transform: keepScaleTarget},
	}
	if gatewayAPI {
		byObject[&gatewayv1.HTTPRoute{}] = owned
	}
	return byObject
}

// namespaceCaches limits the cache of namespaced kinds to the watched namespaces; nil (every
// namespace) when none is named. Cluster-scoped kinds (hosting classes, namespaces) are cached
// whole either way.
func namespaceCaches(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	caches := map[string]cache.Config{}
	for _, ns := range namespaces {
		caches[ns] = cache.Config{}
	}
	return caches
}

// GatewayAPIInstalled says whether the cluster serves the Gateway API's HTTPRoutes, which the
// operator then watches and makes for instances with spec.gateway.
func GatewayAPIInstalled(mapper meta.RESTMapper) (bool, error) {
	_, err := mapper.RESTMapping(schema.GroupKind{Group: gatewayv1.GroupName, Kind: "HTTPRoute"}, gatewayv1.GroupVersion.Version)
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	return err == nil, err
}
