package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultKintoVersion is the Kinto release an instance runs when spec.version is not set. It must
// be published both on PyPI (package kinto) and as the kinto/kinto-server image tag.
const DefaultKintoVersion = "26.5.0"

// ForceDowngradeAnnotation, set on an instance to the exact release spec.version names, lets the
// server run a release older than the one its schema was migrated to. Kinto's migrations only go
// forward, so the older release then runs on a newer schema: a last resort, at the user's risk.
const ForceDowngradeAnnotation = "hosting.kinto-storage.org/force-downgrade"

// DefaultPostgreSQLVersion is the PostgreSQL major version of a managed database when none is
// set. It is the one Debian stable packages, which the project's real-database tests run against.
const DefaultPostgreSQLVersion = "15"

// KintoInstanceSpec is the desired state of one Kinto server with its database.
// +kubebuilder:validation:XValidation:rule="has(self.bootstrap) == has(oldSelf.bootstrap) && (!has(self.bootstrap) || (has(self.bootstrap.fromBackup) == has(oldSelf.bootstrap.fromBackup) && has(self.bootstrap.fromPortable) == has(oldSelf.bootstrap.fromPortable) && (!has(self.bootstrap.fromBackup) || (has(self.bootstrap.fromBackup.backupName) == has(oldSelf.bootstrap.fromBackup.backupName) && (!has(self.bootstrap.fromBackup.backupName) || self.bootstrap.fromBackup.backupName == oldSelf.bootstrap.fromBackup.backupName) && has(self.bootstrap.fromBackup.s3) == has(oldSelf.bootstrap.fromBackup.s3) && (!has(self.bootstrap.fromBackup.s3) || self.bootstrap.fromBackup.s3 == oldSelf.bootstrap.fromBackup.s3))) && (!has(self.bootstrap.fromPortable) || (has(self.bootstrap.fromPortable.backupName) == has(oldSelf.bootstrap.fromPortable.backupName) && (!has(self.bootstrap.fromPortable.backupName) || self.bootstrap.fromPortable.backupName == oldSelf.bootstrap.fromPortable.backupName) && has(self.bootstrap.fromPortable.s3) == has(oldSelf.bootstrap.fromPortable.s3) && (!has(self.bootstrap.fromPortable.s3) || self.bootstrap.fromPortable.s3 == oldSelf.bootstrap.fromPortable.s3) && has(self.bootstrap.fromPortable.server) == has(oldSelf.bootstrap.fromPortable.server) && (!has(self.bootstrap.fromPortable.server) || self.bootstrap.fromPortable.server == oldSelf.bootstrap.fromPortable.server)))))",message="spec.bootstrap is set when the instance is created and cannot change, but for fromBackup.decryptionKey or fromPortable.decryptionKey (the key of an encrypted backup, given once it is asked for): restore into a new instance instead",fieldPath=".bootstrap"
// +kubebuilder:validation:XValidation:rule="!has(self.bootstrap) || !has(self.database) || has(self.database.managed)",message="spec.bootstrap restores into a managed database: restore into an external database with pg_restore yourself",fieldPath=".bootstrap"
// +kubebuilder:validation:XValidation:rule="!has(self.deletionPolicy) || self.deletionPolicy != 'Snapshot' || (has(self.backup) && (!has(self.database) || has(self.database.managed)))",message="deletionPolicy Snapshot needs spec.backup, which says where the final backup goes, and a managed database",fieldPath=".deletionPolicy"
// +kubebuilder:validation:XValidation:rule="!(has(self.ingress) && has(self.gateway))",message="spec.ingress and spec.gateway are alternatives: set one of them"
// +kubebuilder:validation:XValidation:rule="!has(self.auth) || !has(self.auth.accounts) || !(has(self.auth.accounts.registration) && self.auth.accounts.registration == 'AdminsOnly') || (has(self.auth.accounts.admins) && size(self.auth.accounts.admins) > 0)",message="auth.accounts.registration AdminsOnly needs at least one entry in auth.accounts.admins",fieldPath=".auth.accounts.admins"
// +kubebuilder:validation:XValidation:rule="!has(self.updates) || !has(self.image)",message="spec.image must be unset while spec.updates follows the class's release catalogue, whose images the host chooses",fieldPath=".image"
type KintoInstanceSpec struct {
	// Version is the Kinto server release to run, such as "26.5.0". It selects the image tag
	// kinto/kinto-server:<version> unless image is set. A change first runs the schema migration
	// (`kinto migrate`) in a Job, then rolls the server to the new release.
	// +kubebuilder:default="26.5.0"
	// +kubebuilder:validation:Pattern=`^[0-9]+\.[0-9]+\.[0-9]+$`
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Version string `json:"version,omitempty"`

	// Image overrides the Kinto server image. It must hold the release named by version, run as a
	// non-root user and have `kinto` on its PATH, as the official kinto/kinto-server image does.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// Updates makes the instance follow the release catalogue of its hosting class instead of
	// spec.version, which it then does not use: a new instance starts on the catalogue's newest
	// release, and takes the newer ones its policy allows in its maintenance window (see
	// status.updates). The catalogue's images are the host's choice: spec.image stays unset.
	// Unset, spec.version pins the release, as it always did.
	// +optional
	Updates *InstanceUpdates `json:"updates,omitempty"`

	// ClassName is the KintoHostingClass the instance is hosted under: the plan that fills in
	// replicas, resources, storage, backups and exposure the instance leaves unset, and bounds
	// what it may ask for. Unset, the class marked default applies, if any.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ClassName string `json:"className,omitempty"`

	// Replicas is the number of Kinto server pods. They share the database and its cache table.
	// Unset, the hosting class's default applies, else 1. The scale subresource sets it (as
	// `kubectl scale` does); reading the scale, as a HorizontalPodAutoscaler does, needs it set.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Resources of each Kinto server container and of the migration Job. Unset, the hosting
	// class's default applies, else requests of 50m CPU and 128Mi of memory and a memory limit of
	// 512Mi.
	// +kubebuilder:validation:XValidation:rule="(!has(self.requests) || !('cpu' in self.requests) || !quantity(string(self.requests['cpu'])).isLessThan(quantity('0'))) && (!has(self.requests) || !('memory' in self.requests) || !quantity(string(self.requests['memory'])).isLessThan(quantity('0'))) && (!has(self.requests) || !('ephemeral-storage' in self.requests) || !quantity(string(self.requests['ephemeral-storage'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('cpu' in self.limits) || !quantity(string(self.limits['cpu'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('memory' in self.limits) || !quantity(string(self.limits['memory'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('ephemeral-storage' in self.limits) || !quantity(string(self.limits['ephemeral-storage'])).isLessThan(quantity('0')))",message="cpu, memory and ephemeral-storage requests and limits must not be negative"
	// +kubebuilder:validation:XValidation:rule="(!has(self.requests) || !has(self.limits) || !('cpu' in self.requests) || !('cpu' in self.limits) || quantity(string(self.requests['cpu'])).compareTo(quantity(string(self.limits['cpu']))) <= 0) && (!has(self.requests) || !has(self.limits) || !('memory' in self.requests) || !('memory' in self.limits) || quantity(string(self.requests['memory'])).compareTo(quantity(string(self.limits['memory']))) <= 0) && (!has(self.requests) || !has(self.limits) || !('ephemeral-storage' in self.requests) || !('ephemeral-storage' in self.limits) || quantity(string(self.requests['ephemeral-storage'])).compareTo(quantity(string(self.limits['ephemeral-storage']))) <= 0)",message="cpu, memory and ephemeral-storage requests must not be above their limits"
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector constrains every pod of the instance to nodes with these labels; keys are
	// label names ([prefix/]name), values label values.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="nodeSelector keys must be label names, such as kubernetes.io/arch or disktype"
	// +optional
	NodeSelector map[string]LabelValue `json:"nodeSelector,omitempty"`

	// Tolerations of every pod of the instance.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity of every pod of the instance.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// PriorityClassName of every pod of the instance.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// Database is where Kinto keeps its data: a PostgreSQL server the operator runs for this
	// instance (managed), or one run elsewhere (external). Exactly one of the two is set; which one
	// cannot change after creation.
	// +kubebuilder:default={managed:{}}
	// +optional
	Database *DatabaseSpec `json:"database,omitempty"`

	// Auth chooses how users authenticate: Kinto accounts, OpenID Connect providers, or both.
	// +kubebuilder:default={accounts:{enabled:true}}
	// +optional
	Auth *AuthSpec `json:"auth,omitempty"`

	// Plugins are the optional Kinto plugins to enable. The flush plugin, which lets one request
	// wipe every bucket, is not offered.
	// +kubebuilder:default={admin}
	// +kubebuilder:validation:MaxItems=8
	// +listType=set
	// +optional
	Plugins []Plugin `json:"plugins,omitempty"`

	// Settings are extra Kinto settings for the rendered [app:main] section, such as
	// "kinto.paginate_by": "100". Only these settings may be set, each with or without the kinto.
	// prefix (not both), as a string matching its pattern:
	//   - whole numbers: account_cache_ttl_seconds (1-99999), backoff (1-99999),
	//     backoff_percentage (0-100), batch_max_requests (1-100), cors_max_age_seconds (0-99999),
	//     heartbeat_timeout_seconds (1-10), history.auto_trim_max_count (-1 or 1-9999999),
	//     history.auto_trim_threshold (1-9999999), paginate_by (1-10000),
	//     pagination_token_validity_seconds (1-99999), record_cache_expires_seconds (0-999999),
	//     retry_after_seconds (0-9999), root_cache_expires_seconds (0-999999),
	//     storage_max_fetch_size (1-10000), trailing_slash_redirect_ttl_seconds (0-999999),
	//     version_prefix_redirect_ttl_seconds (-1 or 0-999999);
	//   - true or false: experimental_collection_schema_validation,
	//     experimental_permissions_endpoint, explicit_permissions, trailing_slash_redirect_enabled,
	//     version_prefix_redirect_enabled;
	//   - principals separated by spaces (such as "account:alice system.Authenticated"), or none:
	//     bucket_create_principals, bucket_read_principals, bucket_write_principals,
	//     collection_create_principals, collection_read_principals, collection_write_principals,
	//     group_create_principals, group_read_principals, group_write_principals,
	//     record_create_principals, record_read_principals, record_write_principals,
	//     history.auto_trim_user_ids, history.exclude_user_ids;
	//   - http(s) URLs: project_docs, error_info_link; cors_origins: origins (or *) separated by
	//     spaces; history.exclude_resources: object paths such as /buckets/b/collections/c,
	//     separated by spaces;
	//   - text of up to 128 characters: project_name (default: the instance's name),
	//     project_version.
	// Settings that load code, read files, reach the network or stop the operator's migrations or
	// probes (includes, initialization_sequence, backends, readonly, eos, ...) are refused, and no
	// value may hold a control character or a Unicode line or paragraph separator.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule=`self.all(k, (k.startsWith('kinto.') ? k.substring(6) : k) in ['account_cache_ttl_seconds', 'backoff', 'backoff_percentage', 'batch_max_requests', 'bucket_create_principals', 'bucket_read_principals', 'bucket_write_principals', 'collection_create_principals', 'collection_read_principals', 'collection_write_principals', 'cors_max_age_seconds', 'cors_origins', 'error_info_link', 'experimental_collection_schema_validation', 'experimental_permissions_endpoint', 'explicit_permissions', 'group_create_principals', 'group_read_principals', 'group_write_principals', 'heartbeat_timeout_seconds', 'history.auto_trim_max_count', 'history.auto_trim_threshold', 'history.auto_trim_user_ids', 'history.exclude_resources', 'history.exclude_user_ids', 'paginate_by', 'pagination_token_validity_seconds', 'project_docs', 'project_name', 'project_version', 'record_cache_expires_seconds', 'record_create_principals', 'record_read_principals', 'record_write_principals', 'retry_after_seconds', 'root_cache_expires_seconds', 'storage_max_fetch_size', 'trailing_slash_redirect_enabled', 'trailing_slash_redirect_ttl_seconds', 'version_prefix_redirect_enabled', 'version_prefix_redirect_ttl_seconds'])`,message=`settings may set only the Kinto settings kubectl explain kintoinstance.spec.settings lists`,messageExpression=`'settings may not set ' + self.filter(k, !((k.startsWith('kinto.') ? k.substring(6) : k) in ['account_cache_ttl_seconds', 'backoff', 'backoff_percentage', 'batch_max_requests', 'bucket_create_principals', 'bucket_read_principals', 'bucket_write_principals', 'collection_create_principals', 'collection_read_principals', 'collection_write_principals', 'cors_max_age_seconds', 'cors_origins', 'error_info_link', 'experimental_collection_schema_validation', 'experimental_permissions_endpoint', 'explicit_permissions', 'group_create_principals', 'group_read_principals', 'group_write_principals', 'heartbeat_timeout_seconds', 'history.auto_trim_max_count', 'history.auto_trim_threshold', 'history.auto_trim_user_ids', 'history.exclude_resources', 'history.exclude_user_ids', 'paginate_by', 'pagination_token_validity_seconds', 'project_docs', 'project_name', 'project_version', 'record_cache_expires_seconds', 'record_create_principals', 'record_read_principals', 'record_write_principals', 'retry_after_seconds', 'root_cache_expires_seconds', 'storage_max_fetch_size', 'trailing_slash_redirect_enabled', 'trailing_slash_redirect_ttl_seconds', 'version_prefix_redirect_enabled', 'version_prefix_redirect_ttl_seconds']))[0] + ': a tenant may set only the Kinto settings kubectl explain kintoinstance.spec.settings lists'`
	// +kubebuilder:validation:XValidation:rule=`['account_cache_ttl_seconds', 'backoff', 'pagination_token_validity_seconds'].all(n, (!(n in self) || self[n].matches(r'^[1-9][0-9]{0,4}$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^[1-9][0-9]{0,4}$')))`,message=`settings account_cache_ttl_seconds, backoff, pagination_token_validity_seconds must match ^[1-9][0-9]{0,4}$`
	// +kubebuilder:validation:XValidation:rule=`['backoff_percentage'].all(n, (!(n in self) || self[n].matches(r'^([0-9]|[1-9][0-9]|100)$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^([0-9]|[1-9][0-9]|100)$')))`,message=`settings backoff_percentage must match ^([0-9]|[1-9][0-9]|100)$`
	// +kubebuilder:validation:XValidation:rule=`['batch_max_requests'].all(n, (!(n in self) || self[n].matches(r'^([1-9][0-9]?|100)$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^([1-9][0-9]?|100)$')))`,message=`settings batch_max_requests must match ^([1-9][0-9]?|100)$`
	// +kubebuilder:validation:XValidation:rule=`['bucket_create_principals', 'bucket_read_principals', 'bucket_write_principals', 'collection_create_principals', 'collection_read_principals', 'collection_write_principals', 'group_create_principals', 'group_read_principals', 'group_write_principals', 'history.auto_trim_user_ids', 'history.exclude_user_ids', 'record_create_principals', 'record_read_principals', 'record_write_principals'].all(n, (!(n in self) || self[n].matches(r'^([A-Za-z/][!-~]*( [A-Za-z/][!-~]*)*)?$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^([A-Za-z/][!-~]*( [A-Za-z/][!-~]*)*)?$')))`,message=`settings bucket_create_principals, bucket_read_principals, bucket_write_principals, collection_create_principals, collection_read_principals, collection_write_principals, group_create_principals, group_read_principals, group_write_principals, history.auto_trim_user_ids, history.exclude_user_ids, record_create_principals, record_read_principals, record_write_principals must match ^([A-Za-z/][!-~]*( [A-Za-z/][!-~]*)*)?$`
	// +kubebuilder:validation:XValidation:rule=`['cors_max_age_seconds'].all(n, (!(n in self) || self[n].matches(r'^[0-9]{1,5}$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^[0-9]{1,5}$')))`,message=`settings cors_max_age_seconds must match ^[0-9]{1,5}$`
	// +kubebuilder:validation:XValidation:rule=`['cors_origins'].all(n, (!(n in self) || self[n].matches(r'^(\*|https?://[!-~]+)( (\*|https?://[!-~]+))*$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^(\*|https?://[!-~]+)( (\*|https?://[!-~]+))*$')))`,message=`settings cors_origins must match ^(\*|https?://[!-~]+)( (\*|https?://[!-~]+))*$`
	// +kubebuilder:validation:XValidation:rule=`['error_info_link', 'project_docs'].all(n, (!(n in self) || self[n].matches(r'^https?://[!-~]+$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^https?://[!-~]+$')))`,message=`settings error_info_link, project_docs must match ^https?://[!-~]+$`
	// +kubebuilder:validation:XValidation:rule=`['experimental_collection_schema_validation', 'experimental_permissions_endpoint', 'explicit_permissions', 'trailing_slash_redirect_enabled', 'version_prefix_redirect_enabled'].all(n, (!(n in self) || self[n].matches(r'^(true|false)$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^(true|false)$')))`,message=`settings experimental_collection_schema_validation, experimental_permissions_endpoint, explicit_permissions, trailing_slash_redirect_enabled, version_prefix_redirect_enabled must match ^(true|false)$`
	// +kubebuilder:validation:XValidation:rule=`['heartbeat_timeout_seconds'].all(n, (!(n in self) || self[n].matches(r'^([1-9]|10)$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^([1-9]|10)$')))`,message=`settings heartbeat_timeout_seconds must match ^([1-9]|10)$`
	// +kubebuilder:validation:XValidation:rule=`['history.auto_trim_max_count'].all(n, (!(n in self) || self[n].matches(r'^(-1|[1-9][0-9]{0,6})$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^(-1|[1-9][0-9]{0,6})$')))`,message=`settings history.auto_trim_max_count must match ^(-1|[1-9][0-9]{0,6})$`
	// +kubebuilder:validation:XValidation:rule=`['history.auto_trim_threshold'].all(n, (!(n in self) || self[n].matches(r'^[1-9][0-9]{0,6}$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^[1-9][0-9]{0,6}$')))`,message=`settings history.auto_trim_threshold must match ^[1-9][0-9]{0,6}$`
	// +kubebuilder:validation:XValidation:rule=`['history.exclude_resources'].all(n, (!(n in self) || self[n].matches(r'^(/buckets/[A-Za-z0-9][A-Za-z0-9_-]*(/groups/[A-Za-z0-9][A-Za-z0-9_-]*|/collections/[A-Za-z0-9][A-Za-z0-9_-]*(/records/[A-Za-z0-9][A-Za-z0-9_-]*)?)?( /buckets/[A-Za-z0-9][A-Za-z0-9_-]*(/groups/[A-Za-z0-9][A-Za-z0-9_-]*|/collections/[A-Za-z0-9][A-Za-z0-9_-]*(/records/[A-Za-z0-9][A-Za-z0-9_-]*)?)?)*)?$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^(/buckets/[A-Za-z0-9][A-Za-z0-9_-]*(/groups/[A-Za-z0-9][A-Za-z0-9_-]*|/collections/[A-Za-z0-9][A-Za-z0-9_-]*(/records/[A-Za-z0-9][A-Za-z0-9_-]*)?)?( /buckets/[A-Za-z0-9][A-Za-z0-9_-]*(/groups/[A-Za-z0-9][A-Za-z0-9_-]*|/collections/[A-Za-z0-9][A-Za-z0-9_-]*(/records/[A-Za-z0-9][A-Za-z0-9_-]*)?)?)*)?$')))`,message=`settings history.exclude_resources must match ^(/buckets/[A-Za-z0-9][A-Za-z0-9_-]*(/groups/[A-Za-z0-9][A-Za-z0-9_-]*|/collections/[A-Za-z0-9][A-Za-z0-9_-]*(/records/[A-Za-z0-9][A-Za-z0-9_-]*)?)?( /buckets/[A-Za-z0-9][A-Za-z0-9_-]*(/groups/[A-Za-z0-9][A-Za-z0-9_-]*|/collections/[A-Za-z0-9][A-Za-z0-9_-]*(/records/[A-Za-z0-9][A-Za-z0-9_-]*)?)?)*)?$`
	// +kubebuilder:validation:XValidation:rule=`['paginate_by', 'storage_max_fetch_size'].all(n, (!(n in self) || self[n].matches(r'^([1-9][0-9]{0,3}|10000)$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^([1-9][0-9]{0,3}|10000)$')))`,message=`settings paginate_by, storage_max_fetch_size must match ^([1-9][0-9]{0,3}|10000)$`
	// +kubebuilder:validation:XValidation:rule=`['project_name', 'project_version'].all(n, (!(n in self) || self[n].matches(r'^[^\p{Cc}\p{Zl}\p{Zp}]{1,128}$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^[^\p{Cc}\p{Zl}\p{Zp}]{1,128}$')))`,message=`settings project_name, project_version must match ^[^\p{Cc}\p{Zl}\p{Zp}]{1,128}$`
	// +kubebuilder:validation:XValidation:rule=`['record_cache_expires_seconds', 'root_cache_expires_seconds', 'trailing_slash_redirect_ttl_seconds'].all(n, (!(n in self) || self[n].matches(r'^[0-9]{1,6}$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^[0-9]{1,6}$')))`,message=`settings record_cache_expires_seconds, root_cache_expires_seconds, trailing_slash_redirect_ttl_seconds must match ^[0-9]{1,6}$`
	// +kubebuilder:validation:XValidation:rule=`['retry_after_seconds'].all(n, (!(n in self) || self[n].matches(r'^[0-9]{1,4}$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^[0-9]{1,4}$')))`,message=`settings retry_after_seconds must match ^[0-9]{1,4}$`
	// +kubebuilder:validation:XValidation:rule=`['version_prefix_redirect_ttl_seconds'].all(n, (!(n in self) || self[n].matches(r'^(-1|[0-9]{1,6})$')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'^(-1|[0-9]{1,6})$')))`,message=`settings version_prefix_redirect_ttl_seconds must match ^(-1|[0-9]{1,6})$`
	// +kubebuilder:validation:XValidation:rule=`!self.exists(k, self[k].matches(r'[\p{Cc}\p{Zl}\p{Zp}]'))`,message=`setting values may not hold control characters or line or paragraph separators`,messageExpression=`'setting values may not hold control characters or line or paragraph separators: ' + self.filter(k, self[k].matches(r'[\p{Cc}\p{Zl}\p{Zp}]'))[0]`
	// +kubebuilder:validation:XValidation:rule=`self.all(k, !k.startsWith('kinto.') || !(k.substring(6) in self))`,message=`a setting may not be given both with and without the kinto. prefix`
	// +optional
	Settings map[string]SettingValue `json:"settings,omitempty"`

	// Ingress exposes the instance outside the cluster under a host name.
	// +optional
	Ingress *IngressSpec `json:"ingress,omitempty"`

	// Gateway exposes the instance through a Gateway API HTTPRoute attached to a Gateway, instead
	// of an Ingress. It needs the Gateway API CRDs in the cluster.
	// +optional
	Gateway *GatewaySpec `json:"gateway,omitempty"`

	// Backup schedules logical backups of the instance's database and says where backups go,
	// scheduled or on demand (KintoBackup).
	// +optional
	Backup *BackupSpec `json:"backup,omitempty"`

	// Upgrade tunes the safe upgrade that a change of version (or image) of an instance with a
	// managed database goes through: writes closed, a backup, the migration, the new release
	// under a health gate, and an automatic rollback to the backup if any of it fails. The backup
	// is a KintoBackup to spec.backup's destination; without one, or when backups are encrypted
	// (the operator cannot read them back), it is the upgrade's own safety dump, kept in the
	// cluster on a scratch volume and removed once the upgrade has ended (status.upgrade.safetyDump).
	// A hibernating instance upgrades once woken. An external database has no safe upgrade: the
	// release catalogue does not upgrade it, and a change of spec.version migrates it in place.
	// +optional
	Upgrade *UpgradeSpec `json:"upgrade,omitempty"`

	// Bootstrap fills a new instance's database from a backup before the server first starts.
	// It is set when the instance is created and never changes.
	// +optional
	Bootstrap *BootstrapSpec `json:"bootstrap,omitempty"`

	// Hibernate scales the server and the managed PostgreSQL to zero pods, keeping the volume,
	// the credentials and the configuration; setting it back to false serves the same data again.
	// +optional
	Hibernate bool `json:"hibernate,omitempty"`

	// DeletionPolicy says what happens to the data when the instance is deleted. Retain keeps the
	// database volume, the backup volume and the credentials Secret that goes with them, so an
	// instance re-created with the same name finds its data again. Snapshot takes a final backup
	// (a KintoBackup named <instance>-final-...) and deletes the database volume only once it
	// succeeded, keeping the backups and the credentials. Delete removes the volumes and the
	// credentials with the instance. Backups taken as KintoBackups stay under every policy.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// UpgradeSpec tunes the safe upgrade.
type UpgradeSpec struct {
	// HealthGateSeconds is how long the new release must stay healthy (heartbeat all green, its
	// version at the root URL, a few existing objects answering as before) before writes open
	// again; a failure within it rolls the upgrade back.
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=3600
	// +kubebuilder:default=60
	// +optional
	HealthGateSeconds int32 `json:"healthGateSeconds,omitempty"`

	// ReadyTimeoutSeconds is how long the new release's pods have, from the end of the migration,
	// to be ready; past it, the upgrade is rolled back. A PostgreSQL major upgrade gives the new
	// server's pod, then the Kinto server's pods on it, as long each.
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=3600
	// +kubebuilder:default=600
	// +optional
	ReadyTimeoutSeconds int32 `json:"readyTimeoutSeconds,omitempty"`
}

// Defaults of UpgradeSpec, for an instance that leaves spec.upgrade out.
const (
	DefaultHealthGateSeconds   = 60
	DefaultReadyTimeoutSeconds = 600
)

// LabelValue is the value of a Kubernetes label: empty, or at most 63 letters, digits, '-',
// '_' or '.', starting and ending with a letter or digit.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`
type LabelValue string

// SettingValue is the value of one extra Kinto setting, rendered verbatim (with `%` escaped).
// +kubebuilder:validation:MaxLength=4096
type SettingValue string

// Plugin is an optional Kinto plugin.
// +kubebuilder:validation:Enum=admin;history;prometheus;default_bucket
type Plugin string

const (
	// PluginAdmin serves the Kinto web administration UI under /v1/admin/.
	PluginAdmin Plugin = "admin"
	// PluginHistory records every change in a per-bucket history.
	PluginHistory Plugin = "history"
	// PluginPrometheus serves metrics under /v1/__metrics__.
	PluginPrometheus Plugin = "prometheus"
	// PluginDefaultBucket gives every user a personal bucket under /v1/buckets/default.
	PluginDefaultBucket Plugin = "default_bucket"
)

// DeletionPolicy is what happens to an instance's data when the instance is deleted.
// +kubebuilder:validation:Enum=Retain;Snapshot;Delete
type DeletionPolicy string

const (
	// DeletionPolicyRetain keeps the database volume and credentials after the instance is gone.
	DeletionPolicyRetain DeletionPolicy = "Retain"
	// DeletionPolicySnapshot takes a final backup, then deletes the database volume.
	DeletionPolicySnapshot DeletionPolicy = "Snapshot"
	// DeletionPolicyDelete removes the database volume and credentials with the instance.
	DeletionPolicyDelete DeletionPolicy = "Delete"
)

// DatabaseSpec selects the PostgreSQL database of an instance.
// +kubebuilder:validation:XValidation:rule="has(self.managed) != has(self.external)",message="exactly one of database.managed and database.external must be set"
// +kubebuilder:validation:XValidation:rule="has(self.managed) == has(oldSelf.managed)",message="database cannot switch between managed and external after creation; back up and restore into a new instance instead"
type DatabaseSpec struct {
	// Managed runs a PostgreSQL server for this instance in a StatefulSet with its own volume.
	// +optional
	Managed *ManagedDatabase `json:"managed,omitempty"`

	// External points Kinto at a PostgreSQL database run elsewhere. The database must be UTF8 and
	// must not be shared with another Kinto instance.
	// +optional
	External *ExternalDatabase `json:"external,omitempty"`
}

// ManagedDatabase is a PostgreSQL server the operator runs for one instance.
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storageClassName cannot change after creation",fieldPath=".storageClassName"
type ManagedDatabase struct {
	// Version is the PostgreSQL major version. It selects the image tag postgres:<version> unless
	// image is set. Raising it upgrades the database to that major: the operator closes Kinto's
	// writes, dumps the database into a new volume running the new major, switches the server
	// over, and keeps the old volume for oldVolumeRetention once the instance is healthy on the
	// new one; if the new server does not start, or the copy or the server on it fails, the
	// instance goes back to the old volume (status.database.upgrade says how far it went). It
	// never goes down: a dump of a newer major may not restore into an older one.
	// +kubebuilder:default="15"
	// +kubebuilder:validation:Pattern=`^1[3-8]$`
	// +kubebuilder:validation:XValidation:rule="int(self) >= int(oldSelf)",message="spec.database.managed.version cannot go down: a PostgreSQL major upgrade only goes forward"
	// +optional
	Version string `json:"version,omitempty"`

	// OldVolumeRetention is how long the volume of the previous major is kept after a major
	// upgrade succeeded, in hours, days or weeks ("72h", "7d", "2w"), before the operator
	// deletes it.
	// +kubebuilder:default="7d"
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{0,4}(h|d|w)$`
	// +optional
	OldVolumeRetention string `json:"oldVolumeRetention,omitempty"`

	// Image overrides the PostgreSQL image. It must hold the major version named by version, with
	// initdb, postgres, pg_isready, psql, pg_dump and pg_restore on its PATH and a postgres user
	// of uid 999, as the official image has.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// StorageSize is the size of the database volume. It may grow where the storage class allows
	// volume expansion; where it does not, the volume keeps its size and condition VolumesSized
	// says so until storageSize is set back. A volume never shrinks: a smaller storageSize, or a
	// smaller default, leaves it as it is. Unset, the hosting class's default size applies, else
	// 1Gi.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="storageSize must be positive"
	// +kubebuilder:validation:XValidation:rule="string(self).matches('^[0-9]+(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$') && quantity(string(self)).compareTo(quantity('1Pi')) <= 0",message="storageSize must be a whole number of bytes with an optional unit (such as 512Mi or 20Gi), at most 1Pi"
	// +optional
	StorageSize *resource.Quantity `json:"storageSize,omitempty"`

	// StorageClassName of the database volume; unset, the hosting class's, else the cluster's
	// default class. It cannot change after creation.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// Resources of the PostgreSQL container.
	// +kubebuilder:default={requests:{cpu:"50m",memory:"128Mi"},limits:{memory:"1Gi"}}
	// +kubebuilder:validation:XValidation:rule="(!has(self.requests) || !('cpu' in self.requests) || !quantity(string(self.requests['cpu'])).isLessThan(quantity('0'))) && (!has(self.requests) || !('memory' in self.requests) || !quantity(string(self.requests['memory'])).isLessThan(quantity('0'))) && (!has(self.requests) || !('ephemeral-storage' in self.requests) || !quantity(string(self.requests['ephemeral-storage'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('cpu' in self.limits) || !quantity(string(self.limits['cpu'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('memory' in self.limits) || !quantity(string(self.limits['memory'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('ephemeral-storage' in self.limits) || !quantity(string(self.limits['ephemeral-storage'])).isLessThan(quantity('0')))",message="cpu, memory and ephemeral-storage requests and limits must not be negative"
	// +kubebuilder:validation:XValidation:rule="(!has(self.requests) || !has(self.limits) || !('cpu' in self.requests) || !('cpu' in self.limits) || quantity(string(self.requests['cpu'])).compareTo(quantity(string(self.limits['cpu']))) <= 0) && (!has(self.requests) || !has(self.limits) || !('memory' in self.requests) || !('memory' in self.limits) || quantity(string(self.requests['memory'])).compareTo(quantity(string(self.limits['memory']))) <= 0) && (!has(self.requests) || !has(self.limits) || !('ephemeral-storage' in self.requests) || !('ephemeral-storage' in self.limits) || quantity(string(self.requests['ephemeral-storage'])).compareTo(quantity(string(self.limits['ephemeral-storage']))) <= 0)",message="cpu, memory and ephemeral-storage requests must not be above their limits"
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// ExternalDatabase is a PostgreSQL database run outside the operator.
type ExternalDatabase struct {
	// URLSecret is the Secret key holding the connection URL, in the form
	// postgresql://user:password@host:5432/database (the postgres:// scheme is refused by Kinto).
	URLSecret SecretKeyRef `json:"urlSecret"`
}

// SecretKeyRef names one key of a Secret in the instance's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Key within the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// AuthSpec chooses the authentication methods of an instance.
// +kubebuilder:validation:XValidation:rule="(has(self.accounts) && self.accounts.enabled) || (has(self.openIDConnect) && size(self.openIDConnect) > 0) || (has(self.basicAuth) && self.basicAuth)",message="enable auth.accounts, auth.basicAuth or at least one auth.openIDConnect provider"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.openIDConnect) || oldSelf.openIDConnect.all(p, has(self.openIDConnect) && self.openIDConnect.exists(q, q.name == p.name))",message="OpenID Connect providers cannot be renamed or removed: a provider's name prefixes its users' ids",fieldPath=".openIDConnect"
type AuthSpec struct {
	// Accounts enables Kinto's own user accounts (user name and password).
	// +optional
	Accounts *AccountsSpec `json:"accounts,omitempty"`

	// BasicAuth lets any user name and password pair authenticate, the pair itself being the
	// identity (Kinto's basicauth policy): handy for scripts, but anyone who guesses a pair gets
	// that user's data, so it is off unless asked for.
	// +optional
	BasicAuth bool `json:"basicAuth,omitempty"`

	// OpenIDConnect lists the OpenID Connect providers users may log in with. A provider's name
	// prefixes its users' ids, so it can never be renamed.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	// +optional
	OpenIDConnect []OpenIDConnectProvider `json:"openIDConnect,omitempty"`
}

// AccountsSpec configures Kinto accounts.
type AccountsSpec struct {
	// Enabled turns Kinto accounts on.
	// +kubebuilder:default=true
	Enabled bool `json:"enabled"`

	// Admins are the account ids that may read, change and delete every account.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_.@+-]*$`
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=set
	// +optional
	Admins []string `json:"admins,omitempty"`

	// Registration says who may create accounts: anyone (Open) or only the admins (AdminsOnly).
	// Kinto lets no other principal create accounts without making it an admin of every account.
	// +kubebuilder:default=Open
	// +optional
	Registration AccountRegistration `json:"registration,omitempty"`
}

// AccountRegistration says who may create Kinto accounts.
// +kubebuilder:validation:Enum=Open;AdminsOnly
type AccountRegistration string

const (
	// RegistrationOpen lets anyone create an account.
	RegistrationOpen AccountRegistration = "Open"
	// RegistrationAdminsOnly lets only the admins create accounts.
	RegistrationAdminsOnly AccountRegistration = "AdminsOnly"
)

// OpenIDConnectProvider is one OpenID Connect identity provider.
type OpenIDConnectProvider struct {
	// Name of the provider: it prefixes the ids of its users ("<name>:<subject>") and the login
	// URL, and can never change.
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9]*$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!(self in ['account', 'basicauth', 'system'])",message="name is reserved by Kinto"
	Name string `json:"name"`

	// Issuer is the provider's https URL; its discovery document is fetched when Kinto starts.
	// +kubebuilder:validation:Pattern=`^https://[^\s]+$`
	// +kubebuilder:validation:MaxLength=512
	Issuer string `json:"issuer"`

	// ClientID registered with the provider.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^\s%]+$`
	ClientID string `json:"clientID"`

	// ClientSecret is the Secret key holding the client secret.
	ClientSecret SecretKeyRef `json:"clientSecret"`

	// Audience, when set, makes Kinto validate tokens as JWTs issued for it; unset, Kinto asks the
	// provider's userinfo endpoint about each token. Leave it unset with Kinto 26.5.0, which then
	// rejects every token (it decodes JWTs without naming the algorithms, which PyJWT refuses).
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^\s%]+$`
	// +optional
	Audience string `json:"audience,omitempty"`

	// TrustedCallbackURLs are the pages the login may send users back to with their tokens, with *
	// as a wildcard in host, port and path, such as https://notes.example.org/*. Unset, Kinto
	// trusts only pages on localhost or 127.0.0.1 and its own admin UI.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^https?://[^\s%]+$`
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=set
	// +optional
	TrustedCallbackURLs []string `json:"trustedCallbackURLs,omitempty"`

	// AllowedScopes are the scopes a login may ask for; Kinto's default is openid, email and
	// profile.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9_:./-]+$`
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	AllowedScopes []string `json:"allowedScopes,omitempty"`

	// UserIDField is the claim that identifies a user.
	// +kubebuilder:default=sub
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]*$`
	// +kubebuilder:validation:MaxLength=64
	// +optional
	UserIDField string `json:"userIDField,omitempty"`
}

// IngressSpec exposes an instance under a public host name.
type IngressSpec struct {
	// Host is the public DNS name of the instance, such as kinto.example.org.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	Host string `json:"host"`

	// ClassName is the IngressClass to use; the cluster's default class when unset.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	ClassName *string `json:"className,omitempty"`

	// TLS serves the host over https. Without it the instance is served over plain http.
	// +optional
	TLS *IngressTLS `json:"tls,omitempty"`

	// Annotations added to the Ingress, for example for the ingress controller: only the keys
	// the instance's hosting class allows (spec.ingress.allowedAnnotations), none without a class.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// GatewaySpec attaches an instance to a Gateway of the Gateway API under a public host name.
type GatewaySpec struct {
	// Host is the public DNS name of the instance, such as kinto.example.org.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	Host string `json:"host"`

	// Name of the Gateway.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	Name string `json:"name"`

	// Namespace of the Gateway; the instance's when unset. The Gateway's listener must allow routes
	// from the instance's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// SectionName is the Gateway listener to attach to; every listener that accepts the route
	// when unset.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	SectionName string `json:"sectionName,omitempty"`

	// Scheme the Gateway serves the host with, which Kinto uses in the URLs it returns.
	// +kubebuilder:default=https
	// +kubebuilder:validation:Enum=https;http
	// +optional
	Scheme string `json:"scheme,omitempty"`
}

// IngressTLS is where the certificate of an Ingress comes from: an existing Secret, or a
// cert-manager issuer that creates one.
// +kubebuilder:validation:XValidation:rule="has(self.secretName) != has(self.issuer)",message="exactly one of ingress.tls.secretName and ingress.tls.issuer must be set"
type IngressTLS struct {
	// SecretName of an existing kubernetes.io/tls Secret holding the certificate.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// Issuer is the cert-manager Issuer or ClusterIssuer that obtains the certificate.
	// +optional
	Issuer *CertManagerIssuer `json:"issuer,omitempty"`
}

// CertManagerIssuer names a cert-manager issuer.
type CertManagerIssuer struct {
	// Name of the issuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	Name string `json:"name"`

	// Kind of the issuer: Issuer (in the instance's namespace) or ClusterIssuer.
	// +kubebuilder:default=Issuer
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +optional
	Kind string `json:"kind,omitempty"`
}

// BackupSpec schedules logical backups of an instance's database.
type BackupSpec struct {
	// Schedule in cron format ("minute hour day-of-month month day-of-week", each field *, a
	// value in range, a range, a list, with an optional /step) or a descriptor such as @daily, in
	// the controller's time zone (UTC).
	// +kubebuilder:default="0 3 * * *"
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\*|[1-5]?[0-9](-[1-5]?[0-9])?)(/[1-9][0-9]?)?(,(\*|[1-5]?[0-9](-[1-5]?[0-9])?)(/[1-9][0-9]?)?)* +(\*|(1?[0-9]|2[0-3])(-(1?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?(,(\*|(1?[0-9]|2[0-3])(-(1?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?)* +(\*|\?|([1-9]|[12][0-9]|3[01])(-([1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?(,(\*|\?|([1-9]|[12][0-9]|3[01])(-([1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?)* +(\*|([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]?)?(,(\*|([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]?)?)* +(\*|\?|([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]?)?(,(\*|\?|([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]?)?)*)$`
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// Retention says which backups are kept. When a scheduled run completes, the operator deletes
	// the KintoBackups it drops, on-demand ones included, each with its dump.
	// +kubebuilder:default={count:7}
	// +optional
	Retention *BackupRetention `json:"retention,omitempty"`

	// Destination is where backups are written: a volume of the instance's (the default) or
	// S3-compatible object storage.
	// +kubebuilder:default={volume:{}}
	// +optional
	Destination *BackupDestination `json:"destination,omitempty"`

	// Verify restores the newest completed backup on a schedule into a throw-away PostgreSQL
	// server in a Job, checks Kinto's schema and that it gives back as many buckets,
	// collections, records and groups as the dump recorded, and reports the condition
	// BackupVerified and status.backupVerification. On by default, weekly.
	// +kubebuilder:default={schedule:"0 5 * * 0"}
	// +optional
	Verify *BackupVerify `json:"verify,omitempty"`

	// Encryption seals every backup in its pod, with age, for the public keys listed, before it
	// leaves the pod: the backup volume or the bucket holds only ciphertext, which neither the
	// host nor the object store can read. Restoring one then takes a matching private key
	// (spec.bootstrap.fromBackup.decryptionKey). The operator holds no private key, so the
	// verifications (verify) skip encrypted backups and say so.
	// +optional
	Encryption *BackupEncryption `json:"encryption,omitempty"`
}

// BackupEncryption lists whom an instance's backups are encrypted for.
type BackupEncryption struct {
	// Recipients are age public keys (age1..., as age-keygen prints them, X25519): any one of
	// their private keys opens the backups. List a second key kept apart, so that losing one key
	// loses no backup.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	Recipients []AgeRecipient `json:"recipients"`
}

// AgeRecipient is an age X25519 public key: age1 and 58 bech32 characters.
// +kubebuilder:validation:MaxLength=62
// +kubebuilder:validation:XValidation:rule="self.matches('^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$')",message="must be an age public key: age1 and 58 lower-case letters and digits, as age-keygen prints it (never the private key, AGE-SECRET-KEY-1...)"
type AgeRecipient string

// BackupVerify schedules the verification of an instance's backups.
// Each verification restores a whole backup: a tenant may not ask for more than one an hour.
// +kubebuilder:validation:XValidation:rule="!has(self.schedule) || self.schedule.startsWith('@') || self.schedule.matches('^[1-5]?[0-9] ')",message="backup.verify.schedule runs at most once an hour: its minute field must be a single number (such as 0), as each verification restores a whole backup",fieldPath=".schedule"
type BackupVerify struct {
	// Schedule of the verifications, in the cron format of backup.schedule (UTC). Each restores
	// the newest completed backup at that time.
	// +kubebuilder:default="0 5 * * 0"
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\*|[1-5]?[0-9](-[1-5]?[0-9])?)(/[1-9][0-9]?)?(,(\*|[1-5]?[0-9](-[1-5]?[0-9])?)(/[1-9][0-9]?)?)* +(\*|(1?[0-9]|2[0-3])(-(1?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?(,(\*|(1?[0-9]|2[0-3])(-(1?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?)* +(\*|\?|([1-9]|[12][0-9]|3[01])(-([1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?(,(\*|\?|([1-9]|[12][0-9]|3[01])(-([1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?)* +(\*|([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]?)?(,(\*|([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-([1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]?)?)* +(\*|\?|([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]?)?(,(\*|\?|([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]?)?)*)$`
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// Disabled stops the verifications; the condition BackupVerified goes.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
}

// BackupDestination is where an instance's backups are written; exactly one field is set.
// +kubebuilder:validation:XValidation:rule="has(self.volume) != has(self.s3)",message="exactly one of backup.destination.volume and backup.destination.s3 must be set"
type BackupDestination struct {
	// Volume keeps backups on a PersistentVolumeClaim of the instance, <instance>-backups.
	// +optional
	Volume *BackupVolume `json:"volume,omitempty"`

	// S3 writes backups to a bucket of S3-compatible object storage, under
	// <prefix>/<namespace>/<instance>/<UTC time>.dump.
	// +optional
	S3 *S3Destination `json:"s3,omitempty"`
}

// BackupVolume is the volume that holds an instance's backups.
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storageClassName cannot change after creation",fieldPath=".storageClassName"
type BackupVolume struct {
	// Size of the backup volume. It may grow (where the storage class allows volume expansion)
	// but never shrink.
	// +kubebuilder:default="5Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="size must be positive"
	// +kubebuilder:validation:XValidation:rule="string(self).matches('^[0-9]+(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$') && quantity(string(self)).compareTo(quantity('1Pi')) <= 0",message="size must be a whole number of bytes with an optional unit (such as 512Mi or 20Gi), at most 1Pi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0",message="size cannot shrink"
	// +optional
	Size resource.Quantity `json:"size,omitempty"`

	// StorageClassName of the backup volume; the cluster's default class when unset.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// S3Connection is how to reach a bucket of S3-compatible object storage.
type S3Connection struct {
	// Endpoint of the object storage, host[:port] or https://host[:port], such as
	// s3.eu-west-1.amazonaws.com or https://minio.example.org:9000. TLS is used unless insecure
	// is set.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^(https?://)?[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?/?$`
	Endpoint string `json:"endpoint"`

	// Bucket, which must exist: an S3 bucket name (lower-case letters, digits, '.' and '-'; not an
	// IP address; no '..', '.-' or '-.').
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",message="bucket must not be an IP address"
	// +kubebuilder:validation:XValidation:rule="!self.contains('..') && !self.contains('.-') && !self.contains('-.')",message="bucket must not hold '..', '.-' or '-.'"
	Bucket string `json:"bucket"`

	// Region of the bucket; asked of the endpoint when unset.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]*$`
	// +optional
	Region string `json:"region,omitempty"`

	// Credentials are the access key pair, read from Secrets of the instance's namespace.
	Credentials S3Credentials `json:"credentials"`

	// Insecure talks plain http to the endpoint: only for object storage inside the cluster or on
	// a trusted network.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// CABundle is a Secret key holding PEM certificates to trust besides the system's, for
	// object storage with a private certificate authority.
	// +optional
	CABundle *SecretKeyRef `json:"caBundle,omitempty"`
}

// S3Credentials are an access key pair of S3-compatible object storage.
type S3Credentials struct {
	// AccessKeyID is the Secret key holding the access key id.
	AccessKeyID SecretKeyRef `json:"accessKeyID"`
	// SecretAccessKey is the Secret key holding the secret access key.
	SecretAccessKey SecretKeyRef `json:"secretAccessKey"`
}

// S3Destination is a folder of a bucket that backups are written to.
// +kubebuilder:validation:XValidation:rule="!(has(self.insecure) && self.insecure && self.endpoint.startsWith('https://'))",message="an https:// endpoint cannot be insecure: drop insecure, or the scheme",fieldPath=".insecure"
type S3Destination struct {
	S3Connection `json:",inline"`

	// Prefix is the folder of the bucket the backups go in: an instance's dumps are written to
	// <prefix>/<namespace>/<instance>/<UTC time>.dump, so that instances of several namespaces
	// may share a bucket and prefix.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9!_.*'()-]+/)*[A-Za-z0-9!_.*'()-]*$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '.' || s == '..')",message="prefix must not hold '.' or '..' as a folder"
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// BootstrapSpec says what a new instance's database starts with.
// +kubebuilder:validation:XValidation:rule="has(self.fromBackup) != has(self.fromPortable)",message="exactly one of bootstrap.fromBackup and bootstrap.fromPortable must be set"
type BootstrapSpec struct {
	// FromBackup restores a backup into the new database, then runs `kinto migrate`, so that a
	// backup of an older Kinto release comes up on the instance's release.
	// +optional
	FromBackup *BackupSource `json:"fromBackup,omitempty"`

	// FromPortable loads a portable export (kinto-wizard's YAML) through Kinto's HTTP API into
	// the new database once `kinto migrate` has made it, before the server starts: an export
	// of any Kinto server, of any release.
	// +optional
	FromPortable *PortableSource `json:"fromPortable,omitempty"`
}

// PortableSource is the portable export an instance starts from: a Portable KintoBackup of the
// namespace, or an export in object storage.
// +kubebuilder:validation:XValidation:rule="[has(self.backupName), has(self.s3), has(self.server)].filter(x, x).size() == 1",message="exactly one of fromPortable.backupName, fromPortable.s3 and fromPortable.server must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.server) || !has(self.decryptionKey)",message="a server is read live through its API, never encrypted: drop decryptionKey",fieldPath=".decryptionKey"
type PortableSource struct {
	// BackupName is a completed Portable KintoBackup in the instance's namespace.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	BackupName string `json:"backupName,omitempty"`

	// S3 is an export in S3-compatible object storage.
	// +optional
	S3 *PortableS3Source `json:"s3,omitempty"`

	// Server is another Kinto server, read live through its API as kinto-wizard dump reads it.
	// +optional
	Server *PortableServerSource `json:"server,omitempty"`

	// DecryptionKey is the Secret key holding the age private key (an identity file, as
	// age-keygen writes it) that opens an encrypted export: one of the keys
	// spec.backup.encryption listed when it was taken. Only the import's pod reads it.
	// +optional
	DecryptionKey *SecretKeyRef `json:"decryptionKey,omitempty"`
}

// PortableServerSource is a Kinto server an instance starts from, read through its API as the
// identity of Credentials sees it. Its URL is checked as a KintoMirror's remote url is.
// +kubebuilder:validation:XValidation:rule="self.url.startsWith('https://') || (has(self.insecure) && self.insecure && self.url.startsWith('http://'))",message="must be an https:// URL (http:// only with insecure: true)",fieldPath=".url"
type PortableServerSource struct {
	// URL of the Kinto server's API, such as https://kinto.example.org/v1: https, reached
	// outside the cluster only (its pods' and Services' addresses are refused by the import's
	// network policy). No user, query or fragment: the identity is Credentials'.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[-A-Za-z0-9._~%/]*)?$`
	URL string `json:"url"`

	// Insecure lets url be plain http: only for a server on a trusted network.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// Credentials are the identity the server is read as: what it lets that identity read is
	// what the instance starts with.
	Credentials KintoCredentials `json:"credentials"`
}

// PortableS3Source is one portable export in a bucket.
// +kubebuilder:validation:XValidation:rule="!(has(self.insecure) && self.insecure && self.endpoint.startsWith('https://'))",message="an https:// endpoint cannot be insecure: drop insecure, or the scheme",fieldPath=".insecure"
type PortableS3Source struct {
	S3Connection `json:",inline"`

	// Key of the export in the bucket: status.key of a Portable KintoBackup (such as
	// backups/coop/notes/20261126T030000Z.dump, YAML inside), or a kinto-wizard file ending in
	// .yaml or .yml (.age after it when encrypted with age).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9!_.*'()-]+/)*([0-9]{8}T[0-9]{6}Z\.dump|[A-Za-z0-9!_*'()-][A-Za-z0-9!_.*'()-]*\.ya?ml(\.age)?)$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '.' || s == '..')",message="key must not hold '.' or '..' as a folder"
	Key string `json:"key"`

	// SHA256 the export must have, hexadecimal, as its KintoBackup reported. Unset, the
	// checksum stored with the object when it was uploaded is checked.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	// +optional
	SHA256 string `json:"sha256,omitempty"`
}

// BackupSource is the backup an instance starts from: a KintoBackup of the namespace, or a dump
// in object storage (such as one written on another host).
// +kubebuilder:validation:XValidation:rule="has(self.backupName) != has(self.s3)",message="exactly one of fromBackup.backupName and fromBackup.s3 must be set"
type BackupSource struct {
	// BackupName is a completed KintoBackup in the instance's namespace.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	BackupName string `json:"backupName,omitempty"`

	// S3 is a dump in S3-compatible object storage.
	// +optional
	S3 *S3Source `json:"s3,omitempty"`

	// DecryptionKey is the Secret key holding the age private key (an identity file, as
	// age-keygen writes it) that opens an encrypted backup: one of the keys spec.backup.encryption
	// listed when it was taken. Only the restore's pod reads it; the operator checks that it
	// matches the backup, and never copies it elsewhere. Delete the Secret once restored.
	// +optional
	DecryptionKey *SecretKeyRef `json:"decryptionKey,omitempty"`
}

// S3Source is one dump in a bucket.
// +kubebuilder:validation:XValidation:rule="!(has(self.insecure) && self.insecure && self.endpoint.startsWith('https://'))",message="an https:// endpoint cannot be insecure: drop insecure, or the scheme",fieldPath=".insecure"
type S3Source struct {
	S3Connection `json:",inline"`

	// Key of the dump in the bucket, such as backups/coop/notes/20261126T030000Z.dump.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9!_.*'()-]+/)*[0-9]{8}T[0-9]{6}Z\.dump$`
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '.' || s == '..')",message="key must not hold '.' or '..' as a folder"
	Key string `json:"key"`

	// SHA256 the dump must have, hexadecimal, as its KintoBackup reported. Unset, the checksum
	// stored with the object when it was uploaded is checked.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	// +optional
	SHA256 string `json:"sha256,omitempty"`
}

// BackupRetention says which backups are kept; a backup is pruned when either bound drops it.
// +kubebuilder:validation:XValidation:rule="has(self.count) || has(self.maxAge)",message="backup.retention needs count, maxAge or both"
type BackupRetention struct {
	// Count of the newest backups to keep.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Count *int32 `json:"count,omitempty"`

	// MaxAge of the backups to keep, in hours, days or weeks, such as "72h", "30d" or "8w".
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{0,4}(h|d|w)$`
	// +optional
	MaxAge string `json:"maxAge,omitempty"`
}

// Condition types of a KintoInstance.
const (
	// ConditionReady is true when the instance serves requests with its data.
	ConditionReady = "Ready"
	// ConditionDatabaseReady is true when the database accepts connections.
	ConditionDatabaseReady = "DatabaseReady"
	// ConditionSchemaMigrated is true when the database schema matches the requested version.
	ConditionSchemaMigrated = "SchemaMigrated"
	// ConditionServerReady is true when every Kinto server pod of the current revision is ready.
	ConditionServerReady = "ServerReady"
	// ConditionHibernating is present, and true, while spec.hibernate keeps the instance at zero
	// pods.
	ConditionHibernating = "Hibernating"
	// ConditionRestored is present on an instance that starts from a backup (spec.bootstrap):
	// true once the backup is restored into its database.
	ConditionRestored = "Restored"
	// ConditionBackupHealthy is present on an instance that is backed up (spec.backup, or its
	// hosting class's): false when the last backup failed, or when the newest good one is older
	// than twice the schedule's interval.
	ConditionBackupHealthy = "BackupHealthy"
	// ConditionBackupVerified is present on an instance whose backups are verified
	// (spec.backup.verify): true when the last verification restored its backup, with Kinto's
	// schema and the counts the dump recorded; false when it failed.
	ConditionBackupVerified = "BackupVerified"
	// ConditionHostingClass says whether the instance fits its hosting class: true when its
	// class applies (reason Applied) or it has none (NoClass); false when the class named is
	// missing (ClassNotFound), several classes are marked default (SeveralDefaultClasses), or the
	// instance asks for more than its class allows (ExceedsClass). While false, the operator
	// changes none of the instance's objects.
	ConditionHostingClass = "HostingClass"
	// ConditionRollingOut is present while a change rolls the instance's running pods: true while
	// the instance holds one of the operator's rollout slots (--max-concurrent-rollouts), false
	// while it waits for one, its pods running as they were.
	ConditionRollingOut = "RollingOut"
	// ConditionVolumesSized is present, and false, while a volume claim of the instance is
	// smaller than its spec asks and cannot grow: its StorageClass does not allow volume
	// expansion (reason ExpansionNotAllowed), or the claim is not bound yet (NotBound). The
	// volume keeps its size meanwhile, and the instance runs on.
	ConditionVolumesSized = "VolumesSized"
	// ConditionExposed is present on an instance with a public host (an Ingress or a Gateway
	// route): true when the host is the instance's, false (HostTaken) when another instance
	// served it first, which keeps it; the instance then gets no Ingress or route. False
	// (Refused) when the API server refuses the Ingress or route, in its words: the instance's
	// other objects are applied all the same.
	ConditionExposed = "Exposed"
	// ConditionDatabaseUpgraded is present once spec.database.managed.version asked for a new
	// PostgreSQL major: false while the upgrade runs (reason: its phase) or after it was rolled
	// back (RolledBack) or refused (DowngradeRefused); true once it succeeded.
	ConditionDatabaseUpgraded = "DatabaseUpgraded"
	// ConditionRelease is present on an instance that follows a release catalogue
	// (spec.updates): true while it runs, or moves to, a release of the catalogue; false when the
	// catalogue is missing (CatalogNotFound), lacks the release the instance runs (NotInCatalog:
	// its objects are left as they are), or withdrew it (Withdrawn: it keeps running until an
	// update within its policy comes).
	ConditionRelease = "Release"
	// ConditionUpgraded is present once the instance went through a safe upgrade: false while
	// one runs (its reason is the phase) or after it was rolled back (RolledBack), true after it
	// succeeded (Succeeded); false while a new version waits for a hibernating instance to be
	// woken (WaitingForWake).
	ConditionUpgraded = "Upgraded"
)

// UpgradePhase is where a safe upgrade is.
// +kubebuilder:validation:Enum=ClosingWrites;BackingUp;Migrating;Starting;HealthGate;RollingBack;Succeeded;RolledBack
type UpgradePhase string

// The phases of a safe upgrade, in order; RollingBack comes after any failure from the
// migration on.
const (
	// UpgradeClosingWrites: the server rolls to Kinto's read-only mode (writes answer 405).
	UpgradeClosingWrites UpgradePhase = "ClosingWrites"
	// UpgradeBackingUp: writes are closed; the upgrade's KintoBackup (or its safety dump) is
	// taken.
	UpgradeBackingUp UpgradePhase = "BackingUp"
	// UpgradeMigrating: the migration Job of the new release runs.
	UpgradeMigrating UpgradePhase = "Migrating"
	// UpgradeStarting: the new release's pods start, read-only.
	UpgradeStarting UpgradePhase = "Starting"
	// UpgradeHealthGate: the health gate Job watches the new release.
	UpgradeHealthGate UpgradePhase = "HealthGate"
	// UpgradeRollingBack: the upgrade's backup (or safety dump) is restored, then the previous
	// release runs.
	UpgradeRollingBack UpgradePhase = "RollingBack"
	// UpgradeSucceeded: the new release serves, writes are open.
	UpgradeSucceeded UpgradePhase = "Succeeded"
	// UpgradeRolledBack: the previous release serves the backup, writes are open; the release
	// upgraded to is not tried again until spec.version or spec.image changes.
	UpgradeRolledBack UpgradePhase = "RolledBack"
)

// UpgradeStatus is the last safe upgrade of the instance, running or done.
type UpgradeStatus struct {
	// Phase is where the upgrade is.
	Phase UpgradePhase `json:"phase"`
	// From is the release the instance ran before; To the release upgraded to, and Image its
	// image. After a rollback they are the release (and image) that failed.
	From  string `json:"from"`
	To    string `json:"to"`
	Image string `json:"image,omitempty"`
	// StartedAt is when the upgrade began; PhaseSince when its phase did.
	StartedAt  metav1.Time `json:"startedAt"`
	PhaseSince metav1.Time `json:"phaseSince"`
	// WritesClosedAt is when the last pod taking writes was gone; WritesOpenedAt when, after
	// success or rollback, every server pod was ready and took writes again.
	// +optional
	WritesClosedAt *metav1.Time `json:"writesClosedAt,omitempty"`
	// +optional
	WritesOpenedAt *metav1.Time `json:"writesOpenedAt,omitempty"`
	// Backup is the KintoBackup taken once writes were closed: what a rollback restores.
	// +optional
	Backup string `json:"backup,omitempty"`
	// SafetyDump, instead of Backup when the instance's backups cannot serve a rollback (no
	// spec.backup destination, or backups encrypted to keys the operator does not hold), is the
	// file of the upgrade's own dump on its scratch volume, <instance>-upgrade-dump. It is not a
	// backup: it never leaves the cluster, is listed nowhere else, and goes with its volume once
	// the upgrade has ended.
	// +optional
	SafetyDump string `json:"safetyDump,omitempty"`
	// Baseline is what a few objects answered before the migration, read as their owners read
	// them, by path (fingerprints of their data, never the data): the health gate compares the
	// new release's answers to it.
	// +optional
	Baseline map[string]string `json:"baseline,omitempty"`
	// Failure says why the upgrade was rolled back.
	// +optional
	Failure string `json:"failure,omitempty"`
}

// KintoInstanceStatus is the observed state of a KintoInstance.
type KintoInstanceStatus struct {
	// ObservedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, HostingClass, DatabaseReady, SchemaMigrated, ServerReady; Restored for
	// an instance that starts from a backup; BackupHealthy when it is backed up (spec.backup, or
	// its class's); Hibernating while the instance hibernates; RollingOut while a change rolls its
	// running pods, or waits to; Exposed with a public host; VolumesSized while a volume cannot
	// have the size its spec asks for; DatabaseUpgraded once a new PostgreSQL major was asked for.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ClassName is the KintoHostingClass whose defaults and bounds the instance's objects were
	// last made with; empty when no class applies.
	// +optional
	ClassName string `json:"className,omitempty"`

	// URL where clients reach the Kinto API.
	// +optional
	URL string `json:"url,omitempty"`

	// Version is the Kinto release the database schema is migrated to and the server runs.
	// +optional
	Version string `json:"version,omitempty"`

	// Replicas is the number of Kinto server pods (for the scale subresource).
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of Kinto server pods ready to serve.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// Selector of the Kinto server pods, in label-selector string form (for the scale subresource).
	// +optional
	Selector string `json:"selector,omitempty"`

	// LastBackup is the newest backup of the instance that succeeded.
	// +optional
	LastBackup *LastBackup `json:"lastBackup,omitempty"`

	// BackupVerification is the last scheduled verification of a backup (spec.backup.verify).
	// +optional
	BackupVerification *BackupVerification `json:"backupVerification,omitempty"`

	// Database is the managed PostgreSQL server serving the instance, and its last major
	// upgrade.
	// +optional
	Database *DatabaseStatus `json:"database,omitempty"`

	// Updates is what the release catalogue offers an instance that follows it (spec.updates).
	// +optional
	Updates *UpdatesStatus `json:"updates,omitempty"`

	// Upgrade is the last safe upgrade, running or done (see spec.upgrade).
	// +optional
	Upgrade *UpgradeStatus `json:"upgrade,omitempty"`
}

// DatabaseStatus is the managed PostgreSQL server that serves an instance.
type DatabaseStatus struct {
	DatabaseServerRef `json:",inline"`
	// Upgrade is the last major upgrade, under way or done.
	// +optional
	Upgrade *DatabaseUpgrade `json:"upgrade,omitempty"`
}

// DatabaseUpgradePhase is the step a PostgreSQL major upgrade is at.
type DatabaseUpgradePhase string

const (
	// DatabaseUpgradeClosingWrites: the Kinto server rolls to Kinto's read-only mode (reads are
	// served, writes refused with Kinto's own error), so that nothing is written after the dump;
	// the phase ends once no pod taking writes is left, terminating ones included.
	DatabaseUpgradeClosingWrites DatabaseUpgradePhase = "ClosingWrites"
	// DatabaseUpgradeStartingServer: the new major's server starts on its new volume.
	DatabaseUpgradeStartingServer DatabaseUpgradePhase = "StartingServer"
	// DatabaseUpgradeCopying: a Job dumps the old server and restores the dump into the new one.
	DatabaseUpgradeCopying DatabaseUpgradePhase = "Copying"
	// DatabaseUpgradeSwitching: the Kinto server rolls back to read-write, on the new server;
	// the upgrade succeeds once every pod is ready on it.
	DatabaseUpgradeSwitching DatabaseUpgradePhase = "Switching"
	// DatabaseUpgradeSucceeded: the instance is served by the new major; the old volume is kept
	// until oldVolumeRetention has passed.
	DatabaseUpgradeSucceeded DatabaseUpgradePhase = "Succeeded"
	// DatabaseUpgradeCompleted: the upgrade succeeded and the old volume is deleted.
	DatabaseUpgradeCompleted DatabaseUpgradePhase = "Completed"
	// DatabaseUpgradeRolledBack: the new server did not start, the copy failed or the Kinto
	// server did not get ready on it: the instance runs on the old volume, as before. The new
	// volume is kept; deleting it starts the upgrade again.
	DatabaseUpgradeRolledBack DatabaseUpgradePhase = "RolledBack"
)

// DatabaseUpgrade is one PostgreSQL major upgrade of an instance.
type DatabaseUpgrade struct {
	// From and To are the majors it goes between.
	From string `json:"from"`
	To   string `json:"to"`
	// Phase it is at.
	Phase DatabaseUpgradePhase `json:"phase"`
	// StartedAt is when it began; PhaseStartedAt, when it reached its phase.
	StartedAt      metav1.Time `json:"startedAt"`
	PhaseStartedAt metav1.Time `json:"phaseStartedAt"`
	// WritesClosedAt is when the last pod taking writes was gone; WritesOpenedAt when writes
	// opened again (on the new server, or the old one after a roll-back). Reads are served
	// throughout, by the read-only server.
	// +optional
	WritesClosedAt *metav1.Time `json:"writesClosedAt,omitempty"`
	// +optional
	WritesOpenedAt *metav1.Time `json:"writesOpenedAt,omitempty"`
	// Previous is the server the instance ran on before: kept until the upgrade succeeded and
	// oldVolumeRetention has passed; after a roll-back, the server it runs on again.
	Previous DatabaseServerRef `json:"previous"`
	// Message says what it waits for, or why it was rolled back.
	// +optional
	Message string `json:"message,omitempty"`
}

// DatabaseServerRef names one PostgreSQL server of an instance.
type DatabaseServerRef struct {
	// Version is the PostgreSQL major it runs.
	Version string `json:"version"`
	// Image it runs.
	Image string `json:"image"`
	// StatefulSet running it, and VolumeClaim holding its data: the instance's first server's
	// are <instance>-postgres and <instance>-pgdata, a major upgrade's carry its major
	// (<instance>-postgres-v17, <instance>-pgdata-v17).
	StatefulSet string `json:"statefulSet"`
	VolumeClaim string `json:"volumeClaim"`
}

// BackupVerification is one verification of a backup by restoring it.
type BackupVerification struct {
	// ScheduledAt is the run of spec.backup.verify.schedule it is.
	ScheduledAt metav1.Time `json:"scheduledAt"`
	// Backup is the KintoBackup verified; empty when there was none to verify.
	// +optional
	Backup string `json:"backup,omitempty"`
	// Location of its dump.
	// +optional
	Location string `json:"location,omitempty"`
	// VerifiedAt is when the verification ended.
	// +optional
	VerifiedAt *metav1.Time `json:"verifiedAt,omitempty"`
	// Succeeded says whether the dump restored with Kinto's schema and the counts it recorded.
	Succeeded bool `json:"succeeded"`
	// Counts of the live objects of each resource type the restore gave back.
	// +optional
	Counts map[string]int64 `json:"counts,omitempty"`
	// Error says why the verification failed.
	// +optional
	Error string `json:"error,omitempty"`
}

// LastBackup describes an instance's newest good backup.
type LastBackup struct {
	// Name of its KintoBackup.
	Name string `json:"name"`
	// CompletedAt is when it was written.
	CompletedAt metav1.Time `json:"completedAt"`
	// Location of the dump, such as s3://bucket/prefix/namespace/notes/20261126T030000Z.dump or
	// pvc://notes-backups/20261126T030000Z.dump.
	Location string `json:"location"`
	// Size of the dump in bytes.
	Size int64 `json:"size"`
}

// KintoInstance is one Kinto server, its database and everything it needs to serve users.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=kinto;ki,categories=kinto-hosting
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.status.className`,priority=1
// +kubebuilder:printcolumn:name="Update",type=string,JSONPath=`.status.updates.available`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label of at most 63 characters starting with a letter: it names the instance's Services and labels its pods"
type KintoInstance struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec   KintoInstanceSpec   `json:"spec,omitempty"`
	Status KintoInstanceStatus `json:"status,omitempty"`
}

// KintoInstanceList is a list of KintoInstances.
// +kubebuilder:object:root=true
type KintoInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KintoInstance `json:"items"`
}

// PublicEndpoint is the scheme and host clients reach the instance at through its Ingress or
// Gateway, or empty strings when it is exposed by neither.
func (s *KintoInstanceSpec) PublicEndpoint() (scheme, host string) {
	switch {
	case s.Ingress != nil && s.Ingress.TLS != nil:
		return "https", s.Ingress.Host
	case s.Ingress != nil:
		return "http", s.Ingress.Host
	case s.Gateway != nil:
		return s.Gateway.Scheme, s.Gateway.Host
	}
	return "", ""
}

// ManagedDatabase is the spec of the managed database, or nil for an external one.
func (s *KintoInstanceSpec) ManagedDatabase() *ManagedDatabase {
	if s.Database == nil {
		return nil
	}
	return s.Database.Managed
}

// ExternalDatabase is the spec of the external database, or nil for a managed one.
func (s *KintoInstanceSpec) ExternalDatabase() *ExternalDatabase {
	if s.Database == nil {
		return nil
	}
	return s.Database.External
}

// AccountsEnabled says whether Kinto accounts are on.
func (s *KintoInstanceSpec) AccountsEnabled() bool {
	return s.Auth != nil && s.Auth.Accounts != nil && s.Auth.Accounts.Enabled
}

// OpenIDConnectProviders lists the instance's OpenID Connect providers.
func (s *KintoInstanceSpec) OpenIDConnectProviders() []OpenIDConnectProvider {
	if s.Auth == nil {
		return nil
	}
	return s.Auth.OpenIDConnect
}
