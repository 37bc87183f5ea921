package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// ReconcileCredentialsBehindTheCache runs the credentials stage of a pass over inst, reading
// through c with a cache that shows no Secret yet (as for a new instance, or just after the pass
// that created the credentials), and returns the credentials revision it gives the workloads and
// how many reads it made past the cache.
func ReconcileCredentialsBehindTheCache(ctx context.Context, c client.Client, inst *v1alpha1.KintoInstance) (revision string, readsPastTheCache int, err error) {
	reader := &countingReader{Reader: c}
	r := &KintoInstanceReconciler{Client: cacheWithoutSecrets{c}, APIReader: reader}
	revision, err = r.reconcileCredentials(ctx, &pass{inst: inst, status: inst.Status.DeepCopy(), now: time.Now()}, inst)
	return revision, reader.reads, err
}

// countingReader counts the reads of one object through it.
type countingReader struct {
	client.Reader
	reads int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.reads++
	return c.Reader.Get(ctx, key, obj, opts...)
}

// cacheWithoutSecrets reads through its client, but has not seen any Secret yet.
type cacheWithoutSecrets struct{ client.Client }

func (c cacheWithoutSecrets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}
