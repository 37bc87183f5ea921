package hostingclass

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
)

// newInstance is an instance as the API server stores it, edited before defaulting.
func newInstance(edit func(*v1alpha1.KintoInstance)) *v1alpha1.KintoInstance {
	inst := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: "notes", Namespace: "tenants"}}
	if edit != nil {
		edit(inst)
	}
	return crddefaults.MustDefault(inst)
}

func quantity(s string) *resource.Quantity { return ptr.To(resource.MustParse(s)) }

func resources(cpuLimit, memoryLimit string) *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLimit), corev1.ResourceMemory: resource.MustParse(memoryLimit)},
	}
}

// smallPlan is a class with every default and bound set.
func smallPlan() *v1alpha1.KintoHostingClass {
	return &v1alpha1.KintoHostingClass{
		ObjectMeta: metav1.ObjectMeta{Name: "small"},
		Spec: v1alpha1.KintoHostingClassSpec{
			Replicas: &v1alpha1.ReplicasPolicy{Default: ptr.To[int32](2), Max: ptr.To[int32](3)},
			Resources: &v1alpha1.ResourcesPolicy{
				Default: resources("500m", "256Mi"),
				Max:     v1alpha1.ResourceBounds{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
			},
			Storage: &v1alpha1.StoragePolicy{DefaultSize: quantity("2Gi"), MaxSize: quantity("10Gi"), StorageClassName: ptr.To("fast")},
			Backup: &v1alpha1.BackupSpec{Schedule: "@daily", Retention: &v1alpha1.BackupRetention{Count: ptr.To[int32](3)},
				Destination: &v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{Size: resource.MustParse("5Gi")}}},
			AllowedPlugins: []v1alpha1.Plugin{v1alpha1.PluginAdmin, v1alpha1.PluginHistory},
			AllowedAuth:    &v1alpha1.AllowedAuth{Accounts: true},
			DomainTemplate: "{name}.{namespace}.kinto.example.org",
			Ingress: &v1alpha1.ClassIngress{
				ClassName:   ptr.To("nginx"),
				Issuer:      &v1alpha1.CertManagerIssuer{Kind: "ClusterIssuer", Name: "letsencrypt"},
				Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
			},
		},
	}
}

// An instance without a class sets no Ingress annotation: it would configure the ingress
// controller every tenant shares.
func TestNoAnnotationsWithoutAClass(t *testing.T) {
	inst := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org", Annotations: map[string]string{"nginx.ingress.kubernetes.io/server-snippet": "x"}}
	})
	_, got := Effective(inst, nil)
	want := []string{"spec.ingress.annotations has nginx.ingress.kubernetes.io/server-snippet: an instance without a hosting class may set no Ingress annotation"}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n got  %q\n want %q", got, want)
	}
}

func TestEffectiveWithoutAClassHasTheBuiltInDefaults(t *testing.T) {
	inst := newInstance(nil)
	original := inst.DeepCopy()
	got, violations := Effective(inst, nil)
	if violations != nil {
		t.Errorf("violations without a class: %v", violations)
	}
	s := got.Spec
	if *s.Replicas != 1 || s.Database.Managed.StorageSize.String() != "1Gi" || s.Database.Managed.StorageClassName != nil {
		t.Errorf("replicas %d, storage %s class %v; want 1, 1Gi and none", *s.Replicas, s.Database.Managed.StorageSize, s.Database.Managed.StorageClassName)
	}
	if !equality.Semantic.DeepEqual(s.Resources, builtInResources()) {
		t.Errorf("resources = %+v", s.Resources)
	}
	if s.Backup != nil || s.Ingress != nil {
		t.Errorf("backup %+v, ingress %+v; want none", s.Backup, s.Ingress)
	}
	if !equality.Semantic.DeepEqual(inst, original) {
		t.Error("Effective changed the instance it was given")
	}
}

func TestEffectiveFillsInFromTheClass(t *testing.T) {
	class := smallPlan()
	got, violations := Effective(newInstance(nil), class)
	if len(violations) != 0 {
		t.Fatalf("violations: %v", violations)
	}
	s := got.Spec
	db := s.Database.Managed
	if *s.Replicas != 2 || db.StorageSize.String() != "2Gi" || ptr.Deref(db.StorageClassName, "") != "fast" {
		t.Errorf("replicas %d, storage %s class %v; want the class's 2, 2Gi and fast", *s.Replicas, db.StorageSize, db.StorageClassName)
	}
	if !equality.Semantic.DeepEqual(s.Resources, class.Spec.Resources.Default) || !equality.Semantic.DeepEqual(s.Backup, class.Spec.Backup) {
		t.Errorf("resources %+v, backup %+v; want the class's", s.Resources, s.Backup)
	}
	want := &v1alpha1.IngressSpec{
		Host: "notes.tenants.kinto.example.org", ClassName: ptr.To("nginx"),
		TLS:         &v1alpha1.IngressTLS{Issuer: &v1alpha1.CertManagerIssuer{Kind: "ClusterIssuer", Name: "letsencrypt"}},
		Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
	}
	if !equality.Semantic.DeepEqual(s.Ingress, want) {
		t.Errorf("ingress = %+v, want %+v", s.Ingress, want)
	}
	// The copy shares nothing with the class.
	s.Resources.Limits[corev1.ResourceCPU] = resource.MustParse("9")
	s.Backup.Schedule = "@hourly"
	s.Ingress.Annotations["x"] = "y"
	if !equality.Semantic.DeepEqual(class, smallPlan()) {
		t.Error("changing the effective instance changed the class")
	}
}

func TestInstanceValuesOverrideTheClass(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*v1alpha1.KintoInstance)
		check func(s v1alpha1.KintoInstanceSpec) string
	}{
		{"replicas", func(i *v1alpha1.KintoInstance) { i.Spec.Replicas = ptr.To[int32](3) }, func(s v1alpha1.KintoInstanceSpec) string {
			return fmt.Sprint(*s.Replicas)
		}},
		{"resources", func(i *v1alpha1.KintoInstance) { i.Spec.Resources = resources("1", "1Gi") }, func(s v1alpha1.KintoInstanceSpec) string {
			return s.Resources.Limits.Cpu().String() + " " + s.Resources.Limits.Memory().String()
		}},
		{"storage", func(i *v1alpha1.KintoInstance) {
			i.Spec.Database = &v1alpha1.DatabaseSpec{Managed: &v1alpha1.ManagedDatabase{StorageSize: quantity("10Gi"), StorageClassName: ptr.To("slow")}}
		}, func(s v1alpha1.KintoInstanceSpec) string {
			return s.Database.Managed.StorageSize.String() + " " + *s.Database.Managed.StorageClassName
		}},
		{"backup", func(i *v1alpha1.KintoInstance) { i.Spec.Backup = &v1alpha1.BackupSpec{Schedule: "@weekly"} }, func(s v1alpha1.KintoInstanceSpec) string {
			return s.Backup.Schedule
		}},
		{"ingress without a class", func(i *v1alpha1.KintoInstance) {
			i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"}
		}, func(s v1alpha1.KintoInstanceSpec) string {
			return fmt.Sprint(s.Ingress.Host, " ", *s.Ingress.ClassName, " ", s.Ingress.TLS)
		}},
		{"ingress with a class", func(i *v1alpha1.KintoInstance) {
			i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org", ClassName: ptr.To("traefik")}
		}, func(s v1alpha1.KintoInstanceSpec) string {
			return fmt.Sprint(s.Ingress.Host, " ", *s.Ingress.ClassName)
		}},
		{"gateway", func(i *v1alpha1.KintoInstance) {
			i.Spec.Gateway = &v1alpha1.GatewaySpec{Host: "notes.example.org", Name: "public"}
		}, func(s v1alpha1.KintoInstanceSpec) string {
			return fmt.Sprint(s.Ingress, " ", s.Gateway.Host)
		}},
		{"external database", func(i *v1alpha1.KintoInstance) {
			i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"}}}
		}, func(s v1alpha1.KintoInstanceSpec) string {
			return fmt.Sprint(s.Database.Managed, " ", s.Database.External.URLSecret.Name)
		}},
	}
	want := map[string]string{
		"replicas":                "3",
		"resources":               "1 1Gi",
		"storage":                 "10Gi slow",
		"backup":                  "@weekly",
		"ingress without a class": "notes.example.org nginx <nil>",
		"ingress with a class":    "notes.example.org traefik",
		"gateway":                 "<nil> notes.example.org",
		"external database":       "<nil> db",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, violations := Effective(newInstance(tc.edit), smallPlan())
			if len(violations) != 0 {
				t.Errorf("violations within the class's bounds: %v", violations)
			}
			if s := tc.check(got.Spec); s != want[tc.name] {
				t.Errorf("got %q, want %q", s, want[tc.name])
			}
		})
	}
}

func TestInstancesBeyondTheClassAreTold(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*v1alpha1.KintoInstance)
		class func(*v1alpha1.KintoHostingClass)
		want  []string
	}{
		{
			name: "replicas",
			edit: func(i *v1alpha1.KintoInstance) { i.Spec.Replicas = ptr.To[int32](4) },
			want: []string{"spec.replicas is 4, above the 3 hosting class small allows"},
		},
		{
			name: "automatic updates looser than the class's",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Updates = &v1alpha1.InstanceUpdates{Automatic: v1alpha1.AutomaticMajor}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.Updates = &v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor}
			},
			want: []string{"spec.updates.automatic is Major, more than the Minor hosting class small allows (spec.updates.automatic may only be stricter)"},
		},
		{
			name: "automatic updates stricter than the class's, following the catalogue with an image of its own",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Updates = &v1alpha1.InstanceUpdates{Automatic: v1alpha1.AutomaticNone}
				i.Spec.Image = "registry.example.org/kinto:mine"
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.Updates = &v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor}
				c.Spec.Pods = &v1alpha1.PodsPolicy{AllowImages: true}
			},
			want: []string{"spec.image is set while spec.updates follows the release catalogue of hosting class small, whose images the host chooses"},
		},
		{
			name: "limits and requests",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Resources = resources("1500m", "1Gi")
				i.Spec.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("2Gi")
			},
			want: []string{
				"spec.resources.limits.cpu is 1500m, above the 1 hosting class small allows",
				"spec.resources.requests.memory is 2Gi, above the 1Gi hosting class small allows",
			},
		},
		{
			name: "equal quantities written otherwise",
			edit: func(i *v1alpha1.KintoInstance) { i.Spec.Resources = resources("1000m", "1024Mi") },
		},
		{
			name: "a missing limit",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}
			},
			want: []string{"spec.resources.limits.cpu is not set, and hosting class small allows at most 1: set a limit within it"},
		},
		{
			name: "storage",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Database = &v1alpha1.DatabaseSpec{Managed: &v1alpha1.ManagedDatabase{StorageSize: quantity("20Gi")}}
			},
			want: []string{"spec.database.managed.storageSize is 20Gi, above the 10Gi hosting class small allows"},
		},
		{
			name: "plugins",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Plugins = []v1alpha1.Plugin{v1alpha1.PluginAdmin, v1alpha1.PluginPrometheus, v1alpha1.PluginDefaultBucket}
			},
			want: []string{
				"spec.plugins has prometheus, which hosting class small does not allow (it allows admin, history)",
				"spec.plugins has default_bucket, which hosting class small does not allow (it allows admin, history)",
			},
		},
		{
			name:  "the default plugin, where none is allowed",
			class: func(c *v1alpha1.KintoHostingClass) { c.Spec.AllowedPlugins = []v1alpha1.Plugin{} },
			want:  []string{"spec.plugins has admin, which hosting class small does not allow (it allows none)"},
		},
		{
			name: "auth methods",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Auth = &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{Enabled: true}, BasicAuth: true,
					OpenIDConnect: []v1alpha1.OpenIDConnectProvider{{Name: "coop", Issuer: "https://id.example.org", ClientID: "kinto"}}}
			},
			class: func(c *v1alpha1.KintoHostingClass) { c.Spec.AllowedAuth = &v1alpha1.AllowedAuth{Accounts: true} },
			want: []string{
				"spec.auth.basicAuth is on, which hosting class small does not allow",
				"spec.auth.openIDConnect lists providers, which hosting class small does not allow",
			},
		},
		{
			name:  "accounts",
			class: func(c *v1alpha1.KintoHostingClass) { c.Spec.AllowedAuth = &v1alpha1.AllowedAuth{OpenIDConnect: true} },
			want:  []string{"spec.auth.accounts is enabled, which hosting class small does not allow"},
		},
		{
			name: "a host label too long",
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.DomainTemplate = "kinto-hosted-for-the-members-of-the-local-association-{namespace}-{name}.example.org"
			},
			want: []string{`hosting class small's domainTemplate gives this instance the host "kinto-hosted-for-the-members-of-the-local-association-tenants-notes.example.org", ` +
				"which is not a DNS name: its label kinto-hosted-for-the-members-of-the-local-association-tenants-notes is longer than 63 characters"},
		},
		{
			name: "a host outside the class's suffixes",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "shop.example.com"}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.Ingress = &v1alpha1.ClassIngress{AllowedHostSuffixes: []string{"members.example.org", "coop.example.net"}}
			},
			want: []string{"spec.ingress.host is shop.example.com, which hosting class small does not allow (hosts must end in .members.example.org or .coop.example.net)"},
		},
		{
			name: "a suffix is not a host of its own",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Gateway = &v1alpha1.GatewaySpec{Host: "members.example.org", Name: "public"}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.Ingress = &v1alpha1.ClassIngress{AllowedHostSuffixes: []string{"members.example.org"}}
			},
			want: []string{"spec.gateway.host is members.example.org, which hosting class small does not allow (hosts must end in .members.example.org)"},
		},
		{
			name: "a host within the class's suffixes",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.members.example.org"}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.Ingress = &v1alpha1.ClassIngress{AllowedHostSuffixes: []string{"members.example.org"}}
			},
		},
		{
			name: "no host of its own, only the domainTemplate's",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.members.example.org"}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.DomainTemplate = "{name}.{namespace}.kinto.example.org"
				c.Spec.Ingress = &v1alpha1.ClassIngress{AllowedHostSuffixes: []string{}}
			},
			want: []string{"spec.ingress.host is notes.members.example.org: hosting class small gives its instances the hosts of its domainTemplate only"},
		},
		{
			name: "the domainTemplate's host, whatever the suffixes",
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.DomainTemplate = "{name}.{namespace}.kinto.example.org"
				c.Spec.Ingress = &v1alpha1.ClassIngress{AllowedHostSuffixes: []string{}, Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}}
			},
		},
		{
			name: "Ingress annotations the class does not allow",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org", Annotations: map[string]string{
					"nginx.ingress.kubernetes.io/server-snippet":  "location / { proxy_pass http://169.254.169.254; }",
					"nginx.ingress.kubernetes.io/proxy-body-size": "8m",
				}}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.Ingress = &v1alpha1.ClassIngress{AllowedAnnotations: []string{"nginx.ingress.kubernetes.io/proxy-body-size"}}
			},
			want: []string{"spec.ingress.annotations has nginx.ingress.kubernetes.io/server-snippet, which hosting class small does not allow (it allows nginx.ingress.kubernetes.io/proxy-body-size)"},
		},
		{
			name: "the database's resources",
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.DatabaseResources = v1alpha1.ResourceBounds{corev1.ResourceMemory: resource.MustParse("512Mi"), corev1.ResourceCPU: resource.MustParse("1")}
			},
			want: []string{
				"spec.database.managed.resources.limits.cpu is not set, and hosting class small allows at most 1: set a limit within it",
				"spec.database.managed.resources.limits.memory is 1Gi, above the 512Mi hosting class small allows",
			},
		},
		{
			name: "backups kept, how often, and their volume",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Backup = &v1alpha1.BackupSpec{Schedule: "0 */2 * * *", Retention: &v1alpha1.BackupRetention{Count: ptr.To[int32](50)},
					Destination: &v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{Size: resource.MustParse("50Gi")}}}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.BackupLimits = &v1alpha1.BackupLimits{MaxCount: ptr.To[int32](14), MinInterval: &metav1.Duration{Duration: 6 * time.Hour}, MaxVolumeSize: quantity("20Gi")}
			},
			want: []string{
				"spec.backup.retention.count is 50, above the 14 hosting class small allows",
				`spec.backup.schedule "0 */2 * * *" runs every 2h0m0s at times, more often than the 6h0m0s hosting class small allows`,
				"spec.backup.destination.volume.size is 50Gi, above the 20Gi hosting class small allows",
			},
		},
		{
			name: "a schedule whose runs are unevenly spaced",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Backup = &v1alpha1.BackupSpec{Schedule: "0 3,4 * * *", Retention: &v1alpha1.BackupRetention{Count: ptr.To[int32](7)}}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.BackupLimits = &v1alpha1.BackupLimits{MinInterval: &metav1.Duration{Duration: 12 * time.Hour}}
			},
			want: []string{`spec.backup.schedule "0 3,4 * * *" runs every 1h0m0s at times, more often than the 12h0m0s hosting class small allows`},
		},
		{
			name: "the class's own backups, within its limits",
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.BackupLimits = &v1alpha1.BackupLimits{MaxCount: ptr.To[int32](3), MinInterval: &metav1.Duration{Duration: 24 * time.Hour}}
			},
		},
		{
			name: "images, priority and placement",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Image = "evil/kinto:latest"
				i.Spec.Database = &v1alpha1.DatabaseSpec{Managed: &v1alpha1.ManagedDatabase{Image: "evil/postgres:15"}}
				i.Spec.PriorityClassName = "system-cluster-critical"
				i.Spec.NodeSelector = map[string]v1alpha1.LabelValue{"node-role.kubernetes.io/control-plane": ""}
				i.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
				i.Spec.Affinity = &corev1.Affinity{}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.Pods = &v1alpha1.PodsPolicy{AllowedPriorityClasses: []string{"members"}}
			},
			want: []string{
				"spec.image is set, which hosting class small does not allow",
				"spec.database.managed.image is set, which hosting class small does not allow",
				"spec.priorityClassName is system-cluster-critical, which hosting class small does not allow (it allows members)",
				"spec.nodeSelector is set, which hosting class small does not allow",
				"spec.tolerations is set, which hosting class small does not allow",
				"spec.affinity is set, which hosting class small does not allow",
			},
		},
		{
			name: "images, priority and placement the class allows",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Image = "coop/kinto:26.5.0"
				i.Spec.PriorityClassName = "members"
				i.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "kinto"}}
			},
			class: func(c *v1alpha1.KintoHostingClass) {
				c.Spec.Pods = &v1alpha1.PodsPolicy{AllowImages: true, AllowedPriorityClasses: []string{"members"}, AllowPlacement: true}
			},
		},
		{
			name: "several at once",
			edit: func(i *v1alpha1.KintoInstance) {
				i.Spec.Replicas = ptr.To[int32](5)
				i.Spec.Plugins = []v1alpha1.Plugin{v1alpha1.PluginPrometheus}
			},
			want: []string{
				"spec.replicas is 5, above the 3 hosting class small allows",
				"spec.plugins has prometheus, which hosting class small does not allow (it allows admin, history)",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			class := smallPlan()
			if tc.class != nil {
				tc.class(class)
			}
			_, got := Effective(newInstance(tc.edit), class)
			if !slices.Equal(got, tc.want) {
				t.Errorf("violations:\n got  %q\n want %q", got, tc.want)
			}
		})
	}
}

// The community instance of config/samples fits the sample plan it names.
func TestCommunitySampleFitsItsClass(t *testing.T) {
	inst, class := &v1alpha1.KintoInstance{}, &v1alpha1.KintoHostingClass{}
	for file, obj := range map[string]any{"hosting_v1alpha1_kintoinstance_community.yaml": inst, "hosting_v1alpha1_kintohostingclass.yaml": class} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(raw, obj); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if inst.Spec.ClassName != class.Name {
		t.Fatalf("the sample instance names class %q, the sample class is %q", inst.Spec.ClassName, class.Name)
	}
	if _, violations := Effective(crddefaults.MustDefault(inst), class); len(violations) > 0 {
		t.Errorf("the sample instance exceeds the sample class: %v", violations)
	}
}

// A public key of the right form whose bech32 checksum is wrong passes the API server's
// pattern; the operator, reading it with age, holds the instance, naming the field.
func TestBackupKeyAgeCannotRead(t *testing.T) {
	const good = "age1lscm3ym4j5lcwywsyvd74g07k7vjn3ca0t47tp0hzga9p9g8venskvlq3k"
	const badChecksum = "age1lscm3ym4j5lcwywsyvd74g07k7vjn3ca0t47tp0hzga9p9g8venskvlq3q"
	for key, want := range map[string][]string{
		good:        nil,
		badChecksum: {`spec.backup.encryption.recipients[1] "` + badChecksum + `" is not an age public key (age1..., as age-keygen prints it)`},
	} {
		inst := newInstance(func(i *v1alpha1.KintoInstance) {
			i.Spec.Backup = &v1alpha1.BackupSpec{Encryption: &v1alpha1.BackupEncryption{Recipients: []v1alpha1.AgeRecipient{good, v1alpha1.AgeRecipient(key)}}}
		})
		if _, got := Effective(inst, nil); !slices.Equal(got, want) {
			t.Errorf("key %s: violations %q, want %q", key, got, want)
		}
	}
}
