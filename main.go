// Command manager runs the kinto-operator controllers.
package main

import (
	"flag"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

func main() {
	var metricsAddr, probeAddr string
	var leaderElect bool
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address of the metrics endpoint; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.BoolVar(&leaderElect, "leader-elect", true, "Elect a leader, so that only one replica of the operator reconciles.")
	var ingressNamespaces string
	flag.StringVar(&ingressNamespaces, "ingress-namespace-selector", "kubernetes.io/metadata.name=ingress-nginx",
		"Label selector of the namespaces of the ingress controller: the only pods the Kinto servers take traffic from.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	ingressSelector, err := metav1.ParseToLabelSelector(ingressNamespaces)
	if err != nil {
		setupLog.Error(err, "parsing --ingress-namespace-selector")
		os.Exit(1)
	}

	ctx := ctrl.SetupSignalHandler()
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), managerOptions(metricsAddr, probeAddr, leaderElect))
	if err != nil {
		setupLog.Error(err, "creating the manager")
		os.Exit(1)
	}
	gatewayAPI, err := controllers.GatewayAPIInstalled(mgr.GetRESTMapper())
	if err != nil {
		setupLog.Error(err, "looking for the Gateway API")
		os.Exit(1)
	}
	setupLog.Info("Gateway API", "installed", gatewayAPI)
	reconciler := &controllers.KintoInstanceReconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Recorder:   mgr.GetEventRecorder("kinto-operator"),
		Network:    resources.NetworkOptions{IngressNamespaces: *ingressSelector},
		GatewayAPI: gatewayAPI,
	}
	if err := reconciler.SetupWithManager(ctx, mgr); err != nil {
		setupLog.Error(err, "setting up the KintoInstance controller")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "adding the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "adding the readiness check")
		os.Exit(1)
	}
	setupLog.Info("starting the manager")
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "running the manager")
		os.Exit(1)
	}
}

func managerOptions(metricsAddr, probeAddr string, leaderElect bool) ctrl.Options {
	return ctrl.Options{
		Scheme:                 controllers.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "kinto-operator.hosting.kinto-storage.org",
		Cache:                  cache.Options{ByObject: controllers.CacheByObject()},
	}
}
