package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func readyNotes() InstanceStatus {
	return InstanceStatus{
		Namespace: "coop", Name: "notes", Ready: "True", BackupHealthy: "True",
		SpecVersion: "26.5.0", Version: "26.5.0", Replicas: 2, ReadyReplicas: 2,
		URL:        "https://notes.example.org/v1",
		LastBackup: &v1alpha1.LastBackup{Name: "notes-x7k2p", CompletedAt: ago(3 * time.Hour), Location: "pvc/notes-backups/x.dump", Size: 2048},
		Conditions: []metav1.Condition{
			{Type: "Ready", Status: "True", Reason: "Serving", LastTransitionTime: ago(26 * time.Hour)},
			{Type: "BackupHealthy", Status: "True", Reason: "Recent", Message: "last backup\n3h ago", LastTransitionTime: ago(90 * time.Minute)},
		},
	}
}

func TestStatusOf(t *testing.T) {
	inst := &v1alpha1.KintoInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "coop", Name: "todo"},
		Spec:       v1alpha1.KintoInstanceSpec{Version: "26.5.0", Hibernate: true},
		Status: v1alpha1.KintoInstanceStatus{Version: "26.4.0", Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse},
			{Type: v1alpha1.ConditionBackupHealthy, Status: metav1.ConditionFalse},
		}},
	}
	st := statusOf(inst)
	if st.Ready != "False" || st.BackupHealthy != "False" || !st.Hibernate || st.SpecVersion != "26.5.0" || st.Version != "26.4.0" {
		t.Errorf("statusOf = %+v", st)
	}
	// A follower of a release catalogue runs 26.4.0, spec.version's default being unused: it
	// shows no upgrade until its catalogue starts one.
	inst.Spec.Updates = &v1alpha1.InstanceUpdates{}
	if st = statusOf(inst); versionText(st) != "26.4.0" {
		t.Errorf("a follower at rest shows version %q, want 26.4.0", versionText(st))
	}
	inst.Status.Updates = &v1alpha1.UpdatesStatus{LastUpgrade: &v1alpha1.UpgradeRecord{From: "26.4.0", To: "26.4.1", Outcome: v1alpha1.UpgradeOutcomeInProgress}}
	if st = statusOf(inst); versionText(st) != "26.4.0 -> 26.4.1" {
		t.Errorf("a follower upgrading shows version %q, want 26.4.0 -> 26.4.1", versionText(st))
	}
	st = statusOf(&v1alpha1.KintoInstance{})
	if st.Ready != "Unknown" || st.BackupHealthy != "" {
		t.Errorf("an instance without conditions: Ready %q, BackupHealthy %q; want Unknown and empty", st.Ready, st.BackupHealthy)
	}
}

func TestVersionText(t *testing.T) {
	cases := []struct{ spec, status, want string }{
		{"26.5.0", "26.5.0", "26.5.0"},
		{"26.5.0", "26.4.0", "26.4.0 -> 26.5.0"},
		{"26.5.0", "", "26.5.0"},
		{"", "26.5.0", "26.5.0"},
		{"", "", "-"},
	}
	for _, tc := range cases {
		if got := versionText(InstanceStatus{SpecVersion: tc.spec, Version: tc.status}); got != tc.want {
			t.Errorf("versionText(spec %q, status %q) = %q, want %q", tc.spec, tc.status, got, tc.want)
		}
	}
}

func TestWriteStatus(t *testing.T) {
	upgrading := InstanceStatus{Namespace: "other", Name: "agenda", Ready: "Unknown", SpecVersion: "26.5.0", Version: "26.4.0", Hibernate: true}
	cases := []struct {
		name       string
		instances  []InstanceStatus
		named      bool
		namespaces bool
		want       string
	}{
		{
			name:      "table",
			instances: []InstanceStatus{readyNotes(), upgrading},
			want: "NAME    READY    BACKUPS  VERSION           REPLICAS           LAST BACKUP           URL\n" +
				"notes   True     True     26.5.0            2/2                notes-x7k2p (3h ago)  https://notes.example.org/v1\n" +
				"agenda  Unknown  -        26.4.0 -> 26.5.0  0/0 (hibernating)  -                     -\n",
		},
		{
			name:       "table of every namespace",
			instances:  []InstanceStatus{readyNotes()},
			namespaces: true,
			want: "NAMESPACE  NAME   READY  BACKUPS  VERSION  REPLICAS  LAST BACKUP           URL\n" +
				"coop       notes  True   True     26.5.0   2/2       notes-x7k2p (3h ago)  https://notes.example.org/v1\n",
		},
		{
			name: "no instance",
			want: "No KintoInstance found.\n",
		},
		{
			name:      "one instance in detail, a message on one line",
			instances: []InstanceStatus{readyNotes()},
			named:     true,
			want: "Instance:     coop/notes\n" +
				"Ready:        True\n" +
				"Version:      26.5.0 (spec 26.5.0, running 26.5.0)\n" +
				"Replicas:     2/2 ready\n" +
				"URL:          https://notes.example.org/v1\n" +
				"Last backup:  notes-x7k2p, 3h ago, 2048 bytes, pvc/notes-backups/x.dump\n" +
				"\n" +
				"CONDITION      STATUS  REASON   SINCE  MESSAGE\n" +
				"Ready          True    Serving  26h    \n" +
				"BackupHealthy  True    Recent   90m    last backup 3h ago\n",
		},
		{
			name:      "a hibernating instance never backed up",
			instances: []InstanceStatus{upgrading},
			named:     true,
			want: "Instance:     other/agenda\n" +
				"Ready:        Unknown\n" +
				"Version:      26.4.0 -> 26.5.0 (spec 26.5.0, running 26.4.0)\n" +
				"Replicas:     0/0 ready, hibernating (spec.hibernate)\n" +
				"URL:          -\n" +
				"Last backup:  -\n" +
				"\n" +
				"CONDITION  STATUS  REASON  SINCE  MESSAGE\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeStatus(&out, tc.instances, tc.named, tc.namespaces, "", now); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestWriteStatusStructured(t *testing.T) {
	for _, output := range []string{"json", "yaml"} {
		t.Run(output, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeStatus(&out, []InstanceStatus{readyNotes()}, false, false, output, now); err != nil {
				t.Fatal(err)
			}
			var got []InstanceStatus
			if err := yaml.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("%s does not read back: %v\n%s", output, err, out.String())
			}
			want, _ := json.Marshal([]InstanceStatus{readyNotes()})
			gotJSON, _ := json.Marshal(got)
			if !bytes.Equal(gotJSON, want) {
				t.Errorf("read back\n%s\nwant\n%s", gotJSON, want)
			}
			if output == "json" && !json.Valid(out.Bytes()) {
				t.Errorf("-o json printed invalid JSON:\n%s", out.String())
			}
		})
	}
	var out bytes.Buffer
	err := writeStatus(&out, []InstanceStatus{readyNotes()}, true, false, "xml", now)
	if err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("-o xml: error %v, want one naming --output", err)
	}
}
