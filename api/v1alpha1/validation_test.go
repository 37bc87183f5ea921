package v1alpha1_test

// These tests submit KintoInstances to a real kube-apiserver (envtest) with the generated CRD
// installed: the API server, not the operator, enforces the API's defaults and validation.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
)

var (
	testEnv    *envtest.Environment
	k8s        client.Client
	restConfig *rest.Config
	httpClient *http.Client
)

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run these tests with `make test-envtest`")
		os.Exit(1)
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../../config/crd/bases"}, ErrorIfCRDPathMissing: true}
	testEnv = env
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the API server:", err)
		_ = env.Stop() // a CRD the API server refuses leaves it running
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	if err := autoscalingv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}
	restConfig = cfg
	if httpClient, err = rest.HTTPClientFor(cfg); err != nil {
		panic(err)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the API server:", err)
	}
	os.Exit(code)
}

// instance builds a KintoInstance from the YAML of its spec, so tests can send what a user
// could send, wrong types included.
func instance(t *testing.T, name, specYAML string) *unstructured.Unstructured {
	t.Helper()
	spec := map[string]any{}
	if err := yaml.Unmarshal([]byte(specYAML), &spec); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "KintoInstance",
		"metadata":   map[string]any{"name": name, "namespace": "default"},
		"spec":       spec,
	}}
	return u
}

// created creates an instance from the YAML of its spec, deleted after the test, and returns it
// as the API server stored it.
func created(t *testing.T, name, specYAML string) *v1alpha1.KintoInstance {
	t.Helper()
	ctx := context.Background()
	u := instance(t, name, specYAML)
	if err := k8s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, u) })
	stored := &v1alpha1.KintoInstance{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), stored); err != nil {
		t.Fatal(err)
	}
	return stored
}

func TestInvalidSpecsAreRejectedNamingTheField(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want []string // substrings of the API server's message: the field and what is wrong
	}{
		{"replicas below one", `replicas: 0`, []string{"spec.replicas", "should be greater than or equal to 1"}},
		{"replicas above the bound", `replicas: 21`, []string{"spec.replicas", "less than or equal to 20"}},
		{"version not a release", `version: latest`, []string{"spec.version", "should match"}},
		{"both databases", `database: {managed: {}, external: {urlSecret: {name: db, key: url}}}`, []string{"spec.database", "exactly one of database.managed and database.external"}},
		{"no database", `database: {}`, []string{"spec.database", "exactly one of database.managed and database.external"}},
		{"unsupported PostgreSQL", `database: {managed: {version: "9"}}`, []string{"spec.database.managed.version", "should match"}},
		{"zero storage", `database: {managed: {storageSize: "0"}}`, []string{"spec.database.managed.storageSize", "storageSize must be positive"}},
		{"not a quantity", `database: {managed: {storageSize: "lots"}}`, []string{"spec.database.managed.storageSize"}},
		{"external secret without key", `database: {external: {urlSecret: {name: db}}}`, []string{"spec.database.external.urlSecret.key", "Required"}},
		{"no authentication", `auth: {accounts: {enabled: false}}`, []string{"spec.auth", "enable auth.accounts, auth.basicAuth or at least one auth.openIDConnect provider"}},
		{"admins-only registration without admins", `auth: {accounts: {enabled: true, registration: AdminsOnly}}`, []string{"spec.auth.accounts.admins", "AdminsOnly needs at least one entry"}},
		{"unknown registration", `auth: {accounts: {enabled: true, registration: Anyone}}`, []string{"spec.auth.accounts.registration", "Unsupported value"}},
		{"bad admin id", `auth: {accounts: {enabled: true, admins: ["bob smith"]}}`, []string{"spec.auth.accounts.admins[0]", "should match"}},
		{"OpenID issuer not https", `auth: {openIDConnect: [{name: google, issuer: "http://accounts.google.com", clientID: x, clientSecret: {name: s, key: k}}]}`, []string{"spec.auth.openIDConnect[0].issuer", "should match"}},
		{"OpenID reserved name", `auth: {openIDConnect: [{name: account, issuer: "https://id.example.org", clientID: x, clientSecret: {name: s, key: k}}]}`, []string{"spec.auth.openIDConnect[0].name", "name is reserved by Kinto"}},
		{"OpenID duplicate name", `auth: {openIDConnect: [{name: gh, issuer: "https://a.example.org", clientID: x, clientSecret: {name: s, key: k}}, {name: gh, issuer: "https://b.example.org", clientID: y, clientSecret: {name: s, key: k}}]}`, []string{"spec.auth.openIDConnect[1]", "Duplicate value"}},
		{"flush plugin", `plugins: [admin, flush]`, []string{"spec.plugins[1]", "Unsupported value: \"flush\""}},
		{"owned setting", `settings: {kinto.storage_url: "postgresql://x"}`, []string{"spec.settings", "settings may not set kinto.storage_url"}},
		{"owned setting without prefix", `settings: {userid_hmac_secret: "x"}`, []string{"spec.settings", "settings may not set userid_hmac_secret"}},
		{"auth policy setting", `settings: {multiauth.policies: "basicauth"}`, []string{"spec.settings", "settings may not set multiauth.policies"}},
		{"setting name with a section header", `settings: {"[app:main]\nkinto.readonly": "true"}`, []string{"spec.settings", "settings may set only the Kinto settings kubectl explain kintoinstance.spec.settings lists"}},
		{"multi-line setting value", `settings: {kinto.project_name: "a\n[app:main]\nkinto.storage_url = x"}`, []string{"spec.settings", "may not hold control characters or line or paragraph separators: kinto.project_name"}},
		{"setting with and without prefix", `settings: {kinto.paginate_by: "10", paginate_by: "20"}`, []string{"spec.settings", "both with and without the kinto. prefix"}},
		{"setting value out of range", `settings: {kinto.paginate_by: "0"}`, []string{"spec.settings", "settings paginate_by, storage_max_fetch_size must match ^([1-9][0-9]{0,3}|10000)$"}},
		{"ingress host not a DNS name", `ingress: {host: "Kinto_Example.org"}`, []string{"spec.ingress.host", "should match"}},
		{"ingress TLS from both sources", `ingress: {host: kinto.example.org, tls: {secretName: cert, issuer: {name: le}}}`, []string{"spec.ingress.tls", "exactly one of ingress.tls.secretName and ingress.tls.issuer"}},
		{"ingress and gateway", `ingress: {host: a.example.org}
gateway: {host: a.example.org, name: public}`, []string{"spec", "spec.ingress and spec.gateway are alternatives"}},
		{"gateway scheme", `gateway: {host: a.example.org, name: public, scheme: gopher}`, []string{"spec.gateway.scheme", "Unsupported value"}},
		{"ingress issuer kind", `ingress: {host: kinto.example.org, tls: {issuer: {name: le, kind: Vault}}}`, []string{"spec.ingress.tls.issuer.kind", "Unsupported value"}},
		{"cron with four fields", `backup: {schedule: "0 3 * *"}`, []string{"spec.backup.schedule", "should match"}},
		{"retention of zero backups", `backup: {retention: {count: 0}}`, []string{"spec.backup.retention.count", "greater than or equal to 1"}},
		{"retention without bounds", `backup: {retention: {}}`, []string{"spec.backup.retention", "needs count, maxAge or both"}},
		{"retention age unit", `backup: {retention: {maxAge: "30m"}}`, []string{"spec.backup.retention.maxAge", "should match"}},
		{"deletion policy", `deletionPolicy: Forget`, []string{"spec.deletionPolicy", "Unsupported value"}},
		{"snapshot without backups", `deletionPolicy: Snapshot`, []string{"spec.deletionPolicy", "Snapshot needs spec.backup"}},
		{"snapshot of an external database", `{deletionPolicy: Snapshot, backup: {}, database: {external: {urlSecret: {name: db, key: url}}}}`, []string{"spec.deletionPolicy", "and a managed database"}},
		{"two backup destinations", `backup: {destination: {volume: {}, s3: {endpoint: s3.example.org, bucket: kb, credentials: {accessKeyID: {name: s3, key: id}, secretAccessKey: {name: s3, key: secret}}}}}`, []string{"spec.backup.destination", "exactly one of backup.destination.volume and backup.destination.s3"}},
		{"backup volume of zero bytes", `backup: {destination: {volume: {size: "0"}}}`, []string{"spec.backup.destination.volume.size", "size must be positive"}},
		{"S3 without credentials", `backup: {destination: {s3: {endpoint: s3.example.org, bucket: kb}}}`, []string{"spec.backup.destination.s3.credentials", "Required"}},
		{"S3 endpoint with a path", `backup: {destination: {s3: {endpoint: "https://s3.example.org/kinto", bucket: kb, credentials: {accessKeyID: {name: s3, key: id}, secretAccessKey: {name: s3, key: secret}}}}}`, []string{"spec.backup.destination.s3.endpoint", "should match"}},
		{"S3 bucket name", `backup: {destination: {s3: {endpoint: s3.example.org, bucket: My_Bucket, credentials: {accessKeyID: {name: s3, key: id}, secretAccessKey: {name: s3, key: secret}}}}}`, []string{"spec.backup.destination.s3.bucket", "should match"}},
		{"S3 prefix leaving the bucket", `backup: {destination: {s3: {endpoint: s3.example.org, bucket: kb, prefix: "/x y", credentials: {accessKeyID: {name: s3, key: id}, secretAccessKey: {name: s3, key: secret}}}}}`, []string{"spec.backup.destination.s3.prefix", "should match"}},
		{"bootstrap from two sources", `bootstrap: {fromBackup: {backupName: b, s3: {endpoint: s3.example.org, bucket: kb, key: a/20261126T030000Z.dump, credentials: {accessKeyID: {name: s3, key: id}, secretAccessKey: {name: s3, key: secret}}}}}`, []string{"spec.bootstrap.fromBackup", "exactly one of fromBackup.backupName and fromBackup.s3"}},
		{"bootstrap from nothing", `bootstrap: {fromBackup: {}}`, []string{"spec.bootstrap.fromBackup", "exactly one of fromBackup.backupName and fromBackup.s3"}},
		{"bootstrap key not a dump", `bootstrap: {fromBackup: {s3: {endpoint: s3.example.org, bucket: kb, key: a/latest.sql, credentials: {accessKeyID: {name: s3, key: id}, secretAccessKey: {name: s3, key: secret}}}}}`, []string{"spec.bootstrap.fromBackup.s3.key", "should match"}},
		{"bootstrap into an external database", `{bootstrap: {fromBackup: {backupName: b}}, database: {external: {urlSecret: {name: db, key: url}}}}`, []string{"spec.bootstrap", "restores into a managed database"}},
		{"resources not a quantity", `resources: {requests: {memory: "lots"}}`, []string{"spec.resources.requests.memory"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := k8s.Create(context.Background(), instance(t, fmt.Sprintf("invalid-%d", i), tc.spec))
			assertInvalid(t, err, tc.want...)
		})
	}
}

func TestInstanceNameMustNameServices(t *testing.T) {
	for _, name := range []string{"1password", strings.Repeat("a", 64)} {
		err := k8s.Create(context.Background(), instance(t, name, `{}`))
		assertInvalid(t, err, "metadata.name must be a DNS label")
	}
}

func TestDefaultsAreFilledByTheAPIServer(t *testing.T) {
	got := created(t, "defaults", `{}`)
	s := got.Spec
	checks := []struct {
		field     string
		got, want any
	}{
		{"version", s.Version, v1alpha1.DefaultKintoVersion},
		{"database.managed.version", s.Database.Managed.Version, v1alpha1.DefaultPostgreSQLVersion},
		{"auth.accounts.enabled", s.Auth.Accounts.Enabled, true},
		{"auth.accounts.registration", s.Auth.Accounts.Registration, v1alpha1.RegistrationOpen},
		{"plugins", fmt.Sprint(s.Plugins), "[admin]"},
		{"deletionPolicy", s.DeletionPolicy, v1alpha1.DeletionPolicyRetain},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("default of spec.%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if s.Database.External != nil || s.Ingress != nil || s.Backup != nil {
		t.Errorf("optional sections were defaulted: %+v", s)
	}
	// The operator fills these in from the instance's hosting class, else its built-in defaults:
	// a CRD default would hide that the instance left them to its class.
	if s.Replicas != nil || s.Resources != nil || s.Database.Managed.StorageSize != nil {
		t.Errorf("replicas %v, resources %v, storageSize %v were defaulted", s.Replicas, s.Resources, s.Database.Managed.StorageSize)
	}
}

func TestBackupDefaults(t *testing.T) {
	got := created(t, "backup-defaults", `backup: {}`)
	if b := got.Spec.Backup; b.Schedule != "0 3 * * *" || b.Retention.Count == nil || *b.Retention.Count != 7 {
		t.Errorf("backup defaults = %+v", b)
	}
	if d := got.Spec.Backup.Destination; d == nil || d.Volume == nil || d.Volume.Size.String() != "5Gi" || d.S3 != nil {
		t.Errorf("backup destination default = %+v, want a 5Gi volume", d)
	}
}

// Fields that may not change after creation are refused on update, naming the field.
func TestImmutableFieldsRefuseChanges(t *testing.T) {
	cases := []struct {
		name     string
		initial  string
		mutate   func(s *v1alpha1.KintoInstanceSpec)
		wantPath string
		wantMsg  string
	}{
		{
			name:     "storage class",
			initial:  `database: {managed: {storageClassName: fast}}`,
			mutate:   func(s *v1alpha1.KintoInstanceSpec) { s.Database.Managed.StorageClassName = ptrTo("slow") },
			wantPath: "spec.database.managed.storageClassName",
			wantMsg:  "storageClassName cannot change after creation",
		},
		{
			name:     "storage class set later",
			initial:  `{}`,
			mutate:   func(s *v1alpha1.KintoInstanceSpec) { s.Database.Managed.StorageClassName = ptrTo("slow") },
			wantPath: "spec.database.managed.storageClassName",
			wantMsg:  "storageClassName cannot change after creation",
		},
		{
			name:     "PostgreSQL major version lowered",
			initial:  `{"database": {"managed": {"version": "17"}}}`,
			mutate:   func(s *v1alpha1.KintoInstanceSpec) { s.Database.Managed.Version = "15" },
			wantPath: "spec.database.managed.version",
			wantMsg:  "cannot go down",
		},
		{
			name:    "managed to external",
			initial: `{}`,
			mutate: func(s *v1alpha1.KintoInstanceSpec) {
				s.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"}}}
			},
			wantPath: "spec.database",
			wantMsg:  "cannot switch between managed and external",
		},
		{
			name:    "bootstrap added",
			initial: `{}`,
			mutate: func(s *v1alpha1.KintoInstanceSpec) {
				s.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: "b"}}
			},
			wantPath: "spec.bootstrap",
			wantMsg:  "set when the instance is created and cannot change",
		},
		{
			name:     "bootstrap changed",
			initial:  `bootstrap: {fromBackup: {backupName: a}}`,
			mutate:   func(s *v1alpha1.KintoInstanceSpec) { s.Bootstrap.FromBackup.BackupName = "b" },
			wantPath: "spec.bootstrap",
			wantMsg:  "set when the instance is created and cannot change",
		},
		{
			name:     "bootstrap removed",
			initial:  `bootstrap: {fromBackup: {backupName: a}}`,
			mutate:   func(s *v1alpha1.KintoInstanceSpec) { s.Bootstrap = nil },
			wantPath: "spec.bootstrap",
			wantMsg:  "set when the instance is created and cannot change",
		},
		{
			name:     "backup volume shrinks",
			initial:  `backup: {destination: {volume: {size: 2Gi}}}`,
			mutate:   func(s *v1alpha1.KintoInstanceSpec) { s.Backup.Destination.Volume.Size = resource.MustParse("1Gi") },
			wantPath: "spec.backup.destination.volume.size",
			wantMsg:  "size cannot shrink",
		},
		{
			name:    "OpenID provider renamed",
			initial: `auth: {openIDConnect: [{name: google, issuer: "https://accounts.google.com", clientID: x, clientSecret: {name: s, key: k}}]}`,
			mutate: func(s *v1alpha1.KintoInstanceSpec) {
				s.Auth.OpenIDConnect[0].Name = "gmail"
			},
			wantPath: "spec.auth.openIDConnect",
			wantMsg:  "cannot be renamed or removed",
		},
	}
	ctx := context.Background()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst := created(t, fmt.Sprintf("immutable-%d", i), tc.initial)
			tc.mutate(&inst.Spec)
			assertInvalid(t, k8s.Update(ctx, inst), tc.wantPath, tc.wantMsg)
		})
	}
}

// Growing the volume and adding an OpenID provider stay allowed.
func TestAllowedChangesAreAccepted(t *testing.T) {
	ctx := context.Background()
	inst := created(t, "allowed-changes", `database: {managed: {storageSize: 1Gi, storageClassName: fast}}`)
	inst.Spec.Database.Managed.StorageSize = ptrTo(resource.MustParse("3Gi"))
	inst.Spec.Version = "26.6.0"
	inst.Spec.Auth.OpenIDConnect = []v1alpha1.OpenIDConnectProvider{{
		Name: "google", Issuer: "https://accounts.google.com", ClientID: "id",
		ClientSecret: v1alpha1.SecretKeyRef{Name: "oidc", Key: "secret"},
	}}
	if err := k8s.Update(ctx, inst); err != nil {
		t.Fatalf("allowed update refused: %v", err)
	}
}

func assertInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a rejection mentioning %q", want)
	}
	if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
		t.Fatalf("want an Invalid error, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q does not mention %q", err.Error(), w)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// The scale subresource lets `kubectl scale` and a HorizontalPodAutoscaler set spec.replicas,
// within the same bounds. An instance that leaves spec.replicas to its hosting class has no scale
// to read until something sets it: the operator does at its first pass (tested with the
// controllers), and `kubectl scale` does too, with a merge patch of the scale.
func TestScaleSubresource(t *testing.T) {
	ctx := context.Background()
	inst := created(t, "scaled", `{}`)
	scale := &autoscalingv1.Scale{}
	if err := k8s.SubResource("scale").Get(ctx, inst, scale); !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "spec.replicas") {
		t.Errorf("reading the scale of an instance without spec.replicas: %v; want the missing field named", err)
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":2}}`))
	if err := k8s.SubResource("scale").Patch(ctx, inst, patch, client.WithSubResourceBody(scale)); err != nil {
		t.Fatal(err)
	}
	if err := k8s.SubResource("scale").Get(ctx, inst, scale); err != nil {
		t.Fatal(err)
	}
	if scale.Spec.Replicas != 2 {
		t.Errorf("scale.spec.replicas = %d, want 2", scale.Spec.Replicas)
	}
	scale.Spec.Replicas = 3
	if err := k8s.SubResource("scale").Update(ctx, inst, client.WithSubResourceBody(scale)); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(inst), inst); err != nil {
		t.Fatal(err)
	}
	if *inst.Spec.Replicas != 3 {
		t.Errorf("spec.replicas = %d after scaling to 3", *inst.Spec.Replicas)
	}
	scale.Spec.Replicas = 50
	scale.ResourceVersion = ""
	assertInvalid(t, k8s.SubResource("scale").Update(ctx, inst, client.WithSubResourceBody(scale)), "spec.replicas")
}

// Tests without an API server default instances with internal/crddefaults; it must agree with
// the API server on every kind of spec.
func TestLocalDefaultingMatchesTheAPIServer(t *testing.T) {
	specs := []string{
		`{}`,
		`backup: {}`,
		`replicas: 3`,
		`database: {external: {urlSecret: {name: db, key: url}}}`,
		`database: {managed: {storageSize: 5Gi}}`,
		`auth: {openIDConnect: [{name: g, issuer: "https://id.example.org", clientID: c, clientSecret: {name: s, key: k}}]}`,
		`ingress: {host: kinto.example.org, tls: {issuer: {name: le}}}`,
	}
	for i, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			u := instance(t, fmt.Sprintf("local-defaults-%d", i), spec)
			local := &v1alpha1.KintoInstance{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.DeepCopy().Object, local); err != nil {
				t.Fatal(err)
			}
			stored := created(t, u.GetName(), spec)
			if got := crddefaults.MustDefault(local).Spec; !equality.Semantic.DeepEqual(got, stored.Spec) {
				t.Errorf("local defaults differ from the API server's:\nlocal  %+v\nserver %+v", got, stored.Spec)
			}
		})
	}
}

// This API server has no Gateway API: the operator must see that, and start all the same
// (a manager asked to cache HTTPRoutes here would not).
func TestOperatorStartsWithoutTheGatewayAPI(t *testing.T) {
	mapper, err := apiutil.NewDynamicRESTMapper(restConfig, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	if installed, err := controllers.GatewayAPIInstalled(mapper); err != nil || installed {
		t.Fatalf("GatewayAPIInstalled = %v, %v on an API server without its CRDs", installed, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr, err := controllers.NewManager(ctx, restConfig, controllers.Options{MetricsAddr: "0", ProbeAddr: "0"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	syncCtx, done := context.WithTimeout(ctx, 30*time.Second)
	defer done()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		t.Fatal("the operator's caches did not sync")
	}
	select {
	case err := <-stopped:
		t.Fatalf("the manager stopped: %v", err)
	default:
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("the manager stopped with %v", err)
	}
}

// A KintoBackup names its instance and records one backup: its spec never changes.
func TestKintoBackupValidation(t *testing.T) {
	ctx := context.Background()
	backup := func(name, instance string, policy v1alpha1.BackupDeletionPolicy) *v1alpha1.KintoBackup {
		return &v1alpha1.KintoBackup{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec:       v1alpha1.KintoBackupSpec{Instance: instance, DeletionPolicy: policy},
		}
	}
	assertInvalid(t, k8s.Create(ctx, backup("no-instance", "", "")), "spec.instance")
	assertInvalid(t, k8s.Create(ctx, backup("bad-instance", "Notes_1", "")), "spec.instance", "should match")
	assertInvalid(t, k8s.Create(ctx, backup("bad-policy", "notes", "Forget")), "spec.deletionPolicy", "Unsupported value")
	assertInvalid(t, k8s.Create(ctx, backup(strings.Repeat("b", 64), "notes", "")), "metadata.name must be a DNS label")
	assertInvalid(t, k8s.Create(ctx, backup("before.upgrade", "notes", "")), "metadata.name must be a DNS label")

	kb := backup("good", "notes", "")
	if err := k8s.Create(ctx, kb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, kb) })
	if kb.Spec.DeletionPolicy != v1alpha1.BackupDeletionPolicyRetain {
		t.Errorf("default deletionPolicy = %q, want Retain", kb.Spec.DeletionPolicy)
	}
	kb.Spec.Instance = "other"
	assertInvalid(t, k8s.Update(ctx, kb), "spec", "a KintoBackup's spec cannot change")
}

// Every manifest of config/samples is one the API server accepts as it is.
func TestSamplesAreAccepted(t *testing.T) {
	files, err := filepath.Glob("../../config/samples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(raw), "\n---\n") {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil || len(obj.Object) == 0 {
				t.Fatalf("%s, document %d: %v", file, i, err)
			}
			namespaced, err := k8s.IsObjectNamespaced(obj)
			if err != nil {
				t.Fatalf("%s: %s: %v", filepath.Base(file), obj.GetKind(), err)
			}
			if namespaced {
				obj.SetNamespace("default")
			}
			if err := k8s.Create(context.Background(), obj, client.DryRunAll); err != nil {
				t.Errorf("%s: %s %s refused: %v", filepath.Base(file), obj.GetKind(), obj.GetName(), err)
			}
		}
	}
}
