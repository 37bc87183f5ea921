package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KintoReleaseCatalogSpec lists the Kinto releases and PostgreSQL majors a host offers, with the
// image of each: the instances of the hosting classes that name the catalogue (spec.updates.catalog)
// and follow it (their own spec.updates) run these images and no others. Changing an entry (a new
// release, an image rebuilt with a patched base) reaches every instance that follows it, within
// the operator's rollout cap.
// +kubebuilder:validation:XValidation:rule="!has(self.defaultPostgreSQL) || (has(self.postgresql) && self.postgresql.exists(p, p.major == self.defaultPostgreSQL))",message="spec.defaultPostgreSQL must be one of the majors spec.postgresql lists",fieldPath=".defaultPostgreSQL"
type KintoReleaseCatalogSpec struct {
	// Releases of Kinto offered, each version once.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=version
	// +optional
	Releases []KintoRelease `json:"releases,omitempty"`

	// PostgreSQL majors offered, each major once: the image of the managed database of a
	// following instance whose spec.database.managed.version is that major.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=major
	// +optional
	PostgreSQL []PostgreSQLMajor `json:"postgresql,omitempty"`

	// DefaultPostgreSQL is the PostgreSQL major following instances run, one spec.postgresql
	// lists. Raising it moves those whose automatic updates are Major and whose
	// spec.database.managed.version is lower to it, by a PostgreSQL major upgrade started in
	// their maintenance window (a PostgreSQL major counts as a major update: writes are closed
	// while the database is copied). An instance never goes down to it.
	// +kubebuilder:validation:Pattern=`^1[3-8]$`
	// +optional
	DefaultPostgreSQL string `json:"defaultPostgreSQL,omitempty"`
}

// KintoRelease is one Kinto release of a catalogue.
type KintoRelease struct {
	// Version of Kinto the image holds, such as 26.5.0.
	// +kubebuilder:validation:Pattern=`^[0-9]+\.[0-9]+\.[0-9]+$`
	// +kubebuilder:validation:MaxLength=32
	Version string `json:"version"`

	// Image holding the release, such as kinto/kinto-server:26.5.0. It must run as a non-root
	// user and have `kinto` on its PATH, as the official image does.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains('@')",message="releases[].image names no digest: pin it with releases[].digest"
	Image string `json:"image"`

	// Digest pins the image, such as sha256:0123...: a rebuilt image reaches the instances once
	// the digest changes, and a tag moved by someone else never does.
	// +kubebuilder:validation:Pattern=`^sha256:[0-9a-f]{64}$`
	// +optional
	Digest string `json:"digest,omitempty"`

	// Withdrawn releases are never chosen, for a new instance or an update; an instance running
	// one is reported (condition Release=False, reason Withdrawn), not downgraded: Kinto's
	// migrations only go forward.
	// +optional
	Withdrawn bool `json:"withdrawn,omitempty"`
}

// PostgreSQLMajor is one PostgreSQL major version of a catalogue.
type PostgreSQLMajor struct {
	// Major version, as spec.database.managed.version names it.
	// +kubebuilder:validation:Pattern=`^1[3-8]$`
	Major string `json:"major"`

	// Image of that major, with initdb, postgres, pg_isready, psql, pg_dump and pg_restore on
	// its PATH and a postgres user of uid 999, as the official image has.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`
}

// KintoReleaseCatalog is a host's list of the releases its instances may run. It is
// cluster-scoped: tenants read the releases through their instances' status, and only the host
// writes it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=krc,categories=kinto-hosting
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KintoReleaseCatalog struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec KintoReleaseCatalogSpec `json:"spec,omitempty"`
}

// KintoReleaseCatalogList is a list of KintoReleaseCatalogs.
// +kubebuilder:object:root=true
type KintoReleaseCatalogList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KintoReleaseCatalog `json:"items"`
}

// AutomaticUpdates says which updates an instance takes by itself, in its maintenance window:
// None; Patch (26.5.0 to 26.5.1); Minor (to 26.6.0 too); Major (to 27.0.0 too). Each allows less
// than the next: an instance may ask for less than its class, never more.
// +kubebuilder:validation:Enum=None;Patch;Minor;Major
type AutomaticUpdates string

// The automatic updates, from the strictest.
const (
	AutomaticNone  AutomaticUpdates = "None"
	AutomaticPatch AutomaticUpdates = "Patch"
	AutomaticMinor AutomaticUpdates = "Minor"
	AutomaticMajor AutomaticUpdates = "Major"
)

// MaintenanceWindow is when updates may start: from each time of the schedule, for duration.
// An upgrade started in a window finishes even when the window closes.
// +kubebuilder:validation:XValidation:rule="duration(self.duration) >= duration('10m') && duration(self.duration) <= duration('168h')",message="maintenanceWindow.duration must be between 10m and 168h",fieldPath=".duration"
type MaintenanceWindow struct {
	// Schedule of the window's openings, in the cron format of backup.schedule, in UTC, such as
	// "0 3 * * 0" (Sundays at 03:00).
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\*|[1-5]?[0-9](-[1-5]?[0-9])?)(/[1-9][0-9]?)?(,(\*|[1-5]?[0-9](-[1-5]?[0-9])?)(/[1-9][0-9]?)?)* +(\*|(1?[0-9]|2[0-3])(-(1?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?(,(\*|(1?[0-9]|2[0-3])(-(1?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?)* +(\*|\?|([1-9]|[12][0-9]|3[01])(-([1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?(,(\*|\?|([1-9]|[12][0-9]|3[01])(-([1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?)* +(\*|([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]?)?(,(\*|([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]?)?)* +(\*|\?|([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]?)?(,(\*|\?|([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]?)?)*)$`
	Schedule string `json:"schedule"`

	// Duration the window stays open, such as 2h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Duration metav1.Duration `json:"duration"`
}

// ClassUpdates is how a class's instances are kept up to date.
type ClassUpdates struct {
	// Catalog is the KintoReleaseCatalog the class's instances that follow one (spec.updates)
	// run their releases from.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Catalog string `json:"catalog"`

	// Automatic is the most an instance's updates may take by themselves, and what they take
	// when the instance does not say.
	// +kubebuilder:default=Patch
	// +optional
	Automatic AutomaticUpdates `json:"automatic,omitempty"`

	// MaintenanceWindow is when updates may start; at any time when unset. An instance's own
	// window narrows it: its updates start only when both are open.
	// +optional
	MaintenanceWindow *MaintenanceWindow `json:"maintenanceWindow,omitempty"`
}

// InstanceUpdates makes an instance follow its hosting class's release catalogue, stricter than
// the class if it likes.
type InstanceUpdates struct {
	// Automatic is which updates the instance takes by itself; the class's when unset. It may not
	// allow more than the class's spec.updates.automatic.
	// +optional
	Automatic AutomaticUpdates `json:"automatic,omitempty"`

	// MaintenanceWindow narrows the class's: updates start only when both are open.
	// +optional
	MaintenanceWindow *MaintenanceWindow `json:"maintenanceWindow,omitempty"`
}

// UpdatesStatus is what the catalogue offers an instance that follows one.
type UpdatesStatus struct {
	// Catalog is the KintoReleaseCatalog followed.
	// +optional
	Catalog string `json:"catalog,omitempty"`

	// Available is the newest release of the catalogue above the one running, when there is one;
	// WithinPolicy says whether the instance takes it by itself.
	// +optional
	Available string `json:"available,omitempty"`
	// +optional
	WithinPolicy bool `json:"withinPolicy,omitempty"`

	// NextWindow is when the next maintenance window opens (or opened, while it is open); unset
	// when updates may start at any time.
	// +optional
	NextWindow *metav1.Time `json:"nextWindow,omitempty"`

	// LastUpgrade is the last upgrade the catalogue started.
	// +optional
	LastUpgrade *UpgradeRecord `json:"lastUpgrade,omitempty"`
}

// UpgradeOutcome is how an upgrade went.
type UpgradeOutcome string

// The outcomes of an upgrade.
const (
	UpgradeOutcomeInProgress UpgradeOutcome = "InProgress"
	UpgradeOutcomeSucceeded  UpgradeOutcome = "Succeeded"
	// UpgradeOutcomeAbandoned: its release was withdrawn or left the catalogue before the schema moved
	// to it; the instance keeps running the release it ran.
	UpgradeOutcomeAbandoned UpgradeOutcome = "Abandoned"
	// UpgradeOutcomeRolledBack: the safe upgrade to the release failed and was rolled back (see
	// status.upgrade and the Upgraded condition); the catalogue does not start it again until it
	// offers a newer release.
	UpgradeOutcomeRolledBack UpgradeOutcome = "RolledBack"
)

// UpgradeRecord is one upgrade the catalogue started.
type UpgradeRecord struct {
	From    string         `json:"from"`
	To      string         `json:"to"`
	Started metav1.Time    `json:"started"`
	Outcome UpgradeOutcome `json:"outcome"`
	// +optional
	Finished *metav1.Time `json:"finished,omitempty"`
}
