package resources

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// An upgraded server has names of its own, which carry its major, and the serving one is the
// one status.database records: the client Service selects its pod only.
func TestUpgradedDatabaseNames(t *testing.T) {
	inst := newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Database.Managed.Version = "17" })
	first := ServingDatabase(inst)
	if first.StatefulSet != "notes-postgres" || first.VolumeClaim != "notes-pgdata" || first.Image != "postgres:17" {
		t.Fatalf("first server %+v", first)
	}
	target := UpgradedDatabase(inst)
	if target.StatefulSet != "notes-postgres-v17" || target.VolumeClaim != "notes-pgdata-v17" || target.Version != "17" {
		t.Fatalf("upgraded server %+v", target)
	}
	long := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Name = "a-very-long-instance-name-that-fills-the-dns-label-almost-all"
		i.Spec.Database.Managed.Version = "17"
	})
	if n := UpgradedDatabase(long).StatefulSet; len(n) > statefulSetMaxNameLength {
		t.Errorf("StatefulSet name %s is %d characters long", n, len(n))
	}

	for _, serving := range []v1alpha1.DatabaseServerRef{first, target} {
		inst.Status.Database = &v1alpha1.DatabaseStatus{DatabaseServerRef: serving}
		client := DatabaseServices(inst)[0]
		if got := client.Spec.Selector[appsv1.StatefulSetPodNameLabel]; got != serving.StatefulSet+"-0" {
			t.Errorf("serving %s: the client Service selects pod %q", serving.StatefulSet, got)
		}
		sts := DatabaseStatefulSet(inst, "r", testOperatorImage, false)
		claim := sts.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName
		if sts.Name != serving.StatefulSet || claim != serving.VolumeClaim || DataVolumeClaim(inst).Name != serving.VolumeClaim {
			t.Errorf("serving %+v: StatefulSet %s on claim %s", serving, sts.Name, claim)
		}
		for _, c := range sts.Spec.Template.Spec.Containers {
			if c.Image != serving.Image {
				t.Errorf("serving %+v: container %s runs %s", serving, c.Name, c.Image)
			}
		}
	}
}

// The copy dumps with the old server's tools from its pod, and restores with the new one's into
// its pod, through the pod's scratch space.
func TestDatabaseCopyJob(t *testing.T) {
	inst := newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Database.Managed.Version = "17" })
	from := v1alpha1.DatabaseServerRef{Version: "15", Image: "postgres:15", StatefulSet: "notes-postgres", VolumeClaim: "notes-pgdata"}
	to := UpgradedDatabase(inst)
	job := DatabaseCopyJob(inst, from, to, testOperatorImage)
	if job.Name != "notes-pg-copy-v17" || *job.Spec.BackoffLimit != 0 {
		t.Fatalf("Job %s, backoff limit %d", job.Name, *job.Spec.BackoffLimit)
	}
	pod := job.Spec.Template.Spec
	want := map[string]struct{ image, host string }{
		stepDump:    {"postgres:15", "notes-postgres-0.notes-postgres-hl"},
		stepRestore: {"postgres:17", "notes-postgres-v17-0.notes-postgres-hl"},
	}
	steps := append(pod.InitContainers[1:], pod.Containers...) // after the tools' install
	if len(steps) != 2 || steps[0].Name != stepDump || steps[1].Name != stepRestore {
		t.Fatalf("steps %v", steps)
	}
	for _, c := range steps {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if c.Image != want[c.Name].image || env["PGHOST"] != want[c.Name].host || env["DUMP_DIR"] != dumpDir || env["DUMP_FILE"] != "" {
			t.Errorf("step %s: image %s, PGHOST %s, DUMP_DIR %s", c.Name, c.Image, env["PGHOST"], env["DUMP_DIR"])
		}
	}
	if job.Spec.Template.Labels[ComponentLabel] != ComponentDatabaseCopy {
		t.Errorf("pod labels %v: the backup network policy, which lets it reach the database, does not select it", job.Spec.Template.Labels)
	}
}
