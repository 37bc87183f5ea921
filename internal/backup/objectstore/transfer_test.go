package objectstore_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
)

// CopyVerified passes an intact content on whole, and holds back the last byte of one that does
// not match, so that the reader sees it cut short.
func TestCopyVerified(t *testing.T) {
	content := bytes.Repeat([]byte("kinto "), 1000)
	sum := sha256.Sum256(content)
	object := objectstore.Object{Key: "20261126T030000Z.dump", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
	altered := bytes.Clone(content)
	altered[len(altered)-1] = '!'
	for _, tc := range []struct {
		name    string
		read    []byte
		wantErr bool
	}{
		{"intact", content, false},
		{"truncated", content[:len(content)-10], true},
		{"longer", append(bytes.Clone(content), 'x'), true},
		{"altered in its last byte", altered, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			err := objectstore.CopyVerified(&got, bytes.NewReader(tc.read), object)
			switch {
			case !tc.wantErr && (err != nil || !bytes.Equal(got.Bytes(), content)):
				t.Errorf("CopyVerified: %v, %d bytes of %d", err, got.Len(), len(content))
			case tc.wantErr && (!errors.Is(err, objectstore.ErrChecksumMismatch) || got.Len() != len(tc.read)-1):
				t.Errorf("CopyVerified: %v, %d bytes written of %d read; want ErrChecksumMismatch and the last byte held back", err, got.Len(), len(tc.read))
			}
		})
	}
}
