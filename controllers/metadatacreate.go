package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// metadataAnswer asks the API server to answer with the object's metadata only.
const metadataAnswer = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"

// creatingClient is the operator's client: a child it creates (createChild) is answered with
// its metadata only. The rest of the answer, the object as sent with the API server's defaults
// and an empty status, is what a pass never reads of a child it just created, and encoding and
// decoding it was a good part of a fleet's provisioning: about a tenth of the operator's CPU
// and of the API server's, beside a plain client's creates.
type creatingClient struct {
	client.Client
	config     *rest.Config
	httpClient *http.Client
	codecs     serializer.CodecFactory
	// restClients holds a REST client by GroupVersionKind.
	restClients sync.Map
}

// metadataCreator is a client that creates an object and reads back only its metadata.
type metadataCreator interface {
	createForMetadata(ctx context.Context, obj client.Object) error
}

// newCreatingClient wraps c, the manager's client, which talks to the API server of config.
func newCreatingClient(c client.Client, config *rest.Config, httpClient *http.Client) *creatingClient {
	return &creatingClient{Client: c, config: config, httpClient: httpClient, codecs: serializer.NewCodecFactory(c.Scheme())}
}

// createForMetadata creates obj, as the operator's field manager, and sets its metadata to the
// API server's: its UID, version and creation time among them. The rest of obj stays as sent.
// A failure is the API server's error, as Create returns it.
func (c *creatingClient) createForMetadata(ctx context.Context, obj client.Object) error {
	objectMeta, ok := obj.(metav1.ObjectMetaAccessor)
	if !ok {
		return fmt.Errorf("%T has no object metadata", obj)
	}
	gvk, err := c.GroupVersionKindFor(obj)
	if err != nil {
		return err
	}
	mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	rc, err := c.restClient(gvk)
	if err != nil {
		return err
	}
	result := rc.Post().
		NamespaceIfScoped(obj.GetNamespace(), mapping.Scope.Name() == meta.RESTScopeNameNamespace).
		Resource(mapping.Resource.Resource).
		Param("fieldManager", string(FieldOwner)).
		SetHeader("Accept", metadataAnswer).
		Body(obj).
		Do(ctx)
	// Error, not Raw's: the API server's Status, with its reason and message.
	if err := result.Error(); err != nil {
		return err
	}
	raw, err := result.Raw()
	if err != nil {
		return err
	}
	var answer metav1.PartialObjectMetadata
	if err := json.Unmarshal(raw, &answer); err != nil {
		return fmt.Errorf("reading the API server's answer to the create of %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	if answer.UID == "" {
		return fmt.Errorf("the API server answered the create of %s %s without its metadata", gvk.Kind, obj.GetName())
	}
	current, ok := objectMeta.GetObjectMeta().(*metav1.ObjectMeta)
	if !ok {
		return fmt.Errorf("%T has no object metadata", obj)
	}
	*current = answer.ObjectMeta
	return nil
}

// restClient is the REST client for objects of gvk, made once, typed (protobuf for built-in
// kinds) as the manager's client sends them.
func (c *creatingClient) restClient(gvk schema.GroupVersionKind) (rest.Interface, error) {
	if rc, ok := c.restClients.Load(gvk); ok {
		return rc.(rest.Interface), nil
	}
	rc, err := apiutil.RESTClientForGVK(gvk, false, false, c.config, c.codecs, c.httpClient)
	if err != nil {
		return nil, err
	}
	c.restClients.Store(gvk, rc)
	return rc, nil
}
