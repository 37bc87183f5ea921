// The stages that deal with Secrets: the generated credentials and the user's Secrets an
// instance references.

package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// reconcileCredentials applies the generated credentials, keeping every value already stored,
// and returns the resource version the database pod reads them at. A database password being
// rotated reaches the pods once PostgreSQL has taken it (resources.CredentialsSecret); until
// then the pass says so (p.rotatingPassword).
func (r *KintoInstanceReconciler) reconcileCredentials(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) (string, error) {
	existing := &corev1.Secret{}
	key := types.NamespacedName{Namespace: inst.Namespace, Name: resources.CredentialsSecretName(inst)}
	readErr := r.Get(ctx, key, existing)
	if apierrors.IsNotFound(readErr) {
		// Most often a new instance's, which a create makes without a read. One the user made
		// (to carry an instance's HMAC secrets over from another host) is not labelled yet, so
		// not in the cache, and neither is the one a pass just created until the cache shows
		// it: the create fails on those (or the values cannot be drawn), and they are read past
		// the cache, their values kept, not drawn anew.
		if secret, err := r.credentials(ctx, p, inst, existing); err == nil && createAbsent(ctx, r.Client, secret) == nil {
			return credentialsApplied(p, secret), nil
		}
		readErr = r.APIReader.Get(ctx, key, existing)
	}
	if client.IgnoreNotFound(readErr) != nil {
		return "", readErr
	}
	secret, err := r.credentials(ctx, p, inst, existing)
	switch {
	case errors.Is(err, resources.ErrHMACSecretsLost):
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "CredentialsMissing",
			fmt.Sprintf("Secret %s: %v", key.Name, err))
	case errors.Is(err, resources.ErrPasswordRefused):
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "CredentialsInvalid",
			fmt.Sprintf("Secret %s: %v", key.Name, err))
	}
	if err != nil {
		return "", err
	}
	// Applied on the condition that it is still the Secret read: one deleted meanwhile must not
	// come back with values from a stale read, nor new ones over data. Its version is the
	// workloads' credentials revision, so the Secret as read is what the apply compares with
	// (the cache may not show it yet): applied again for nothing, it would take a new version
	// and roll every pod of the instance.
	secret.ResourceVersion = existing.ResourceVersion
	if err := applyOver(ctx, r.Client, secret, existing, readErr); err != nil {
		return "", err
	}
	return credentialsApplied(p, secret), nil
}

// credentials are the generated credentials the instance needs, keeping every value existing
// holds.
func (r *KintoInstanceReconciler) credentials(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, existing *corev1.Secret) (*corev1.Secret, error) {
	holdsData := false
	var err error
	// An external database's needs no I/O, and ends the HMAC secrets' drawn mark.
	if !resources.HasHMACSecrets(existing.Data) || inst.Spec.ExternalDatabase() != nil {
		if holdsData, err = r.holdsData(ctx, p, inst); err != nil {
			return nil, err
		}
	}
	taken, err := r.passwordTaken(ctx, inst, existing)
	if err != nil {
		return nil, err
	}
	return resources.CredentialsSecret(inst, existing.Data, resources.RandomSource, holdsData, taken)
}

// credentialsApplied notes what the pass must know of the credentials Secret as applied, and
// returns its version.
func credentialsApplied(p *pass, secret *corev1.Secret) string {
	p.rotatingPassword = len(secret.Data[resources.SecretKeyDatabasePasswordNext]) > 0
	p.hmacSecretsDrawn = len(secret.Data[resources.SecretKeyHMACSecretsDrawn]) > 0
	return secret.ResourceVersion
}

// passwordTaken says whether PostgreSQL has taken the database password waiting in the
// credentials Secret: the database runs, ready, the template that sets it, made from the Secret
// as it is now.
func (r *KintoInstanceReconciler) passwordTaken(ctx context.Context, inst *v1alpha1.KintoInstance, creds *corev1.Secret) (bool, error) {
	if inst.Spec.ManagedDatabase() == nil || len(creds.Data[resources.SecretKeyDatabasePasswordNext]) == 0 {
		return false, nil
	}
	sts, err := r.runningDatabase(ctx, inst)
	if sts == nil || err != nil {
		return false, err
	}
	want := resources.DatabaseStatefulSetKeepingTools(inst, resources.SecretsRevision(map[string]string{creds.Name: creds.ResourceVersion}), r.OperatorImage, true, sts)
	st := sts.Status
	return sts.Annotations[resources.TemplateHashAnnotation] == want.Annotations[resources.TemplateHashAnnotation] &&
		st.ObservedGeneration == sts.Generation && st.ReadyReplicas > 0 && st.UpdatedReplicas > 0 &&
		st.CurrentRevision == st.UpdateRevision, nil
}

// runningDatabase is the managed database's StatefulSet as the cache holds it, nil when there is
// none.
func (r *KintoInstanceReconciler) runningDatabase(ctx context.Context, inst *v1alpha1.KintoInstance) (*appsv1.StatefulSet, error) {
	if inst.Spec.ManagedDatabase() == nil {
		return nil, nil
	}
	sts := &appsv1.StatefulSet{}
	err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: resources.DatabaseStatefulSetName(inst)}, sts)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return sts, nil
}

// reconcileReferencedSecrets checks the user's Secrets the instance reads and labels them so that
// the operator watches them. It returns their revision, with the credentials' (a change rolls the
// server), and the port of the external database's URL, if any.
func (r *KintoInstanceReconciler) reconcileReferencedSecrets(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, credentials string) (revision string, databasePort int32, err error) {
	versions := map[string]string{resources.CredentialsSecretName(inst): credentials}
	for _, ref := range resources.ReferencedSecrets(inst) {
		secret, problem, err := r.readSecretKey(ctx, inst.Namespace, ref.SecretKeyRef)
		if err != nil {
			return "", 0, err
		}
		if owner := secretOwner(secret); owner != "" && owner != inst.Name {
			secret, problem = nil, fmt.Sprintf("Secret %q belongs to KintoInstance %q: an instance may not read another instance's credentials", ref.Name, owner)
		}
		if err := r.watchSecret(ctx, secret); err != nil {
			return "", 0, err
		}
		if problem == "" && ref.ForDatabase {
			databasePort, problem = databaseURLPort(secret.Data[ref.Key])
		}
		if problem != "" {
			condType := v1alpha1.ConditionServerReady
			if ref.ForDatabase {
				condType = v1alpha1.ConditionDatabaseReady
			}
			setCondition(p, condType, metav1.ConditionFalse, "SecretNotReady", problem)
			return "", 0, errors.New(problem)
		}
		versions[secret.Name] = secret.ResourceVersion
	}
	return resources.SecretsRevision(versions), databasePort, nil
}

// secretsRevision identifies the state of the user's Secrets refs name (one missing included),
// which a Job's pods read: the object storage credentials of a restore, say.
func (r *KintoInstanceReconciler) secretsRevision(ctx context.Context, namespace string, refs []v1alpha1.SecretKeyRef) (string, error) {
	versions := map[string]string{}
	for _, ref := range refs {
		secret, _, err := r.readSecretKey(ctx, namespace, ref)
		if err != nil {
			return "", err
		}
		if secret != nil {
			versions[secret.Name] = secret.ResourceVersion
		}
	}
	return resources.SecretsRevision(versions), nil
}

// watchSecret labels a user's Secret an instance reads (none when nil) as soon as it exists, so
// that the operator caches and watches it: fixing it brings the instance back at once.
func (r *KintoInstanceReconciler) watchSecret(ctx context.Context, secret *corev1.Secret) error {
	if secret == nil || secret.Labels[resources.WatchedLabel] == "true" {
		return nil
	}
	// A merge patch of the label alone: it never creates the Secret, nor touches its data.
	patch := client.MergeFrom(secret.DeepCopy())
	metav1.SetMetaDataLabel(&secret.ObjectMeta, resources.WatchedLabel, "true")
	return r.Patch(ctx, secret, patch)
}

// secretOwner is the instance a Secret of the operator's belongs to, "" for the user's Secrets.
func secretOwner(secret *corev1.Secret) string {
	if secret == nil || secret.Labels[resources.ManagedByLabel] != resources.ManagedBy {
		return ""
	}
	return secret.Labels[resources.InstanceLabel]
}

// databaseURLPort is the port of a PostgreSQL URL, or what is wrong with the URL; it never quotes
// the URL, which holds a password.
func databaseURLPort(raw []byte) (int32, string) {
	u, err := url.Parse(string(raw))
	if err != nil || u.Host == "" {
		return 0, "the external database URL is not a URL of the form postgresql://user:password@host:port/database"
	}
	if u.Scheme != "postgresql" {
		return 0, fmt.Sprintf("the external database URL uses the %q scheme; Kinto takes postgresql:// only", u.Scheme)
	}
	if u.Port() == "" {
		return resources.DatabasePort, ""
	}
	port, err := strconv.ParseInt(u.Port(), 10, 32)
	if err != nil || port < 1 || port > 65535 {
		return 0, "the external database URL has an invalid port"
	}
	return int32(port), ""
}

// readSecretKey reads a Secret the user referenced (nil when there is none) and says what is
// wrong with the key, or "" when it holds a value. It never reveals the value.
func (r *KintoInstanceReconciler) readSecretKey(ctx context.Context, namespace string, ref v1alpha1.SecretKeyRef) (*corev1.Secret, string, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: namespace, Name: ref.Name}
	// The cache holds the Secret once the operator has labelled it; only the first read, or one
	// that races the label, goes to the API server.
	err := r.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, secret)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Sprintf("Secret %q not found", ref.Name), nil
	case err != nil:
		return nil, "", err
	case len(secret.Data[ref.Key]) == 0:
		return secret, fmt.Sprintf("Secret %q has no key %q", ref.Name, ref.Key), nil
	}
	return secret, "", nil
}

// holdsData says whether the instance's database may already hold data: its schema was migrated,
// or its managed volume exists.
func (r *KintoInstanceReconciler) holdsData(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) (bool, error) {
	if p.status.Version != "" {
		return true, nil
	}
	if inst.Spec.ManagedDatabase() == nil {
		return false, nil
	}
	pvc := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: resources.DataVolumeClaimName(inst)}, pvc)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
