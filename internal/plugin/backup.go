package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// BackupPollInterval is how often `backup --wait` reads the backup's progress.
var BackupPollInterval = time.Second

// Backup creates a KintoBackup of the instance name and, with wait, reports its phases until it
// is done: an error when it failed.
func Backup(ctx context.Context, s *Session, name string, wait bool) error {
	if _, err := s.instance(ctx, name); err != nil {
		return err
	}
	backup := &v1alpha1.KintoBackup{
		// The API server draws the suffix, so that two backups of the same second never collide.
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, GenerateName: name + "-"},
		Spec:       v1alpha1.KintoBackupSpec{Instance: name},
	}
	if err := s.Client.Create(ctx, backup); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "kintobackup/%s created for instance %s\n", backup.Name, name)
	if !wait {
		return nil
	}
	return waitForBackup(ctx, s, client.ObjectKeyFromObject(backup))
}

// waitForBackup prints each phase the backup goes through, then its result.
func waitForBackup(ctx context.Context, s *Session, key client.ObjectKey) error {
	var reported v1alpha1.BackupPhase
	ticker := time.NewTicker(BackupPollInterval)
	defer ticker.Stop()
	for {
		backup := &v1alpha1.KintoBackup{}
		if err := s.Client.Get(ctx, key, backup); err != nil {
			return err
		}
		if phase := backup.Status.Phase; phase != reported && phase != "" {
			fmt.Fprintln(s.Out, backupProgress(backup))
			reported = phase
		}
		if backup.Done() {
			if backup.Status.Phase == v1alpha1.BackupFailed {
				return fmt.Errorf("kintobackup/%s failed", key.Name)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for kintobackup/%s (phase %s): %w", key.Name, orDash(string(reported)), ctx.Err())
		case <-ticker.C:
		}
	}
}

// backupProgress is the line that reports a backup's phase.
func backupProgress(b *v1alpha1.KintoBackup) string {
	st := b.Status
	switch st.Phase {
	case v1alpha1.BackupRunning:
		if st.JobName != "" {
			return fmt.Sprintf("%s: Running (Job %s)", b.Name, st.JobName)
		}
	case v1alpha1.BackupCompleted:
		return fmt.Sprintf("%s: Completed: %d bytes at %s, Kinto %s, sha256 %s", b.Name, st.Size, st.Location, orDash(st.KintoVersion), orDash(st.SHA256))
	case v1alpha1.BackupFailed:
		return fmt.Sprintf("%s: Failed: %s", b.Name, orDash(st.Error))
	}
	return fmt.Sprintf("%s: %s", b.Name, st.Phase)
}

func backupCommand(run runner) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "backup NAME",
		Short: "Back the instance up now (a KintoBackup)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, s *Session, args []string) error {
			return Backup(ctx, s, args[0], wait)
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "show the backup's progress until it completed (exit status 0) or failed (1)")
	return cmd
}
