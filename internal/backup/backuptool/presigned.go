package backuptool

import (
	"context"
	"os"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
)

// presignedObject is the object key reached through the URL the operator pre-signed for this
// step (backupenv.PresignedURL), false when the step was given none and reaches the bucket with
// credentials. The URL alone decides which object is reached; key names it in the results.
func presignedObject(key string) (objectstore.Presigned, bool) {
	u := os.Getenv(backupenv.PresignedURL)
	if u == "" {
		return objectstore.Presigned{}, false
	}
	p := objectstore.Presigned{URL: u, Key: key}
	if pem := os.Getenv(backupenv.PresignedCABundle); pem != "" {
		p.CABundle = []byte(pem)
	}
	return p, true
}

// uploadDumpPresigned uploads the dump `manager db dump` wrote into dir through the pre-signed
// URL of p, under the key the operator chose when it signed it.
func uploadDumpPresigned(ctx context.Context, p objectstore.Presigned, dir string) (dumps.Result, error) {
	name, path, recorded, err := finishedDump(dir)
	if err != nil {
		return dumps.Result{}, err
	}
	send, result, done, err := sendable(path, recorded)
	if err != nil {
		return dumps.Result{}, err
	}
	defer done()
	uploaded, err := p.UploadRecorded(ctx, send, result.Size, result.SHA256)
	if err != nil {
		return dumps.Result{}, err
	}
	result.File, result.Size, result.SHA256, result.Key = name, uploaded.Size, uploaded.SHA256, uploaded.Key
	return result, nil
}
