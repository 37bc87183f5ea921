package resources

import (
	"slices"
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
//
// The migration runs under releaseGuardScript, which records in the database the release that
// migrated it and refuses to migrate, or run, an older release on it: the record outlives the
// instance's status (an instance re-created over a kept volume, or an external database) and
// travels in its dumps (a restore).
func MigrateJob(inst *v1alpha1.KintoInstance, version string) *batchv1.Job {
	pod := kintoPodSpec(inst, version, slices.Concat([]string{"python", "-c", releaseGuardScript}, MigrateCommand()))
	pod.RestartPolicy = corev1.RestartPolicyNever
	c := &pod.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: EnvRelease, Value: version})
	if forced := inst.Annotations[v1alpha1.ForceDowngradeAnnotation]; forced == version {
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvForceDowngrade, Value: forced})
	}
	labels := Labels(inst, ComponentMigrate)
	labels[VersionLabel] = version
	meta := objectMeta(inst, MigrateJobName(inst, version), ComponentMigrate)
	meta.Labels = labels
	spec := jobSpec(labels, pod, 6, 30*time.Minute)
	// A refusal (exit code refusalExitCode) stays a refusal: no retry.
	spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action:      batchv1.PodFailurePolicyActionFailJob,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{refusalExitCode}},
	}}}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec:       spec,
	}
}

// refusalExitCode is how the scripts of the migration Job say they refuse the database (and
// write why to the termination log).
const refusalExitCode = 3

// MigrateContainer runs the migration under releaseGuardScript.
const MigrateContainer = "kinto"

// The environment of releaseGuardScript: the release migrating (EnvRelease, the one variable in
// which the migration Jobs of two releases differ), and the annotation forcing a downgrade to it,
// when it does.
const (
	EnvRelease        = "KINTO_OPERATOR_RELEASE"
	EnvForceDowngrade = "KINTO_OPERATOR_FORCE_DOWNGRADE"
)

// NewerSchemaMessage begins the message of releaseGuardScript when it refuses a database
// migrated by a newer release.
const NewerSchemaMessage = "the database was last migrated by Kinto"

// ReleaseTable is the table of the instance's database recording the release that last
// migrated it (one row): the operator's, beside Kinto's tables, so that dumps hold it too.
const ReleaseTable = "kinto_operator_release"

// pythonEngine opens, in Kinto's image, an SQLAlchemy engine on Kinto's storage URL with the
// driver Kinto picks for a postgresql:// URL.
const pythonEngine = `import os, sys
import sqlalchemy
from kinto.core.storage.postgresql.client import PostgreSQLClient
url = sqlalchemy.engine.make_url(os.environ["KINTO_STORAGE_URL"])
if url.drivername == "postgresql":
    url = url.set(drivername="postgresql+" + PostgreSQLClient.DEFAULT_DRIVER)
engine = sqlalchemy.create_engine(url)

def refuse(msg):
    print(msg, file=sys.stderr)
    try:
        with open("/dev/termination-log", "w") as f:
            f.write(msg)
    except OSError:
        pass
    sys.exit(3)  # refusalExitCode
`

// releaseGuardScript runs its arguments (` + "`kinto migrate ...`" + `) unless the database records a
// newer release than EnvRelease (and no forced downgrade to it), then records EnvRelease, unless
// the record is newer (a forced downgrade leaves the schema as the newer release made it).
const releaseGuardScript = pythonEngine + `import re, subprocess
release = os.environ["` + EnvRelease + `"]
def order(v):
    return tuple(int(n) for n in re.findall(r"[0-9]+", v)[:3])
with engine.connect() as c:
    last = None
    if c.execute(sqlalchemy.text("SELECT to_regclass('` + ReleaseTable + `') IS NOT NULL")).scalar():
        last = c.execute(sqlalchemy.text("SELECT version FROM ` + ReleaseTable + `")).scalar()
if last and order(last) > order(release) and os.environ.get("` + EnvForceDowngrade + `") != release:
    refuse("` + NewerSchemaMessage + ` %s, newer than %s: Kinto's migrations only go forward, and an older server on a newer schema may lose data" % (last, release))
code = subprocess.call(sys.argv[1:])
if code:
    sys.exit(code)
if not last or order(release) >= order(last):
    with engine.begin() as c:
        c.execute(sqlalchemy.text("CREATE TABLE IF NOT EXISTS ` + ReleaseTable + ` ("
            "one boolean PRIMARY KEY DEFAULT true CHECK (one), version text NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())"))
        c.execute(sqlalchemy.text("INSERT INTO ` + ReleaseTable + ` (version) VALUES (:v) "
            "ON CONFLICT (one) DO UPDATE SET version = excluded.version, migrated_at = now()"), {"v": release})
    print("the database records its migration by Kinto %s" % release)
`

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
const hmacCheckScript = pythonEngine + `if not os.environ.get("` + envHMACSecretsDrawn + `"):
    sys.exit(0)
with engine.connect() as c:
    held = c.execute(sqlalchemy.text("SELECT to_regclass('metadata') IS NOT NULL")).scalar() and \
        c.execute(sqlalchemy.text("SELECT count(*) FROM metadata WHERE name = 'storage_schema_version'")).scalar() > 0
if held:
    refuse("` + HMACSecretsLostMessage + `, but the credentials Secret's HMAC secrets were drawn anew for this instance: "
           "its users' ids derive from the secrets it was created with. Bring the Secret holding them back")
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
