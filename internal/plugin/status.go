package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// InstanceStatus is what `status` shows of one instance, and prints with -o json or yaml.
type InstanceStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Ready is the status of the Ready condition: True, False or Unknown (not reported yet).
	Ready string `json:"ready"`
	// BackupHealthy is the status of the BackupHealthy condition, empty when not backed up.
	BackupHealthy string `json:"backupHealthy,omitempty"`
	Hibernate     bool   `json:"hibernate"`
	// SpecVersion is the Kinto release asked for (for an instance that follows a release
	// catalogue, the one its catalogue's upgrade goes to); Version the one the instance runs.
	SpecVersion   string               `json:"specVersion"`
	Version       string               `json:"version,omitempty"`
	Replicas      int32                `json:"replicas"`
	ReadyReplicas int32                `json:"readyReplicas"`
	URL           string               `json:"url,omitempty"`
	LastBackup    *v1alpha1.LastBackup `json:"lastBackup,omitempty"`
	// Updates is what the release catalogue offers an instance that follows one.
	Updates    *v1alpha1.UpdatesStatus `json:"updates,omitempty"`
	Conditions []metav1.Condition      `json:"conditions,omitempty"`
}

// statusOf summarises an instance.
func statusOf(inst *v1alpha1.KintoInstance) InstanceStatus {
	st := InstanceStatus{
		Namespace:     inst.Namespace,
		Name:          inst.Name,
		Ready:         conditionStatus(inst.Status.Conditions, v1alpha1.ConditionReady),
		Hibernate:     inst.Spec.Hibernate,
		SpecVersion:   inst.Spec.Version,
		Version:       inst.Status.Version,
		Replicas:      inst.Status.Replicas,
		ReadyReplicas: inst.Status.ReadyReplicas,
		URL:           inst.Status.URL,
		LastBackup:    inst.Status.LastBackup,
		Updates:       inst.Status.Updates,
		Conditions:    inst.Status.Conditions,
	}
	if inst.Spec.Updates != nil {
		// A follower does not use spec.version (the API server's default): it goes where its
		// catalogue's upgrade goes, else stays.
		st.SpecVersion = inst.Status.Version
		if u := inst.Status.Updates; u != nil && u.LastUpgrade != nil && u.LastUpgrade.Outcome == v1alpha1.UpgradeOutcomeInProgress {
			st.SpecVersion = u.LastUpgrade.To
		}
	}
	if c := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionBackupHealthy); c != nil {
		st.BackupHealthy = string(c.Status)
	}
	return st
}

func conditionStatus(conditions []metav1.Condition, kind string) string {
	if c := meta.FindStatusCondition(conditions, kind); c != nil {
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}

// versionText is the release the instance runs, with the one it goes to while they differ.
func versionText(st InstanceStatus) string {
	switch {
	case st.Version == "":
		return orDash(st.SpecVersion)
	case st.SpecVersion == "" || st.SpecVersion == st.Version:
		return st.Version
	default:
		return st.Version + " -> " + st.SpecVersion
	}
}

func lastBackupText(lb *v1alpha1.LastBackup, now time.Time) string {
	if lb == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", lb.Name, age(lb.CompletedAt, now))
}

func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeTable renders the instances one a line; with namespaces, a NAMESPACE column first.
func writeTable(w io.Writer, instances []InstanceStatus, namespaces bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "NAME\tREADY\tBACKUPS\tVERSION\tREPLICAS\tLAST BACKUP\tURL"
	if namespaces {
		header = "NAMESPACE\t" + header
	}
	fmt.Fprintln(tw, header)
	for _, st := range instances {
		replicas := fmt.Sprintf("%d/%d", st.ReadyReplicas, st.Replicas)
		if st.Hibernate {
			replicas += " (hibernating)"
		}
		row := strings.Join([]string{st.Name, st.Ready, orDash(st.BackupHealthy), versionText(st), replicas,
			lastBackupText(st.LastBackup, now), orDash(st.URL)}, "\t")
		if namespaces {
			row = st.Namespace + "\t" + row
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// writeDetail renders one instance: its summary, then every condition with its reason and message.
func writeDetail(w io.Writer, st InstanceStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Instance:\t%s/%s\n", st.Namespace, st.Name)
	fmt.Fprintf(tw, "Ready:\t%s\n", st.Ready)
	fmt.Fprintf(tw, "Version:\t%s (spec %s, running %s)\n", versionText(st), orDash(st.SpecVersion), orDash(st.Version))
	hibernating := ""
	if st.Hibernate {
		hibernating = ", hibernating (spec.hibernate)"
	}
	fmt.Fprintf(tw, "Replicas:\t%d/%d ready%s\n", st.ReadyReplicas, st.Replicas, hibernating)
	fmt.Fprintf(tw, "URL:\t%s\n", orDash(st.URL))
	if lb := st.LastBackup; lb != nil {
		fmt.Fprintf(tw, "Last backup:\t%s, %s ago, %d bytes, %s\n", lb.Name, age(lb.CompletedAt, now), lb.Size, lb.Location)
	} else {
		fmt.Fprintf(tw, "Last backup:\t-\n")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CONDITION\tSTATUS\tREASON\tSINCE\tMESSAGE")
	for _, c := range st.Conditions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, age(c.LastTransitionTime, now), oneLine(c.Message))
	}
	return tw.Flush()
}

// oneLine keeps a table row on one line whatever a message holds.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// writeStatus prints instances in output: "" (a table, or the detail of one named instance),
// "json" or "yaml".
func writeStatus(w io.Writer, instances []InstanceStatus, named, namespaces bool, output string, now time.Time) error {
	switch output {
	case "":
		if named {
			return writeDetail(w, instances[0], now)
		}
		if len(instances) == 0 {
			_, err := fmt.Fprintln(w, "No KintoInstance found.")
			return err
		}
		return writeTable(w, instances, namespaces, now)
	case "json", "yaml":
		var v any = instances
		if named {
			v = instances[0]
		}
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if output == "yaml" {
			if data, err = yaml.JSONToYAML(data); err != nil {
				return err
			}
		} else {
			data = append(data, '\n')
		}
		_, err = w.Write(data)
		return err
	default:
		return fmt.Errorf("--output %q: use json or yaml, or leave it out for a table", output)
	}
}

// Status prints the instance name, or every instance of the namespace (of every namespace with
// AllNamespaces) when name is empty.
func Status(ctx context.Context, s *Session, name, output string) error {
	if output != "" && output != "json" && output != "yaml" {
		return fmt.Errorf("--output %q: use json or yaml, or leave it out for a table", output)
	}
	var instances []InstanceStatus
	if name != "" {
		inst, err := s.instance(ctx, name)
		if err != nil {
			return err
		}
		instances = append(instances, statusOf(inst))
	} else {
		list := &v1alpha1.KintoInstanceList{}
		var opts []client.ListOption
		if !s.AllNamespaces {
			opts = append(opts, client.InNamespace(s.Namespace))
		}
		if err := s.Client.List(ctx, list, opts...); err != nil {
			return err
		}
		for i := range list.Items {
			instances = append(instances, statusOf(&list.Items[i]))
		}
		slices.SortFunc(instances, func(a, b InstanceStatus) int {
			return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
		})
	}
	return writeStatus(s.Out, instances, name != "", s.AllNamespaces, output, time.Now())
}

func statusCommand(run runner) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show the instances with their conditions, versions and last backup",
		Args:  cobra.MaximumNArgs(1),
		RunE: run(func(ctx context.Context, s *Session, args []string) error {
			var name string
			if len(args) == 1 {
				name = args[0]
			}
			return Status(ctx, s, name, output)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json or yaml (default: a table)")
	return cmd
}
