package objectstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/minio/minio-go/v7"
)

// Upload stores the file at localPath under key, with its SHA-256 in the object's metadata, and
// returns the object as the server stored it.
//
// S3 metadata travels in the headers of the request that creates the object, before its body,
// so the file is read twice: once to compute checksum and size (streamed, in constant memory),
// then to send it. The second read goes through the file's ReaderAt, which lets minio-go send the
// parts of a large file in parallel without buffering them. A file that changes between the two
// reads is detected (its size and modification time are checked again after sending) and the
// object is deleted. Finally the stored size and checksum are read back, so a server that dropped
// the metadata fails the upload rather than every later restore.
func Upload(ctx context.Context, cfg Config, key, localPath string) (Object, error) {
	return upload(ctx, cfg, key, localPath, nil)
}

// UploadRecorded is Upload of a file whose size and SHA-256 were recorded when it was written
// (a dump's result file): a file that no longer matches them fails with ErrChecksumMismatch
// before anything is sent, so that a dump damaged where it waited never passes for a good one.
func UploadRecorded(ctx context.Context, cfg Config, key, localPath string, size int64, sum string) (Object, error) {
	return upload(ctx, cfg, key, localPath, &recording{size: size, sha256: sum})
}

// recording is the size and checksum a file had when it was written.
type recording struct {
	size   int64
	sha256 string
}

func upload(ctx context.Context, cfg Config, key, localPath string, recorded *recording) (Object, error) {
	what := fmt.Sprintf("upload of %q", key)
	client, err := newClient(cfg)
	if err != nil {
		return Object{}, err
	}
	src, err := openUpload(cfg, what, localPath, recorded)
	if err != nil {
		return Object{}, err
	}
	defer src.file.Close()
	_, err = client.PutObject(ctx, cfg.Bucket, key, src.body(), src.size, minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		UserMetadata: map[string]string{metadataSHA256: src.sum},
	})
	if err != nil {
		return Object{}, explain(cfg, what, err)
	}
	if err := checkUnchanged(src.file, src.before); err != nil {
		_ = client.RemoveObject(ctx, cfg.Bucket, key, minio.RemoveObjectOptions{})
		return Object{}, fmt.Errorf("s3 %s: %s %w; the object was deleted", what, localPath, err)
	}
	return verifyStored(ctx, client, cfg, what, key, src.sum, src.size)
}

// uploadSource is a local file about to be sent, measured first: S3 takes the size, and the
// checksum with credentials, before the body.
type uploadSource struct {
	file   *os.File
	before os.FileInfo
	size   int64
	sum    string
}

// openUpload opens localPath and measures it, refusing a file that changes while it is read or
// that no longer matches recorded (when given), before anything is sent. The caller closes
// file.
func openUpload(cfg Config, what, localPath string, recorded *recording) (src uploadSource, err error) {
	file, err := os.Open(localPath)
	if err != nil {
		return uploadSource{}, fmt.Errorf("s3 %s: %w", what, err)
	}
	defer func() {
		if err != nil {
			file.Close()
		}
	}()
	before, err := regularFileInfo(file)
	if err != nil {
		return uploadSource{}, fmt.Errorf("s3 %s: %w", what, err)
	}
	sum, size, err := dumps.Checksum(file)
	if err != nil {
		return uploadSource{}, fmt.Errorf("s3 %s: reading %s: %w", what, localPath, err)
	}
	if size != before.Size() {
		return uploadSource{}, fmt.Errorf("s3 %s: %s changed while it was read (%d bytes, then %d)", what, localPath, before.Size(), size)
	}
	if recorded != nil && (size != recorded.size || sum != recorded.sha256) {
		return uploadSource{}, newError(cfg, ErrChecksumMismatch, nil,
			"s3 %s: %s has %d bytes and sha256 %s, not the %d bytes and sha256 %s recorded when it was written: it is damaged or not the file recorded; nothing was uploaded",
			what, localPath, size, sum, recorded.size, recorded.sha256)
	}
	return uploadSource{file: file, before: before, size: size, sum: sum}, nil
}

// body reads the file from its start whatever its offset after hashing, and keeps ReadAt,
// which minio-go's parallel multipart upload needs.
func (src uploadSource) body() *io.SectionReader {
	return io.NewSectionReader(src.file, 0, src.size)
}

// regularFileInfo refuses directories and devices, whose size means nothing to an upload.
func regularFileInfo(file *os.File) (os.FileInfo, error) {
	info, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file.Name())
	}
	return info, nil
}

// checkUnchanged tells whether file still has the size and modification time of before.
func checkUnchanged(file *os.File, before os.FileInfo) error {
	after, err := file.Stat()
	if err != nil {
		return err
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return fmt.Errorf("changed during the upload (%d bytes, then %d)", before.Size(), after.Size())
	}
	return nil
}

// verifyStored reads back the object just written and checks its size and checksum metadata.
func verifyStored(ctx context.Context, client *minio.Client, cfg Config, what, key, sum string, size int64) (Object, error) {
	info, err := client.StatObject(ctx, cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, explain(cfg, what+" (reading it back)", err)
	}
	stored := objectFromInfo(info)
	if stored.Size != size || stored.SHA256 != sum {
		return Object{}, newError(cfg, ErrChecksumMismatch, nil,
			"s3 %s: the server stored %d bytes with sha256 %q, sent %d bytes with sha256 %s",
			what, stored.Size, stored.SHA256, size, sum)
	}
	return stored, nil
}

// Download writes the object key to localPath, only if its content matches the SHA-256 stored
// with it. The content goes to a temporary file beside localPath, renamed over it once verified,
// so localPath never holds a partial or corrupted dump.
func Download(ctx context.Context, cfg Config, key, localPath string) (Object, error) {
	what := fmt.Sprintf("download of %q", key)
	reader, object, err := getVerifiable(ctx, cfg, key, what)
	if err != nil {
		return Object{}, err
	}
	defer reader.Close()
	if err := writeVerified(reader, object, localPath); err != nil {
		return Object{}, explainDownload(cfg, what, err)
	}
	return object, nil
}

// Stream writes the object key to w, checking its content against the SHA-256 stored with it as
// it flows. started gets the object (size, checksum) before the first byte, so that a caller can
// announce it, or refuse it by returning an error. w gets the object's last byte only once the
// whole has been verified: a caller that cannot take back what it wrote (an HTTP response of a
// announced length) aborts on a mismatch, and its client, short of a byte, sees a failure.
func Stream(ctx context.Context, cfg Config, key string, w io.Writer, started func(Object) error) (Object, error) {
	what := fmt.Sprintf("read of %q", key)
	reader, object, err := getVerifiable(ctx, cfg, key, what)
	if err != nil {
		return Object{}, err
	}
	defer reader.Close()
	if err := started(object); err != nil {
		return object, err
	}
	if err := CopyVerified(w, reader, object); err != nil {
		return object, explainDownload(cfg, what, err)
	}
	return object, nil
}

// CopyVerified copies r, the content of object, to w, holding its last byte back until the
// size and SHA-256 read match object's: a reader of w that sees the copy end early knows it
// is not the object.
func CopyVerified(w io.Writer, r io.Reader, object Object) error {
	h := sha256.New()
	held := &lastByteHeld{w: w}
	n, err := io.Copy(io.MultiWriter(held, h), r)
	if err == nil {
		err = checkContent(object, n, h)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(held.last)
	return err
}

// getVerifiable opens the object key for reading, with the size and SHA-256 its content must
// have: an object the backup tool did not upload carries no checksum, and is refused.
func getVerifiable(ctx context.Context, cfg Config, key, what string) (*minio.Object, Object, error) {
	client, err := newClient(cfg)
	if err != nil {
		return nil, Object{}, err
	}
	reader, err := client.GetObject(ctx, cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Object{}, explain(cfg, what, err)
	}
	// Stat sends the GET: the metadata comes from the very response whose body is read.
	info, err := reader.Stat()
	if err != nil {
		reader.Close()
		return nil, Object{}, explain(cfg, what, err)
	}
	object := objectFromInfo(info)
	if object.SHA256 == "" {
		reader.Close()
		return nil, Object{}, newError(cfg, ErrChecksumMismatch, nil,
			"s3 %s: the object has no sha256 metadata, so its content cannot be verified; it was not uploaded by the backup tool", what)
	}
	return reader, object, nil
}

// lastByteHeld passes on to w everything written to it but the last byte so far.
type lastByteHeld struct {
	w    io.Writer
	last []byte
}

func (l *lastByteHeld) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(l.last) != 0 {
		if _, err := l.w.Write(l.last); err != nil {
			return 0, err
		}
	}
	if _, err := l.w.Write(p[:len(p)-1]); err != nil {
		return 0, err
	}
	l.last = append(l.last[:0], p[len(p)-1])
	return len(p), nil
}

// writeVerified copies r into localPath, checking size and checksum against object before the
// file takes that name.
func writeVerified(r io.Reader, object Object, localPath string) error {
	return dumps.WriteAtomically(localPath, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), r)
		if err != nil {
			return err
		}
		return checkContent(object, n, h)
	})
}

// checkContent compares what was read with what the object's metadata promises.
func checkContent(object Object, n int64, h hash.Hash) error {
	got := hex.EncodeToString(h.Sum(nil))
	if n != object.Size || got != object.SHA256 {
		return &storeError{
			msg: fmt.Sprintf("the content read (%d bytes, sha256 %s) does not match the object (%d bytes, sha256 %s): the stored object is corrupted",
				n, got, object.Size, object.SHA256),
			kind: ErrChecksumMismatch,
		}
	}
	return nil
}

// explainDownload prefixes a local or checksum failure with the operation, and explains an S3
// failure met while reading the body.
func explainDownload(cfg Config, what string, err error) error {
	var se *storeError
	if errors.As(err, &se) {
		return &storeError{msg: "s3 " + what + ": " + se.msg, kind: se.kind, cause: se.cause}
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return fmt.Errorf("s3 %s: %w", what, err)
	}
	return explain(cfg, what, err)
}

// Stat returns the object key with its size, checksum and modification time.
func Stat(ctx context.Context, cfg Config, key string) (Object, error) {
	client, err := newClient(cfg)
	if err != nil {
		return Object{}, err
	}
	info, err := client.StatObject(ctx, cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, explain(cfg, fmt.Sprintf("stat of %q", key), err)
	}
	return objectFromInfo(info), nil
}

// ReadHead returns the first n bytes of the object key (fewer when it is shorter): enough to
// tell what it holds without reading it all.
func ReadHead(ctx context.Context, cfg Config, key string, n int64) ([]byte, error) {
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("read of the head of %q", key)
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(0, n-1); err != nil {
		return nil, err
	}
	reader, err := client.GetObject(ctx, cfg.Bucket, key, opts)
	if err != nil {
		return nil, explain(cfg, what, err)
	}
	defer reader.Close()
	head, err := io.ReadAll(io.LimitReader(reader, n))
	if err != nil {
		return nil, explain(cfg, what, err)
	}
	return head, nil
}

// List returns the objects under cfg.Prefix, at any depth, sorted by key (for backup keys, by
// time). Their SHA256 is empty: listings carry no metadata.
func List(ctx context.Context, cfg Config) ([]Object, error) {
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	prefix := folder(cfg.Prefix)
	what := fmt.Sprintf("listing of %q", cfg.Bucket+"/"+prefix)
	var objects []Object
	for info := range client.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if info.Err != nil {
			return nil, explain(cfg, what, info.Err)
		}
		objects = append(objects, Object{Key: info.Key, Size: info.Size, LastModified: info.LastModified})
	}
	if err := ctx.Err(); err != nil {
		// minio-go closes the channel quietly when the context ends; a partial listing must not
		// pass for a complete one.
		return nil, explain(cfg, what, err)
	}
	slices.SortFunc(objects, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return objects, nil
}

// folder reads prefix as a folder name: "kinto/lug" lists "kinto/lug/..." and not
// "kinto/lug-shared/...".
func folder(prefix string) string {
	prefix = strings.TrimLeft(prefix, "/")
	if prefix == "" || strings.HasSuffix(prefix, "/") {
		return prefix
	}
	return prefix + "/"
}

// Delete removes the objects keys, in order, stopping at the first failure. Deleting an object
// that does not exist succeeds, as in S3, so a deletion that was interrupted can run again.
func Delete(ctx context.Context, cfg Config, keys ...string) error {
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if err := client.RemoveObject(ctx, cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
			return explain(cfg, fmt.Sprintf("deletion of %q", key), err)
		}
	}
	return nil
}

// objectFromInfo keeps what an Object says of minio-go's description.
func objectFromInfo(info minio.ObjectInfo) Object {
	return Object{
		Key:          info.Key,
		Size:         info.Size,
		SHA256:       userMetadata(info, metadataSHA256),
		LastModified: info.LastModified,
	}
}

// userMetadata finds a user metadata value whatever the case the server gave its name in
// (headers are case-insensitive; minio-go returns them canonicalized, as "Sha256").
func userMetadata(info minio.ObjectInfo, name string) string {
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
