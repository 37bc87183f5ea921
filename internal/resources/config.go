package resources

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
)

// ConfigFileName is the key of the rendered ini in the ConfigMap, and its file name in the pod.
const ConfigFileName = "kinto.ini"

// ConfigDir is where the rendered configuration is mounted, the official image's KINTO_INI dir.
const ConfigDir = "/etc/kinto"

// ConfigMap returns the ConfigMap holding the rendered kinto.ini, and the hash of its content
// that the server's pod template carries.
func ConfigMap(inst *v1alpha1.KintoInstance) (*corev1.ConfigMap, string, error) {
	ini, err := kintoconfig.Render(inst)
	if err != nil {
		return nil, "", err
	}
	reader, err := kintoconfig.RenderReader(inst)
	if err != nil {
		return nil, "", err
	}
	data := map[string]string{ConfigFileName: ini, ReaderConfigFileName: reader}
	// The ini of the import and of the reader are no part of the hash: the server does not
	// read them.
	if b := inst.Spec.Bootstrap; b != nil && b.FromPortable != nil {
		if data[ImportConfigFileName], err = kintoconfig.RenderImport(inst); err != nil {
			return nil, "", err
		}
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(inst, ConfigMapName(inst), ComponentServer),
		Data:       data,
	}, shortHash([]byte(ini), 32), nil
}
