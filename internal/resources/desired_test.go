package resources

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// kindName names an object by its Go type and name, for comparing lists of children.
func kindName(o client.Object) string { return fmt.Sprintf("%T %s", o, o.GetName()) }

func kindNames(objs []client.Object) []string {
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, kindName(o))
	}
	slices.Sort(names)
	return names
}

func TestDesired(t *testing.T) {
	migrated := Inputs{SchemaVersion: v1alpha1.DefaultKintoVersion, OperatorImage: testOperatorImage}
	withGateway := migrated
	withGateway.GatewayAPI = true
	s3 := testS3Connection()
	restoring := Inputs{RestoreSource: &RestoreSource{S3: &s3, Key: "k/f.dump"}, OperatorImage: testOperatorImage}
	replicas := func(i *v1alpha1.KintoInstance) { i.Spec.Replicas = ptr.To[int32](3) }
	ingress := func(i *v1alpha1.KintoInstance) { i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"} }
	gateway := func(i *v1alpha1.KintoInstance) { i.Spec.Gateway = &v1alpha1.GatewaySpec{Name: "public"} }

	cases := []struct {
		name       string
		inst       *v1alpha1.KintoInstance
		in         Inputs
		wantApply  []string // besides the configuration, identity and network policies
		wantRemove []string
		wantOthers []string // applied by their own stage or created once, besides the migration Job
		wantExpose []string // the public host's Ingress or route, applied by the exposure stage
	}{
		{
			name:       "a new instance: no server before the first migration, so no budget to remove",
			inst:       newInstance(),
			in:         Inputs{},
			wantApply:  []string{"*v1.PersistentVolumeClaim notes-pgdata", "*v1.Service notes-postgres", "*v1.Service notes-postgres-hl", "*v1.StatefulSet notes-postgres", "*v1.Service notes-server"},
			wantRemove: []string{"*v1.CronJob notes-backup", "*v1.Ingress notes-ingress"},
		},
		{
			name:       "migrated: the server, and a single replica has no budget",
			inst:       newInstance(),
			in:         migrated,
			wantApply:  []string{"*v1.PersistentVolumeClaim notes-pgdata", "*v1.Service notes-postgres", "*v1.Service notes-postgres-hl", "*v1.StatefulSet notes-postgres", "*v1.Service notes-server", "*v1.Deployment notes-server"},
			wantRemove: []string{"*v1.CronJob notes-backup", "*v1.Ingress notes-ingress", "*v1.PodDisruptionBudget notes-server"},
		},
		{
			name:       "several replicas behind an Ingress, backed up to a volume",
			inst:       newInstance(replicas, ingress, withVolumeBackup),
			in:         migrated,
			wantApply:  []string{"*v1.PersistentVolumeClaim notes-pgdata", "*v1.Service notes-postgres", "*v1.Service notes-postgres-hl", "*v1.StatefulSet notes-postgres", "*v1.Service notes-server", "*v1.Deployment notes-server", "*v1.PodDisruptionBudget notes-server"},
			wantExpose: []string{"*v1.Ingress notes-ingress"},
			wantOthers: []string{"*v1.CronJob notes-backup", "*v1.PersistentVolumeClaim notes-backups"},
			wantRemove: nil,
		},
		{
			name:       "a route where the cluster serves them; the Ingress goes",
			inst:       newInstance(gateway),
			in:         withGateway,
			wantApply:  []string{"*v1.PersistentVolumeClaim notes-pgdata", "*v1.Service notes-postgres", "*v1.Service notes-postgres-hl", "*v1.StatefulSet notes-postgres", "*v1.Service notes-server", "*v1.Deployment notes-server"},
			wantExpose: []string{"*v1.HTTPRoute notes-route"},
			wantRemove: []string{"*v1.CronJob notes-backup", "*v1.Ingress notes-ingress", "*v1.PodDisruptionBudget notes-server"},
		},
		{
			name:       "no route anywhere: removed where the cluster serves them",
			inst:       newInstance(),
			in:         withGateway,
			wantApply:  []string{"*v1.PersistentVolumeClaim notes-pgdata", "*v1.Service notes-postgres", "*v1.Service notes-postgres-hl", "*v1.StatefulSet notes-postgres", "*v1.Service notes-server", "*v1.Deployment notes-server"},
			wantRemove: []string{"*v1.CronJob notes-backup", "*v1.HTTPRoute notes-route", "*v1.Ingress notes-ingress", "*v1.PodDisruptionBudget notes-server"},
		},
		{
			name:       "an external database: no database objects, no scheduled backups",
			inst:       newInstance(external, withS3Backup),
			in:         migrated,
			wantApply:  []string{"*v1.Service notes-server", "*v1.Deployment notes-server"},
			wantRemove: []string{"*v1.CronJob notes-backup", "*v1.Ingress notes-ingress", "*v1.PodDisruptionBudget notes-server"},
		},
		{
			name:       "restoring a backup",
			inst:       newInstance(),
			in:         restoring,
			wantApply:  []string{"*v1.PersistentVolumeClaim notes-pgdata", "*v1.Service notes-postgres", "*v1.Service notes-postgres-hl", "*v1.StatefulSet notes-postgres", "*v1.Service notes-server"},
			wantRemove: []string{"*v1.CronJob notes-backup", "*v1.Ingress notes-ingress"},
			wantOthers: []string{"*v1.Job notes-restore"},
		},
		{
			name: "importing a portable export: migrated, but no server before the import",
			inst: newInstance(func(i *v1alpha1.KintoInstance) {
				i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{BackupName: "p"}}
			}),
			in:         Inputs{SchemaVersion: v1alpha1.DefaultKintoVersion, RestoreSource: &RestoreSource{S3: &s3, Key: "k/f.yaml"}, OperatorImage: testOperatorImage},
			wantApply:  []string{"*v1.PersistentVolumeClaim notes-pgdata", "*v1.Service notes-postgres", "*v1.Service notes-postgres-hl", "*v1.StatefulSet notes-postgres", "*v1.Service notes-server"},
			wantRemove: []string{"*v1.CronJob notes-backup", "*v1.Ingress notes-ingress"},
			wantOthers: []string{"*v1.Job notes-import"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Desired(tc.inst, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			applied := c.Applied()
			if applied[0] != c.Config || applied[1] != c.ServiceAccount {
				t.Errorf("the configuration and identity are not applied first: %v", kindNames(applied[:2]))
			}
			want := slices.Sorted(slices.Values(tc.wantApply))
			if got := kindNames(applied[2+len(c.NetworkPolicies):]); !slices.Equal(got, want) {
				t.Errorf("applied %v, want %v", got, want)
			}
			if got := kindNames(c.Remove); !slices.Equal(got, slices.Sorted(slices.Values(tc.wantRemove))) {
				t.Errorf("removed %v, want %v", got, tc.wantRemove)
			}
			if got := kindNames(c.Exposure()); !slices.Equal(got, tc.wantExpose) {
				t.Errorf("exposure %v, want %v", got, tc.wantExpose)
			}
			wantAll := append(slices.Clone(tc.wantOthers), kindNames(applied)...)
			wantAll = append(wantAll, tc.wantExpose...)
			wantAll = append(wantAll, kindName(c.Migration))
			if got := kindNames(c.All()); !slices.Equal(got, slices.Sorted(slices.Values(wantAll))) {
				t.Errorf("all children %v, want %v", got, slices.Sorted(slices.Values(wantAll)))
			}
			for _, o := range c.Remove {
				if o.GetNamespace() != tc.inst.Namespace {
					t.Errorf("%s to remove is in namespace %q", kindName(o), o.GetNamespace())
				}
			}
		})
	}
}

// Every child Children holds is in All, the list the tests of every child iterate: a field added
// to Children and forgotten there fails this test.
func TestAllHoldsEveryChild(t *testing.T) {
	s3 := testS3Connection()
	inst := newInstance(withVolumeBackup, func(i *v1alpha1.KintoInstance) {
		i.Spec.Replicas = ptr.To[int32](2)
		i.Spec.Gateway = &v1alpha1.GatewaySpec{Name: "public"}
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"}
	})
	from, to := ServingDatabase(inst), UpgradedDatabase(inst)
	to.Version = "17"
	c, err := Desired(inst, Inputs{SchemaVersion: inst.Spec.Version, GatewayAPI: true, RestoreSource: &RestoreSource{S3: &s3, Key: "k"},
		DatabaseUpgrade: &DatabaseUpgradeStep{Target: &to, CopyFrom: &from}})
	if err != nil {
		t.Fatal(err)
	}
	all := map[client.Object]bool{}
	for _, o := range c.All() {
		all[o] = true
	}
	v := reflect.ValueOf(*c)
	for i := range v.NumField() {
		field := v.Type().Field(i)
		if field.Name == "Remove" || field.Name == "Import" { // Import: below, Restore's alternative
			continue
		}
		var objs []client.Object
		switch f := v.Field(i).Interface().(type) {
		case client.Object:
			objs = append(objs, f)
		case string: // the configuration's hash
		default:
			list := v.Field(i)
			for j := range list.Len() {
				objs = append(objs, list.Index(j).Interface().(client.Object))
			}
		}
		for _, o := range objs {
			if reflect.ValueOf(o).IsNil() {
				t.Errorf("Children.%s is nil for an instance that has every child", field.Name)
			} else if !all[o] {
				t.Errorf("Children.%s (%s) is not in All()", field.Name, kindName(o))
			}
		}
	}
}

// The import of a portable export is in All, as the restore it replaces.
func TestAllHoldsTheImport(t *testing.T) {
	s3 := testS3Connection()
	inst := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{BackupName: "p"}}
	})
	c, err := Desired(inst, Inputs{SchemaVersion: inst.Spec.Version, RestoreSource: &RestoreSource{S3: &s3, Key: "k.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Import == nil || c.Restore != nil || !slices.Contains(c.All(), client.Object(c.Import)) {
		t.Errorf("import %v, restore %v, all %v", c.Import, c.Restore, kindNames(c.All()))
	}
}

func TestDesiredRefusesAnInvalidConfiguration(t *testing.T) {
	inst := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Spec.Settings = map[string]v1alpha1.SettingValue{"kinto.storage_backend": "kinto.core.storage.memory"}
	})
	if _, err := Desired(inst, Inputs{}); err == nil {
		t.Error("Desired built the children of an instance whose settings take over the operator's")
	}
}

// The first migration on an external database checks the HMAC secrets first; later ones, and a
// managed database's, do not.
func TestFirstExternalMigrationChecksTheHMACSecrets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inst    *v1alpha1.KintoInstance
		version string
		want    bool
	}{
		{"external, first migration", newInstance(external), "", true},
		{"external, an upgrade", newInstance(external), "26.4.0", false},
		{"managed", newInstance(), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Desired(tc.inst, Inputs{SchemaVersion: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			var got bool
			for _, ic := range c.Migration.Spec.Template.Spec.InitContainers {
				if ic.Name == HMACCheckContainer {
					got = true
					for _, e := range ic.Env {
						if e.Name == envHMACSecretsDrawn && (e.ValueFrom.SecretKeyRef.Key != SecretKeyHMACSecretsDrawn || !*e.ValueFrom.SecretKeyRef.Optional) {
							t.Errorf("the check reads %+v, want the optional key %s", e.ValueFrom.SecretKeyRef, SecretKeyHMACSecretsDrawn)
						}
					}
				}
			}
			if got != tc.want {
				t.Errorf("HMAC check: %v, want %v", got, tc.want)
			}
		})
	}
}

// An instance whose host another instance serves applies no Ingress or route, and removes its
// own where they exist.
func TestWithoutExposure(t *testing.T) {
	for name, edit := range map[string]func(*v1alpha1.KintoInstance){
		"ingress": func(i *v1alpha1.KintoInstance) { i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"} },
		"gateway": func(i *v1alpha1.KintoInstance) {
			i.Spec.Gateway = &v1alpha1.GatewaySpec{Name: "public", Host: "notes.example.org"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Desired(newInstance(edit), Inputs{SchemaVersion: v1alpha1.DefaultKintoVersion, GatewayAPI: true, OperatorImage: testOperatorImage})
			if err != nil {
				t.Fatal(err)
			}
			c.WithoutExposure()
			if c.Ingress != nil || c.HTTPRoute != nil {
				t.Fatalf("still applied: %v, %v", c.Ingress, c.HTTPRoute)
			}
			want := []string{"*v1.HTTPRoute notes-route", "*v1.Ingress notes-ingress"}
			if got := kindNames(slices.DeleteFunc(slices.Clone(c.Remove), func(o client.Object) bool {
				return !slices.Contains(want, kindName(o))
			})); !slices.Equal(got, want) {
				t.Errorf("removed %v, want %v among them", kindNames(c.Remove), want)
			}
		})
	}
}

// Under the Snapshot policy, the instance controls every child but those that hold data and
// those its final backup needs, which KeptForFinalBackup names for the operator to delete after
// it: a foreground deletion must leave the final backup a database to dump. Under the other
// policies, what the final backup needs is controlled as usual.
func TestFinalBackupNeedsAreNotControlledUnderSnapshot(t *testing.T) {
	inst := newInstance(withVolumeBackup, func(i *v1alpha1.KintoInstance) {
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"}
	})
	key := func(o client.Object) string { return reflect.TypeOf(o).Elem().Name() + "/" + o.GetName() }
	kept := map[string]bool{}
	for _, o := range KeptForFinalBackup(inst) {
		kept[key(o)] = true
	}
	data := map[string]bool{"PersistentVolumeClaim/" + DataVolumeClaimName(inst): true, "PersistentVolumeClaim/" + BackupVolumeClaimName(inst): true}
	for _, policy := range []v1alpha1.DeletionPolicy{v1alpha1.DeletionPolicySnapshot, v1alpha1.DeletionPolicyRetain, v1alpha1.DeletionPolicyDelete} {
		inst.Spec.DeletionPolicy = policy
		c, err := Desired(inst, Inputs{SchemaVersion: inst.Spec.Version})
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, o := range c.All() {
			uncontrolled := len(o.GetOwnerReferences()) == 0
			found[key(o)] = true
			switch {
			case data[key(o)]:
			case kept[key(o)] && policy == v1alpha1.DeletionPolicySnapshot:
				if !uncontrolled {
					t.Errorf("%s: %s, which the final backup needs, is controlled by the instance", policy, key(o))
				}
			case uncontrolled:
				t.Errorf("%s: %s is not controlled by the instance", policy, key(o))
			}
		}
		for k := range kept {
			if !found[k] {
				t.Errorf("KeptForFinalBackup names %s, which the instance does not have", k)
			}
		}
	}
}

// Following a release catalogue, the server runs the image of the release its schema is at, and
// the migration the image of the release it moves to: the server changes image once migrated.
func TestDesiredRunsTheCatalogueImageOfEachRelease(t *testing.T) {
	images := map[string]string{"26.4.0": "registry.example.org/kinto:26.4.0", "26.5.0": "registry.example.org/kinto:26.5.0@sha256:0123"}
	inst := newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	c, err := Desired(inst, Inputs{SchemaVersion: "26.4.0", OperatorImage: testOperatorImage, ReleaseImages: images})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Server.Spec.Template.Spec.Containers[0].Image; got != images["26.4.0"] {
		t.Errorf("server image %s, want %s", got, images["26.4.0"])
	}
	if got := c.Migration.Spec.Template.Spec.Containers[0].Image; got != images["26.5.0"] {
		t.Errorf("migration image %s, want %s", got, images["26.5.0"])
	}
	if inst.Spec.Image != "" {
		t.Errorf("Desired changed the instance's spec.image to %s", inst.Spec.Image)
	}
	without, err := Desired(inst, Inputs{SchemaVersion: "26.4.0", OperatorImage: testOperatorImage})
	if err != nil {
		t.Fatal(err)
	}
	if got := without.Server.Spec.Template.Spec.Containers[0].Image; got != "kinto/kinto-server:26.4.0" {
		t.Errorf("without a catalogue the server image is %s, want the official one", got)
	}
}
