// The HMAC secrets of an instance on an external database: new ones are never put to work on a
// database that already holds Kinto's schema.

package controllers

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// reasonHMACSecretsLost is SchemaMigrated's reason while the first migration refuses a database
// that holds Kinto's schema, the HMAC secrets having been drawn anew.
const reasonHMACSecretsLost = "HMACSecretsLost"

// holdForHMACSecrets reports a failed first migration whose HMAC check refused the database,
// and says whether it did. Once the credentials Secret no longer says its HMAC secrets were
// drawn (the user brought the instance's own back), the refused Job is deleted: the next pass
// runs the migration again.
func (r *KintoInstanceReconciler) holdForHMACSecrets(ctx context.Context, p *pass, job *batchv1.Job) (bool, error) {
	pods, err := jobPods(ctx, r.Client, job)
	if err != nil {
		return false, err
	}
	refused := false
	for i := range pods {
		if t := terminated(&pods[i], resources.HMACCheckContainer); t != nil && t.ExitCode != 0 {
			refused = true
		}
	}
	if !refused {
		return false, nil
	}
	if !p.hmacSecretsDrawn {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating",
			fmt.Sprintf("the credentials Secret holds the instance's HMAC secrets again: Job %s runs the migration again", job.Name))
		return true, r.deleteIfExists(ctx, job)
	}
	setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, reasonHMACSecretsLost, fmt.Sprintf(
		"%s, but the HMAC secrets of Secret %s were drawn anew for this instance: every user id derives from them, so the server does not start on it. "+
			"Bring back the Secret holding the instance's own HMAC secrets (see \"Recovering the HMAC secrets\" in the operator's README); the migration then runs again",
		resources.HMACSecretsLostMessage, resources.CredentialsSecretName(p.inst)))
	return true, nil
}
