// Package downloads is how the members' page asks the operator for the bytes of a completed
// backup: the operator holds every destination's credentials (a tenant's own bucket, a hosting
// class's shared one), so it serves the object, once the API server says the member may get
// kintobackups/download (a subresource only RBAC knows of). The page proves it is the page with
// a token of its ServiceAccount bound to Audience, useless against the API server, and names the
// member as it impersonates them.
package downloads

import "net/url"

const (
	// Audience is the audience of the page's projected ServiceAccount token, the only one the
	// operator's endpoint accepts.
	Audience = "downloads.hosting.kinto-storage.org"
	// UserHeader and GroupHeader carry the member's user name and groups (one header each),
	// prefixed, as the page impersonates them.
	UserHeader  = "Kinto-Member-User"
	GroupHeader = "Kinto-Member-Group"
	// Subresource is what RBAC grants: get on kintobackups/download.
	Subresource = "download"
)

// Path is where the operator's endpoint serves the backup name of namespace.
func Path(namespace, name string) string {
	return "/backups/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}
