package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SetHibernate sets spec.hibernate of the instance name: true scales it to zero pods, keeping
// its data; false serves it again.
func SetHibernate(ctx context.Context, s *Session, name string, hibernate bool) error {
	inst, err := s.instance(ctx, name)
	if err != nil {
		return err
	}
	if inst.Spec.Hibernate == hibernate {
		fmt.Fprintf(s.Out, "kintoinstance/%s: spec.hibernate is already %t\n", name, hibernate)
		return nil
	}
	patch := client.MergeFrom(inst.DeepCopy())
	inst.Spec.Hibernate = hibernate
	if err := s.Client.Patch(ctx, inst, patch); err != nil {
		return err
	}
	if hibernate {
		fmt.Fprintf(s.Out, "kintoinstance/%s hibernating: its server and database go to zero pods, its volume, credentials and configuration are kept\n", name)
	} else {
		fmt.Fprintf(s.Out, "kintoinstance/%s waking: its server and database start again on the same data\n", name)
	}
	return nil
}

func hibernateCommand(run runner, hibernate bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hibernate NAME",
		Short: "Scale the instance to zero pods, keeping its data (spec.hibernate: true)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, s *Session, args []string) error {
			return SetHibernate(ctx, s, args[0], hibernate)
		}),
	}
	if !hibernate {
		cmd.Use = "wake NAME"
		cmd.Short = "Serve a hibernating instance again (spec.hibernate: false)"
	}
	return cmd
}

// URL prints the address where clients reach the instance name (status.url).
func URL(ctx context.Context, s *Session, name string) error {
	inst, err := s.instance(ctx, name)
	if err != nil {
		return err
	}
	if inst.Status.URL == "" {
		return fmt.Errorf("kintoinstance/%s has no address yet (status.url is empty): see kubectl kinto status %s", name, name)
	}
	_, err = fmt.Fprintln(s.Out, inst.Status.URL)
	return err
}

func urlCommand(run runner) *cobra.Command {
	return &cobra.Command{
		Use:   "url NAME",
		Short: "Print the instance's address",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, s *Session, args []string) error {
			return URL(ctx, s, args[0])
		}),
	}
}
