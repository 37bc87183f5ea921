// Command manager runs the kinto-operator controllers. The same binary works in the pods the
// operator makes: `manager backup ...` is the storage step of the backup and restore Jobs, run
// from the operator's own image; `manager db ...` is the database's init, dump and restore, run
// in the PostgreSQL image from a copy of the binary; `manager portal serve` is the members' page,
// run by its own Deployment; `manager portable ...` exports and imports a Kinto server through
// its HTTP API, in kinto-wizard's YAML.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/backup/backuptool"
	"github.com/kinto-storage/kinto-operator/internal/dbtool"
	"github.com/kinto-storage/kinto-operator/internal/portable"
	"github.com/kinto-storage/kinto-operator/internal/portal"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

// version names the build: `make build` sets it from `git describe` (VERSION=...), the
// Dockerfile from its VERSION argument. It is how an operator upgrade is told apart from a restart.
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "--version", "version":
			fmt.Println(version)
			return
		case "backup":
			os.Exit(backuptool.Main(os.Args[2:], os.Stdout, os.Stderr))
		case "db":
			os.Exit(dbtool.Main(os.Args[2:], os.Stdout, os.Stderr))
		case "portal":
			os.Exit(portal.Main(os.Args[2:], os.Stdout, os.Stderr))
		case "portable":
			os.Exit(portable.Main(os.Args[2:], os.Stdout, os.Stderr))
		case "upgrade":
			os.Exit(upgrade.Main(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	var opts controllers.Options
	var watchNamespaces, ingressNamespaces, externalCIDRs, clusterCIDRs, dnsNamespaces, dnsPods, cpuProfile string
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "Address of the metrics endpoint; 0 disables it.")
	flag.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes; 0 disables them.")
	flag.BoolVar(&opts.LeaderElect, "leader-elect", true, "Elect a leader, so that only one replica of the operator reconciles.")
	flag.StringVar(&ingressNamespaces, "ingress-namespace-selector", "kubernetes.io/metadata.name=ingress-nginx",
		"Label selector of the namespaces of the ingress controller: the only pods the Kinto servers take traffic from.")
	flag.StringVar(&externalCIDRs, "external-egress-cidrs", "",
		"Comma-separated address ranges outside the cluster that instances may reach (external databases, OpenID providers, object storage); empty: every address.")
	flag.StringVar(&clusterCIDRs, "cluster-cidrs", "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7",
		"Comma-separated address ranges of the cluster's pods and Services, which instances never reach as outside the cluster (nor link-local addresses); default: every private range.")
	flag.StringVar(&dnsNamespaces, "dns-namespace-selector", "kubernetes.io/metadata.name=kube-system",
		"Label selector of the namespaces of the cluster DNS pods, the only DNS servers instances reach.")
	flag.StringVar(&dnsPods, "dns-pod-selector", "k8s-app=kube-dns", "Label selector of the cluster DNS pods.")
	flag.IntVar(&opts.MaxConcurrentReconciles, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles,
		"How many instances, and how many backups, are reconciled at once (never the same one twice).")
	var qps float64
	flag.Float64Var(&qps, "kube-api-qps", float64(controllers.DefaultClientQPS),
		"Requests a second the operator may send to the API server, on average. 0: no limit on the operator's side, the API server's priority and fairness share it.")
	flag.IntVar(&opts.ClientBurst, "kube-api-burst", controllers.DefaultClientBurst,
		"Requests the operator may send to the API server in a burst, above --kube-api-qps.")
	flag.IntVar(&opts.MaxConcurrentRollouts, "max-concurrent-rollouts", controllers.DefaultMaxConcurrentRollouts,
		"How many instances may roll their running pods at once (new release, configuration or Secret); the others wait their turn. 0: no cap.")
	flag.IntVar(&opts.MaxRolloutsPerNamespace, "max-concurrent-rollouts-per-namespace", 2,
		"How many of those slots the instances of one namespace (one tenant) may hold at once, so that one tenant's stuck rollouts never hold them all. 0: only --max-concurrent-rollouts.")
	flag.DurationVar(&opts.RolloutDeadline, "rollout-deadline", 30*time.Minute,
		"How long an instance may hold a rollout slot without becoming Ready: past it, the rollout is reported stalled (RollingOut=False, RolloutStalled) and its slot given back. 0: no deadline.")
	flag.BoolVar(&opts.RequireClass, "require-class", false,
		"Host only instances under a KintoHostingClass: one that names none while no class is the default is held (HostingClass=False, ClassRequired).")
	flag.StringVar(&opts.OperatorImage, "operator-image", os.Getenv("OPERATOR_IMAGE"),
		"The operator's own image, which the database pods and the backup and restore Jobs run for their own steps (default $OPERATOR_IMAGE).")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces, the only ones whose instances the operator hosts (the install of config/namespaced grants it Roles there only); empty: every namespace.")
	flag.StringVar(&opts.OperatorNamespace, "operator-namespace", os.Getenv("POD_NAMESPACE"),
		"The operator's own namespace, where the credentials of the S3 buckets hosting classes share between tenants are read (default $POD_NAMESPACE).")
	flag.StringVar(&opts.DownloadAddr, "download-bind-address", ":8082",
		"Address where the members' page downloads the members' backups from (a member's RBAC must grant get on kintobackups/download); 0 disables it.")
	flag.StringVar(&opts.PageServiceAccount, "download-page-serviceaccount", "kinto-operator-portal",
		"The members' page's ServiceAccount, in the operator's namespace: the only caller of --download-bind-address.")
	flag.StringVar(&cpuProfile, "cpu-profile", "",
		"Write a CPU profile of the manager, from its start to its stop, to this file (`make bench-fleet` measures with it; empty: none).")
	logOpts := zap.Options{}
	logOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&logOpts)))
	opts.ClientQPS = float32(qps)
	setupLog := ctrl.Log.WithName("setup")

	selector := func(flagName, value string) metav1.LabelSelector {
		s, err := metav1.ParseToLabelSelector(value)
		if err != nil {
			setupLog.Error(err, "parsing --"+flagName)
			os.Exit(1)
		}
		return *s
	}
	cidrs := func(flagName, value string) []string {
		var out []string
		for _, cidr := range strings.Split(value, ",") {
			if cidr = strings.TrimSpace(cidr); cidr == "" {
				continue
			}
			if _, _, err := net.ParseCIDR(cidr); err != nil {
				setupLog.Error(err, "parsing --"+flagName)
				os.Exit(1)
			}
			out = append(out, cidr)
		}
		return out
	}
	opts.Network.IngressNamespaces = selector("ingress-namespace-selector", ingressNamespaces)
	opts.Network.DNSNamespaces = selector("dns-namespace-selector", dnsNamespaces)
	opts.Network.DNSPods = selector("dns-pod-selector", dnsPods)
	opts.Network.ExternalCIDRs = cidrs("external-egress-cidrs", externalCIDRs)
	opts.Network.ClusterCIDRs = cidrs("cluster-cidrs", clusterCIDRs)
	for _, ns := range strings.Split(watchNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			opts.WatchNamespaces = append(opts.WatchNamespaces, ns)
		}
	}
	if opts.OperatorImage == "" {
		setupLog.Error(nil, "set --operator-image or OPERATOR_IMAGE to the operator's image: the database pods and the backup and restore Jobs run it")
		os.Exit(1)
	}

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			setupLog.Error(err, "starting --cpu-profile")
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := controllers.NewManager(ctx, ctrl.GetConfigOrDie(), opts)
	if err != nil {
		setupLog.Error(err, "setting up the manager")
		os.Exit(1)
	}
	setupLog.Info("starting the manager", "version", version)
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "running the manager")
		os.Exit(1)
	}
}
