//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/portable"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestPortableExportToS3 takes a Portable KintoBackup of an instance on the cluster with
// `kubectl kinto export -o`: its Job reads the instance through its Service (past the network
// policies, under Pod Security restricted) as an account the instance's settings let read
// everything, and uploads the export to the bucket, whence the plugin writes kinto-wizard's YAML
// holding the instance's data.
func TestPortableExportToS3(t *testing.T) {
	t.Parallel()
	bucket := newS3Bucket(t)
	ns := newNamespace(t)
	const porter, password = "porter", "porter-secret-1"
	source := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.Auth = &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{Enabled: true, Admins: []string{porter}}}
		i.Spec.Settings = map[string]v1alpha1.SettingValue{}
		for _, kind := range []string{"bucket", "collection", "group", "record"} {
			i.Spec.Settings[kind+"_read_principals"] = "account:" + porter
		}
		i.Spec.Backup = &v1alpha1.BackupSpec{
			Schedule: "0 3 1 1 *", // never during the test
			Destination: &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{
				S3Connection: bucket.connection(t, ns),
				Prefix:       bucket.prefix,
			}},
		}
	}))
	data := populate(t, source)
	kintoAPI(t, source).CreateAccount(porter, password)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "porter-kinto"}, StringData: map[string]string{"password": password}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	// The administrators' plugin takes it, follows it and writes it from the bucket, with the
	// bucket's credentials Secret its kubeconfig reads.
	file := filepath.Join(t.TempDir(), "export.yaml")
	out := kubectlKinto(t, ns, "export", source.Name, "--user", porter, "--password-secret", secret.Name, "-o", file)
	created := regexp.MustCompile(`kintobackup/(\S+) created`).FindStringSubmatch(out)
	if created == nil || !strings.Contains(out, file+" written: ") {
		t.Fatalf("kubectl kinto export:\n%s", out)
	}
	backup := waitBackupCompleted(t, ns, created[1])
	checkCompletedBackup(t, backup)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := portable.ReadYAML(f)
	if err != nil {
		t.Fatalf("the export in the bucket is not kinto-wizard's YAML: %v", err)
	}
	want := map[string]int64{"buckets": 1, "collections": 1, "records": 6, "groups": 0, "accounts": 3}
	if got := e.Counts(); !maps.Equal(got, want) || e.Buckets["library"] == nil {
		t.Errorf("the export in the bucket holds %v, want %v", got, want)
	}
	// The upload reports the counts the export step recorded, as a volume's result file does.
	if !maps.Equal(backup.Status.Counts, want) {
		t.Errorf("status.counts of the export uploaded to S3 is %v, want %v", backup.Status.Counts, want)
	}
	t.Logf("Portable export %s: %d bytes, holding %v", backup.Status.Location, backup.Status.Size, e.Counts())

	// A new instance starts from the export: its import Job downloads it from the bucket and
	// loads it through a Kinto server of its own pod, before the instance's server starts.
	imported := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Name = source.Name + "-imported"
		i.Spec.Auth = source.Spec.Auth
		i.Spec.Settings = source.Spec.Settings
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{BackupName: backup.Name}}
	}))
	c := meta.FindStatusCondition(imported.Status.Conditions, v1alpha1.ConditionRestored)
	if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "1 buckets, 1 collections, 0 groups, 6 records") {
		t.Errorf("the imported instance's Restored condition is %+v, want true with the loader's counts", c)
	}
	// Accounts do not move through the API: porter signs up again, and reads what the settings
	// let it read (an export holds the permissions of what its identity writes only).
	target := kintoAPI(t, imported)
	waitHealthy(t, target)
	target.CreateAccount(porter, password)
	read, fromSource := records(t, target.As(porter, password), data.ids), records(t, kintoAPI(t, source).As(porter, password), data.ids)
	if !maps.Equal(read, fromSource) {
		t.Errorf("the imported instance serves\n%v\nwant the source's\n%v", read, fromSource)
	}
	t.Logf("imported: %s", c.Message)
}

// records is what api reads of the dataset's collection, its list of ids and each record's data,
// without the timestamps a server gives on write.
func records(t *testing.T, api kintotest.Client, ids []string) map[string]string {
	t.Helper()
	var list struct {
		Data []map[string]any `json:"data"`
	}
	api.Must("GET", kintotest.BooksPath, nil, &list, 200)
	var listed []string
	for _, r := range list.Data {
		id, _ := r["id"].(string)
		listed = append(listed, id)
	}
	slices.Sort(listed)
	out := map[string]string{"": strings.Join(listed, ",")}
	for _, id := range ids {
		var o kintotest.Object
		api.Must("GET", kintotest.BooksPath+"/"+id, nil, &o, 200)
		delete(o.Data, "last_modified")
		b, err := json.Marshal(o.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = string(b)
	}
	return out
}
