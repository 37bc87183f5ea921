package portal

import (
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// kubeClients makes a client per member that impersonates them over the page's one connection
// to the API server.
type kubeClients struct {
	config *rest.Config
	base   http.RoundTripper
	scheme *runtime.Scheme
	mapper meta.RESTMapper
}

func newKubeClients(config *rest.Config) (*kubeClients, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	base, err := rest.TransportFor(config)
	if err != nil {
		return nil, err
	}
	// A fixed mapping of the few kinds the page reads: discovering them would be one more
	// request per member, for kinds known at build time.
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(v1alpha1.GroupVersion.WithKind("KintoInstance"), meta.RESTScopeNamespace)
	mapper.Add(v1alpha1.GroupVersion.WithKind("KintoBackup"), meta.RESTScopeNamespace)
	mapper.Add(v1alpha1.GroupVersion.WithKind("KintoHostingClass"), meta.RESTScopeRoot)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	return &kubeClients{config: config, base: base, scheme: scheme, mapper: mapper}, nil
}

// as is a client whose every request is made as user with groups: the API server checks the
// page may impersonate them, then authorizes the request as theirs.
func (k *kubeClients) as(user string, groups []string) (client.Client, error) {
	rt := transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{UserName: user, Groups: groups}, k.base)
	return client.New(k.config, client.Options{HTTPClient: &http.Client{Transport: rt}, Scheme: k.scheme, Mapper: k.mapper})
}
