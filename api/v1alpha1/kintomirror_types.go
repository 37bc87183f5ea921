package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KintoMirrorSpec says which two Kinto servers a mirror keeps in step, in which direction, and
// when.
// +kubebuilder:validation:XValidation:rule="!has(self.remote.instance) || self.remote.instance != self.local.instance",message="must name another instance than spec.local.instance",fieldPath=".remote.instance"
type KintoMirrorSpec struct {
	// Local is the KintoInstance of this namespace the mirror copies from (Push) or to (Pull).
	Local MirrorLocal `json:"local"`

	// Remote is the other server: another KintoInstance of this namespace, or any Kinto server
	// by URL.
	Remote MirrorRemote `json:"remote"`

	// Direction is Push (what changed on the local instance is copied to the remote) or Pull
	// (what changed on the remote is copied to the local instance).
	// +kubebuilder:default=Push
	// +optional
	Direction MirrorDirection `json:"direction,omitempty"`

	// Buckets are the ids of the buckets mirrored; empty, every bucket the source's identity
	// reads.
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +optional
	Buckets []KintoObjectID `json:"buckets,omitempty"`

	// Schedule of the syncs, in the cron format of spec.backup.schedule of a KintoInstance
	// (UTC). Each sync copies what changed since the last one.
	// +kubebuilder:default="0 * * * *"
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\*|[1-5]?[0-9](-[1-5]?[0-9])?)(/[1-9][0-9]?)?(,(\*|[1-5]?[0-9](-[1-5]?[0-9])?)(/[1-9][0-9]?)?)* +(\*|(1?[0-9]|2[0-3])(-(1?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?(,(\*|(1?[0-9]|2[0-3])(-(1?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?)* +(\*|\?|([1-9]|[12][0-9]|3[01])(-([1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?(,(\*|\?|([1-9]|[12][0-9]|3[01])(-([1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?)* +(\*|([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]?)?(,(\*|([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]?)?)* +(\*|\?|([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]?)?(,(\*|\?|([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]?)?)*)$`
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// Suspend stops the syncs until it is unset; a sync already running completes.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// KintoObjectID is the id of a Kinto bucket.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`
type KintoObjectID string

// MirrorDirection is which way a mirror copies.
// +kubebuilder:validation:Enum=Push;Pull
type MirrorDirection string

const (
	// MirrorPush copies the local instance to the remote.
	MirrorPush MirrorDirection = "Push"
	// MirrorPull copies the remote to the local instance.
	MirrorPull MirrorDirection = "Pull"
)

// MirrorLocal is the mirror's instance of this namespace.
type MirrorLocal struct {
	// Instance is the name of a KintoInstance of this namespace (never of another one).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Instance string `json:"instance"`

	// Credentials are the identity the mirror reads (Push) or writes (Pull) the instance as.
	Credentials KintoCredentials `json:"credentials"`
}

// MirrorRemote is the other server of a mirror: an instance of the namespace, or a URL.
// +kubebuilder:validation:XValidation:rule="has(self.instance) != has(self.url)",message="give instance or url, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.insecure) || !self.insecure || has(self.url)",message="insecure goes with url only: an instance of the namespace is reached inside the cluster",fieldPath=".insecure"
// +kubebuilder:validation:XValidation:rule="!has(self.url) || self.url.startsWith('https://') || (has(self.insecure) && self.insecure && self.url.startsWith('http://'))",message="must be an https:// URL (http:// only with insecure: true)",fieldPath=".url"
type MirrorRemote struct {
	// Instance is the name of another KintoInstance of this namespace (never of another one).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Instance string `json:"instance,omitempty"`

	// URL of the Kinto server's API, such as https://kinto.example.org/v1: https, reached
	// outside the cluster only (its pods' and Services' addresses are refused by the mirror's
	// network policy).
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[-A-Za-z0-9._~%/]*)?$`
	// +optional
	URL string `json:"url,omitempty"`

	// Insecure lets url be plain http: only for a server on a trusted network.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// Credentials are the identity the mirror writes (Push) or reads (Pull) the remote as.
	Credentials KintoCredentials `json:"credentials"`
}

// MaxMirrorConflicts bounds the conflicting paths a status lists; conflictCount counts them all.
const MaxMirrorConflicts = 20

// KintoMirrorStatus is what the last sync did.
type KintoMirrorStatus struct {
	// ObservedGeneration is the generation of the spec this status is of.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// LastSyncTime is when the last sync finished, successfully or not.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// LastSyncResult is Succeeded or Failed.
	// +kubebuilder:validation:Enum=Succeeded;Failed
	// +optional
	LastSyncResult string `json:"lastSyncResult,omitempty"`

	// LastSyncJob is the Job of the last sync reported.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	LastSyncJob string `json:"lastSyncJob,omitempty"`

	// Copied and Deleted count the objects the last sync wrote to, and deleted from, the target.
	// +optional
	Copied int64 `json:"copied,omitempty"`
	// +optional
	Deleted int64 `json:"deleted,omitempty"`

	// ConflictCount counts the objects the last sync found changed on both sides since the sync
	// before: each left as it is on the target, never overwritten.
	// +optional
	ConflictCount int64 `json:"conflictCount,omitempty"`

	// Conflicts are the paths of the first of them.
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=1024
	// +optional
	Conflicts []string `json:"conflicts,omitempty"`

	// Conditions: Ready says whether the mirror is set up and its last sync succeeded.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// KintoMirror keeps a copy of one Kinto server's data on another, on a schedule, incrementally:
// a KintoInstance of its namespace and another one, or any Kinto server by URL.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=kinto-hosting
// +kubebuilder:printcolumn:name="Local",type=string,JSONPath=`.spec.local.instance`
// +kubebuilder:printcolumn:name="Direction",type=string,JSONPath=`.spec.direction`
// +kubebuilder:printcolumn:name="Result",type=string,JSONPath=`.status.lastSyncResult`
// +kubebuilder:printcolumn:name="Conflicts",type=integer,JSONPath=`.status.conflictCount`
// +kubebuilder:printcolumn:name="Last sync",type=date,JSONPath=`.status.lastSyncTime`
type KintoMirror struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   KintoMirrorSpec   `json:"spec,omitempty"`
	Status KintoMirrorStatus `json:"status,omitempty"`
}

// KintoMirrorList is a list of KintoMirrors.
// +kubebuilder:object:root=true
type KintoMirrorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KintoMirror `json:"items"`
}
