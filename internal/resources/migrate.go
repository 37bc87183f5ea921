package resources

import (
	"time"

	"k8s.io/utils/ptr"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// MigrateJob returns the Job that runs `kinto migrate` once for a release, before any server pod
// runs it. Kinto's migrator takes no lock, so exactly one such Job exists per release, and its
// retries (while the database starts) run one at a time.
func MigrateJob(inst *v1alpha1.KintoInstance, version string) *batchv1.Job {
	pod := kintoPodSpec(inst, version, MigrateCommand())
	pod.RestartPolicy = corev1.RestartPolicyNever
	labels := Labels(inst, ComponentMigrate)
	labels[VersionLabel] = version
	meta := objectMeta(inst, MigrateJobName(inst, version), ComponentMigrate)
	meta.Labels = labels
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec:       jobSpec(labels, pod, 6, 30*time.Minute),
	}
}

// HMACCheckContainer is the init container of an external database's first migration that
// refuses a database already holding Kinto's schema while the HMAC secrets were drawn by the
// operator (SecretKeyHMACSecretsDrawn): the ids of that database's users derive from other
// secrets, which serving it with these would change.
const HMACCheckContainer = "check-hmac-secrets"

// envHMACSecretsDrawn says to the check that the HMAC secrets were drawn by the operator.
const envHMACSecretsDrawn = "KINTO_OPERATOR_HMAC_SECRETS_DRAWN"

// HMACSecretsLostMessage begins the check's message when it refuses a database.
const HMACSecretsLostMessage = "the external database already holds Kinto's schema"

// hmacCheckScript runs in Kinto's image, with its SQLAlchemy and the driver Kinto picks for a
// postgresql:// URL: it reads its inputs from the environment only, and writes its refusal to
// the termination log.
const hmacCheckScript = `import os, sys
if not os.environ.get("` + envHMACSecretsDrawn + `"):
    sys.exit(0)
import sqlalchemy
from kinto.core.storage.postgresql.client import PostgreSQLClient
url = sqlalchemy.engine.make_url(os.environ["KINTO_STORAGE_URL"])
if url.drivername == "postgresql":
    url = url.set(drivername="postgresql+" + PostgreSQLClient.DEFAULT_DRIVER)
with sqlalchemy.create_engine(url).connect() as c:
    held = c.execute(sqlalchemy.text("SELECT to_regclass('metadata') IS NOT NULL")).scalar() and \
        c.execute(sqlalchemy.text("SELECT count(*) FROM metadata WHERE name = 'storage_schema_version'")).scalar() > 0
if held:
    msg = ("` + HMACSecretsLostMessage + `, but the credentials Secret's HMAC secrets were drawn anew for this instance: "
           "its users' ids derive from the secrets it was created with. Bring the Secret holding them back")
    print(msg, file=sys.stderr)
    try:
        with open("/dev/termination-log", "w") as f:
            f.write(msg)
    except OSError:
        pass
    sys.exit(3)
`

// GuardHMACSecrets adds HMACCheckContainer to job, the first migration of an instance on an
// external database.
func GuardHMACSecrets(inst *v1alpha1.KintoInstance, job *batchv1.Job) {
	pod := &job.Spec.Template.Spec
	c := pod.Containers[0].DeepCopy()
	c.Name = HMACCheckContainer
	c.Command = []string{"python", "-c", hmacCheckScript}
	c.Env = append(c.Env, corev1.EnvVar{Name: envHMACSecretsDrawn, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: CredentialsSecretName(inst)},
			Key:                  SecretKeyHMACSecretsDrawn,
			Optional:             ptr.To(true),
		},
	}})
	pod.InitContainers = append(pod.InitContainers, *c)
}
