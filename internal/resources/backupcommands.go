package resources

import (
	"fmt"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

// The command lines of `manager backup` (internal/backup/backuptool) that the backup, restore and dump
// deletion Jobs run in the operator's image. Its subcommands, flags and environment are named
// here only.

// managerBinary is the operator's binary in its image.
const managerBinary = "/manager"

func backupToolCommand(subcommand string, flags ...string) []string {
	return append([]string{managerBinary, "backup", subcommand}, flags...)
}

// uploadCommand uploads the dump the dump step wrote in dir to the instance's folder of the
// bucket, and reports it in the termination message.
func uploadCommand(dir, instance string) []string {
	return backupToolCommand("upload", "--dump-dir", dir, "--instance", instance,
		"--termination-log", corev1.TerminationMessagePathDefault)
}

// storeInVolumeCommand stores the dump the dump step wrote in dir, sealed, in the backup volume
// mounted at volumeDir, and reports it in the termination message.
func storeInVolumeCommand(dir, volumeDir string) []string {
	return backupToolCommand("upload", "--dump-dir", dir, "--to-dir", volumeDir,
		"--termination-log", corev1.TerminationMessagePathDefault)
}

// openFromVolumeCommand opens the sealed dump name of the backup volume mounted at volumeDir,
// checked against sum, into file, with its result beside it (the private key: the step's
// environment).
func openFromVolumeCommand(volumeDir, name, file, sum string) []string {
	cmd := backupToolCommand("download", "--dir", volumeDir, "--key", name, "--file", file)
	if sum != "" {
		cmd = append(cmd, "--sha256", sum)
	}
	return cmd
}

// uploadPresignedCommand uploads the dump the dump step wrote in dir through the URL pre-signed
// for key, and reports it in the termination message.
func uploadPresignedCommand(dir, key string) []string {
	return backupToolCommand("upload", "--dump-dir", dir, "--key", key,
		"--termination-log", corev1.TerminationMessagePathDefault)
}

// downloadPresignedCommand fetches the dump of key through the URL pre-signed for it, checked
// against sum (unset: the checksum stored with it), as downloadCommand does.
func downloadPresignedCommand(key, file, sum string) []string {
	cmd := downloadCommand(key, file)
	if sum != "" {
		cmd = append(cmd, "--sha256", sum)
	}
	return cmd
}

// downloadCommand fetches the dump of key to file, verified, with its checksum beside it in
// file.json, where `manager db restore` looks for it.
func downloadCommand(key, file string) []string {
	return backupToolCommand("download", "--key", key, "--file", file)
}

// deleteObjectCommand deletes the dump of key from the bucket.
func deleteObjectCommand(key string) []string {
	return backupToolCommand("delete", "--key", key)
}

// deleteFileCommand deletes the dump named file, and its result file, from the volume mounted
// at dir.
func deleteFileCommand(dir, file string) []string {
	return backupToolCommand("delete", "--dir", dir, "--file", file)
}

// findDumpCommand prints the result of the one recorded dump started between from and to,
// except the dumps named (other backups'), in the volume mounted at dir or, when dir is empty,
// in the instance's folder of the bucket, and reports it in the termination message.
func findDumpCommand(dir, instance string, from, to time.Time, except []string) []string {
	where := []string{"--instance", instance}
	if dir != "" {
		where = []string{"--dir", dir}
	}
	flags := append(where, "--after", from.UTC().Format(time.RFC3339), "--before", to.UTC().Format(time.RFC3339))
	if len(except) > 0 {
		flags = append(flags, "--except", strings.Join(except, ","))
	}
	return backupToolCommand("find", append(flags, "--termination-log", corev1.TerminationMessagePathDefault)...)
}

// portableExportCommand reads the instance through its API into the dump directory
// (internal/portable), writing the files and result `manager db dump` writes.
func portableExportCommand() []string {
	return []string{managerBinary, "portable", "export"}
}

// portableImportCommand loads $DUMP_FILE into the server $PORTABLE_URL names.
func portableImportCommand() []string {
	return []string{managerBinary, "portable", "import"}
}

// portableExportEnv points the export at the instance's own Service, as creds: the user as it
// is, the password or token from its Secret.
func portableExportEnv(inst *v1alpha1.KintoInstance, creds *v1alpha1.KintoCredentials) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: backupenv.DumpDir, Value: dumpDir},
		// The Service inside the cluster, never the public host: the export stays off the ingress.
		{Name: backupenv.PortableURL, Value: fmt.Sprintf("http://%s.%s.svc/v1", ServerName(inst), inst.Namespace)},
	}
	switch {
	case creds == nil:
	case creds.BearerToken != nil:
		env = append(env, secretEnv(backupenv.PortableBearerToken, creds.BearerToken.Name, creds.BearerToken.Key))
	case creds.Password != nil:
		env = append(env, corev1.EnvVar{Name: backupenv.PortableUser, Value: creds.User},
			secretEnv(backupenv.PortablePassword, creds.Password.Name, creds.Password.Key))
	}
	return env
}

// objectStorageEnv tells backuptool the bucket of conn, with prefix the folder of an
// instance's backups ("" where a full key is given), and the credentials, each from its Secret:
// never a literal value, which anyone who can read the pod spec would see.
func objectStorageEnv(conn *v1alpha1.S3Connection, prefix string) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: backupenv.Endpoint, Value: conn.Endpoint},
		{Name: backupenv.Bucket, Value: conn.Bucket},
	}
	if prefix != "" {
		env = append(env, corev1.EnvVar{Name: backupenv.Prefix, Value: prefix})
	}
	if conn.Region != "" {
		env = append(env, corev1.EnvVar{Name: backupenv.Region, Value: conn.Region})
	}
	if conn.Insecure {
		env = append(env, corev1.EnvVar{Name: backupenv.Insecure, Value: "true"})
	}
	if conn.CABundle != nil {
		env = append(env, corev1.EnvVar{Name: backupenv.CAFile, Value: path.Join(caBundleDir, caBundleFile)})
	}
	return append(env,
		secretEnv(backupenv.AccessKeyID, conn.Credentials.AccessKeyID.Name, conn.Credentials.AccessKeyID.Key),
		secretEnv(backupenv.SecretAccessKey, conn.Credentials.SecretAccessKey.Name, conn.Credentials.SecretAccessKey.Key),
	)
}
