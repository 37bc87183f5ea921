package controllers_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// The operator's metrics are served over https to the clients Kubernetes authorises to get
// /metrics (the metrics-reader ClusterRole of config/rbac), asking the API server with the
// operator's own generated role: anyone else is refused.
func TestMetricsNeedAuthorisation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()

	operator := rest.CopyConfig(restConfig)
	operator.Impersonate = rest.ImpersonationConfig{UserName: operatorUser}
	httpClient, err := rest.HTTPClientFor(operator)
	if err != nil {
		t.Fatal(err)
	}
	server, err := metricsserver.NewServer(controllers.MetricsServerOptions(addr), operator, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Start(ctx) }()

	ns := newNamespace(t)
	// Two scrapers, one bound to the role before either scrapes: the endpoint remembers a refusal
	// for 30 s (its authoriser's cache), so the refused one must not be the served one.
	token := func(name string) string {
		t.Helper()
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := k8s.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
		request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
		if err := k8s.SubResource("token").Create(ctx, sa, request); err != nil {
			t.Fatal(err)
		}
		return request.Status.Token
	}
	scraper, stranger := token("prometheus"), token("stranger")
	bindMetricsReader(t, ns, "prometheus")

	// Over https only, and with a certificate of its own making.
	web := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(bearer string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := web.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	expect := func(what, bearer string, want int) {
		t.Helper()
		eventually(t, what, func() error {
			code, err := get(bearer)
			if err != nil {
				return err
			}
			if code != want {
				return fmt.Errorf("status %d, want %d", code, want)
			}
			return nil
		})
	}
	expect("an anonymous scrape refused", "", http.StatusUnauthorized)
	expect("a scrape by a ServiceAccount without the role refused", stranger, http.StatusForbidden)
	expect("a scrape by a ServiceAccount bound to metrics-reader served", scraper, http.StatusOK)
}

// bindMetricsReader binds config/rbac's metrics-reader role (a copy named for the namespace) to
// a ServiceAccount of ns, and waits until the API server's authoriser says it may get /metrics.
func bindMetricsReader(t *testing.T, ns, serviceAccount string) {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile("../config/rbac/metrics_reader_role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		t.Fatal(err)
	}
	role.Name = "metrics-reader-" + ns
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: serviceAccount}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), o) })
	}
	user := serviceaccount.MakeUsername(ns, serviceAccount)
	eventually(t, user+" may get /metrics", func() error {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: serviceaccount.MakeGroupNames(ns),
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}}
		if err := k8s.Create(ctx, review); err != nil {
			return err
		}
		if !review.Status.Allowed {
			return fmt.Errorf("not allowed: %s", review.Status.Reason)
		}
		return nil
	})
}

// scrape gathers the operator's registry, as its metrics endpoint serves it.
func scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering the metrics: %v", err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	return byName
}

// sample is the value of the series of name whose labels include labels, and whether there is
// one.
func sample(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// expectSample waits until the series of name with labels has the value want.
func expectSample(t testing.TB, name string, labels map[string]string, want float64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s%v = %v", name, labels, want), func() error {
		got, ok := sample(scrape(t), name, labels)
		switch {
		case !ok:
			return errors.New("no such series")
		case got != want:
			return fmt.Errorf("%v", got)
		}
		return nil
	})
}

// counter is the current value of a counter series, 0 when it has none yet.
func counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := sample(scrape(t), name, labels)
	return v
}

// The operator's own metrics follow an instance through its life: Ready, backed up, a failed
// backup, an upgrade holding a rollout slot whose migration fails, a failed pass; and its series
// go with it. Per-instance series are the few an alert names an instance by.
func TestOperatorMetricsFollowAnInstance(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	jobs := func(job, result string) map[string]string { return map[string]string{"job": job, "result": result} }
	migrated := counter(t, "kinto_operator_jobs_finished_total", jobs("migration", "succeeded"))
	backedUp := counter(t, "kinto_operator_jobs_finished_total", jobs("backup", "succeeded"))
	backupFailed := counter(t, "kinto_operator_jobs_finished_total", jobs("backup", "failed"))
	credentialErrors := counter(t, "kinto_operator_reconcile_errors_total", map[string]string{"stage": "credentials"})
	condition := func(condType, status, reason string) map[string]string {
		return map[string]string{"namespace": ns, "name": "watched", "condition": condType, "status": status, "reason": reason}
	}

	inst := bringUp(t, createInstance(t, ns, "watched", func(i *v1alpha1.KintoInstance) {
		withVolumeBackups(7)(i)
		i.Spec.Version = "26.4.0"
	}))
	expectSample(t, "kinto_operator_instance_condition", condition("Ready", "True", "Ready"), 1)
	expectSample(t, "kinto_operator_jobs_finished_total", jobs("migration", "succeeded"), migrated+1)
	if n, ok := sample(scrape(t), "kinto_operator_instances", map[string]string{"condition": "Ready", "status": "True", "reason": "Ready", "class": ""}); !ok || n < 1 {
		t.Errorf("kinto_operator_instances counts %v Ready instances (series: %v)", n, ok)
	}
	expectSample(t, "kinto_operator_rollout_slots_limit", nil, testMaxConcurrentRollouts)

	createBackup(t, ns, "nightly", inst.Name, "")
	runJob(t, ns, "nightly", "dump", dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "nightly", v1alpha1.BackupCompleted)
	cur := waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, "BackedUp")
	expectSample(t, "kinto_operator_instance_last_backup_timestamp_seconds", map[string]string{"namespace": ns, "name": "watched"},
		float64(cur.Status.LastBackup.CompletedAt.Unix()))
	expectSample(t, "kinto_operator_jobs_finished_total", jobs("backup", "succeeded"), backedUp+1)
	expectSample(t, "kinto_operator_instance_condition", condition("BackupHealthy", "True", "BackedUp"), 1)

	// Completion times are kept to the second: the failure must come after the success.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	createBackup(t, ns, "broken", inst.Name, "")
	runJob(t, ns, "broken", "dump", "backup failed: pg_dump exited with status 1", true)
	waitForBackup(t, ns, "broken", v1alpha1.BackupFailed)
	expectSample(t, "kinto_operator_jobs_finished_total", jobs("backup", "failed"), backupFailed+1)
	expectSample(t, "kinto_operator_instance_condition", condition("BackupHealthy", "False", "BackupFailed"), 1)

	// The version changes: the safe upgrade holds a rollout slot, its migration fails, it rolls back.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	waitForCondition(t, inst, v1alpha1.ConditionRollingOut, metav1.ConditionTrue, "RolloutStarted")
	expectSample(t, "kinto_operator_instance_condition", condition("RollingOut", "True", "RolloutStarted"), 1)
	if n, _ := sample(scrape(t), "kinto_operator_rollout_slots_in_use", nil); n < 1 {
		t.Errorf("kinto_operator_rollout_slots_in_use = %v while the instance rolls out", n)
	}
	waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	markServerAvailable(t, inst)
	u := waitForUpgrade(t, inst, v1alpha1.UpgradeBackingUp).Status.Upgrade
	runJob(t, ns, resources.UpgradeBackupName(inst, u), "dump", dumpResult(time.Now(), ""), false)
	runJob(t, ns, resources.UpgradeSampleJobName(inst, u), "upgrade", `{}`, false)
	waitForUpgrade(t, inst, v1alpha1.UpgradeMigrating)
	runJob(t, ns, resources.MigrateJobName(inst, "26.5.0"), resources.MigrateContainer, "alembic: boom", true)
	waitForUpgrade(t, inst, v1alpha1.UpgradeRollingBack)

	// A pass that fails is counted under its stage.
	if err := k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.CredentialsSecretName(inst)}}); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "ReconcileError")
	eventually(t, "a credentials error counted", func() error {
		if n := counter(t, "kinto_operator_reconcile_errors_total", map[string]string{"stage": "credentials"}); n <= credentialErrors {
			return fmt.Errorf("kinto_operator_reconcile_errors_total{stage=credentials} = %v, was %v", n, credentialErrors)
		}
		return nil
	})

	families := scrape(t)
	checkLabelsBounded(t, families)
	checkMonitoringQueries(t, families)

	if err := k8s.Delete(ctx, inst); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "the instance", inst)
	eventually(t, "the instance's series gone", func() error {
		families := scrape(t)
		for _, name := range []string{"kinto_operator_instance_condition", "kinto_operator_instance_last_backup_timestamp_seconds"} {
			if _, ok := sample(families, name, map[string]string{"namespace": ns, "name": "watched"}); ok {
				return fmt.Errorf("%s still has a series of the deleted instance", name)
			}
		}
		return nil
	})
}

// instanceLabelled are the operator's metrics that name an instance (namespace and name): the
// ones an alert names one by. Every other metric of the operator has labels of bounded values.
var instanceLabelled = map[string]bool{
	"kinto_operator_instance_condition":                     true,
	"kinto_operator_instance_last_backup_timestamp_seconds": true,
}

// boundedLabels are the labels the operator's other metrics may carry: each takes values from
// a set the operator or the administrator fixes (stages, Jobs, results, condition types and
// reasons, hosting classes).
var boundedLabels = map[string]bool{"stage": true, "job": true, "result": true, "condition": true, "status": true, "reason": true, "class": true}

func checkLabelsBounded(t *testing.T, families map[string]*dto.MetricFamily) {
	t.Helper()
	for name, f := range families {
		if !strings.HasPrefix(name, "kinto_operator_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if boundedLabels[l.GetName()] || instanceLabelled[name] && (l.GetName() == "namespace" || l.GetName() == "name") {
					continue
				}
				t.Errorf("%s has label %s=%q, whose values are not bounded", name, l.GetName(), l.GetValue())
			}
		}
	}
}

// checkMonitoringQueries checks that every metric the alerts and the dashboard of
// config/monitoring query is one the operator exports: hack/monitoringcheck parses their
// expressions with Prometheus' parser (in a module of its own) and lists the names they select.
func checkMonitoringQueries(t *testing.T, families map[string]*dto.MetricFamily) {
	t.Helper()
	cmd := exec.Command("go", "run", ".", "../../config/monitoring")
	cmd.Dir = "../hack/monitoringcheck"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/monitoringcheck: %v\n%s", err, stderr.String())
	}
	names := strings.Fields(string(out))
	if len(names) == 0 {
		t.Fatal("hack/monitoringcheck listed no metric")
	}
	for _, name := range names {
		if _, ok := families[name]; ok {
			continue
		}
		// A histogram's series: name_bucket, name_sum, name_count.
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if f, ok := families[base]; ok && base != name && f.GetType() == dto.MetricType_HISTOGRAM {
			continue
		}
		t.Errorf("config/monitoring queries %s, which the operator does not export", name)
	}
}
