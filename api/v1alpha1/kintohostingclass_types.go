package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KintoHostingClassSpec is what a host offers instances as one plan: the defaults an instance
// gets for what it leaves unset, and the bounds of what it may ask for. An instance outside its
// class's bounds is held (condition HostingClass=False, reason ExceedsClass): its running objects
// stay as they were until it fits again.
type KintoHostingClassSpec struct {
	// Default makes this the class of the instances that name none (spec.className unset). At
	// most one class should be the default: while several are, those instances are held, with
	// condition HostingClass=False, reason SeveralDefaultClasses.
	// +optional
	Default bool `json:"default,omitempty"`

	// NamespaceSelector offers the class to the instances of the namespaces it selects only, so
	// that a tenant cannot pick a plan meant for others: an instance elsewhere that names the
	// class is held (HostingClass=False, reason ClassNotAllowed), and, as a default class, the
	// class hosts only the instances of those namespaces. Every namespace when unset.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="namespaceSelector.matchExpressions operators are In, NotIn, Exists and DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",message="namespaceSelector.matchExpressions need values for In and NotIn, and none for Exists and DoesNotExist"
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Replicas of the Kinto server.
	// +optional
	Replicas *ReplicasPolicy `json:"replicas,omitempty"`

	// Resources of the Kinto server container (and of the migration Job, which runs the same
	// container).
	// +optional
	Resources *ResourcesPolicy `json:"resources,omitempty"`

	// Storage of the managed database's volume.
	// +optional
	Storage *StoragePolicy `json:"storage,omitempty"`

	// Backup is the backup policy and destination of the instances that set no spec.backup. An
	// S3 destination is one bucket shared by every tenant, each namespace in its own folder
	// (<prefix>/<namespace>/): the Secrets it names are read in the operator's namespace and never
	// enter a tenant's, whose Jobs are each given a URL, signed by the operator, for the one dump
	// they write, read or delete.
	// +optional
	Backup *BackupSpec `json:"backup,omitempty"`

	// DatabaseResources bounds the PostgreSQL container of a managed database: the most an
	// instance may request, or set as a limit, of each resource named; an instance must then set a
	// limit for each of them.
	// +optional
	DatabaseResources ResourceBounds `json:"databaseResources,omitempty"`

	// BackupLimits bound the backups instances take: how many they keep, how often they run,
	// how large their volume is.
	// +optional
	BackupLimits *BackupLimits `json:"backupLimits,omitempty"`

	// Pods bounds what an instance's pods run and where: its own images, priority classes and
	// placement on nodes. Unset: any.
	// +optional
	Pods *PodsPolicy `json:"pods,omitempty"`

	// AllowedPlugins are the plugins instances may enable; any plugin when unset. An instance
	// that leaves spec.plugins unset asks for admin.
	// +kubebuilder:validation:MaxItems=8
	// +listType=set
	// +optional
	AllowedPlugins []Plugin `json:"allowedPlugins,omitempty"`

	// AllowedAuth are the authentication methods instances may use; any method when unset. An
	// instance that leaves spec.auth unset asks for accounts.
	// +optional
	AllowedAuth *AllowedAuth `json:"allowedAuth,omitempty"`

	// DomainTemplate gives each instance that has neither spec.ingress nor spec.gateway an
	// Ingress under a host name of its own: {name} and {namespace} are replaced by the instance's
	// name and namespace, such as {name}.{namespace}.kinto.example.org: both, so that every
	// tenant's instance gets a host no other tenant's can.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.contains('{name}') && self.contains('{namespace}')",message="domainTemplate must hold {name} and {namespace}: each instance of each tenant needs a host of its own"
	// +kubebuilder:validation:XValidation:rule="self.replace('{name}', 'x').replace('{namespace}', 'x').matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="domainTemplate must be a lower-case DNS name once {name} and {namespace}, its only placeholders, are filled in, such as {name}.{namespace}.kinto.example.org"
	// +optional
	DomainTemplate string `json:"domainTemplate,omitempty"`

	// Updates names the release catalogue of the instances that follow one (their spec.updates),
	// the updates they take by themselves and when.
	// +optional
	Updates *ClassUpdates `json:"updates,omitempty"`

	// Ingress is how the Ingress of domainTemplate is made; its className also goes to the
	// Ingress of an instance whose spec.ingress names no class.
	// +optional
	Ingress *ClassIngress `json:"ingress,omitempty"`
}

// ReplicasPolicy bounds the number of Kinto server pods.
// +kubebuilder:validation:XValidation:rule="!has(self.default) || !has(self.max) || self.default <= self.max",message="replicas.default must not be above replicas.max",fieldPath=".default"
type ReplicasPolicy struct {
	// Default number of server pods of an instance that sets no spec.replicas; 1 when unset.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	// +optional
	Default *int32 `json:"default,omitempty"`

	// Max is the most server pods an instance may ask for.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	// +optional
	Max *int32 `json:"max,omitempty"`
}

// ResourcesPolicy bounds the resources of the Kinto server container.
// +kubebuilder:validation:XValidation:rule="!has(self.max) || has(self.default) && has(self.default.limits) && self.max.all(k, k in self.default.limits && quantity(string(self.default.limits[k])).compareTo(quantity(string(self.max[k]))) <= 0)",message="resources.default.limits must set every resource resources.max bounds, within that bound",fieldPath=".default"
// +kubebuilder:validation:XValidation:rule="!has(self.max) || !has(self.default) || !has(self.default.requests) || self.max.all(k, !(k in self.default.requests) || quantity(string(self.default.requests[k])).compareTo(quantity(string(self.max[k]))) <= 0)",message="resources.default.requests must be within resources.max",fieldPath=".default"
type ResourcesPolicy struct {
	// Default resources of an instance that sets no spec.resources; requests of 50m CPU and
	// 128Mi of memory and a memory limit of 512Mi when unset.
	// +kubebuilder:validation:XValidation:rule="(!has(self.requests) || !('cpu' in self.requests) || !quantity(string(self.requests['cpu'])).isLessThan(quantity('0'))) && (!has(self.requests) || !('memory' in self.requests) || !quantity(string(self.requests['memory'])).isLessThan(quantity('0'))) && (!has(self.requests) || !('ephemeral-storage' in self.requests) || !quantity(string(self.requests['ephemeral-storage'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('cpu' in self.limits) || !quantity(string(self.limits['cpu'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('memory' in self.limits) || !quantity(string(self.limits['memory'])).isLessThan(quantity('0'))) && (!has(self.limits) || !('ephemeral-storage' in self.limits) || !quantity(string(self.limits['ephemeral-storage'])).isLessThan(quantity('0')))",message="cpu, memory and ephemeral-storage requests and limits must not be negative"
	// +kubebuilder:validation:XValidation:rule="(!has(self.requests) || !has(self.limits) || !('cpu' in self.requests) || !('cpu' in self.limits) || quantity(string(self.requests['cpu'])).compareTo(quantity(string(self.limits['cpu']))) <= 0) && (!has(self.requests) || !has(self.limits) || !('memory' in self.requests) || !('memory' in self.limits) || quantity(string(self.requests['memory'])).compareTo(quantity(string(self.limits['memory']))) <= 0) && (!has(self.requests) || !has(self.limits) || !('ephemeral-storage' in self.requests) || !('ephemeral-storage' in self.limits) || quantity(string(self.requests['ephemeral-storage'])).compareTo(quantity(string(self.limits['ephemeral-storage']))) <= 0)",message="cpu, memory and ephemeral-storage requests must not be above their limits"
	// +optional
	Default *corev1.ResourceRequirements `json:"default,omitempty"`

	// Max is the most an instance may request, or set as a limit, of each resource named. An
	// instance must set a limit for each of them, so that no pod of the plan runs unbounded.
	// +optional
	Max ResourceBounds `json:"max,omitempty"`
}

// ResourceBounds are the most of each resource named, as in a container's resource limits.
// (A corev1.ResourceList, bounded in size so that the API server can afford the class's rules.)
// +kubebuilder:validation:MaxProperties=6
// +kubebuilder:validation:XValidation:rule="self.all(k, quantity(string(self[k])).isGreaterThan(quantity('0')))",message="resources.max bounds must be positive"
type ResourceBounds map[corev1.ResourceName]resource.Quantity

// StoragePolicy bounds the managed database's volume.
// +kubebuilder:validation:XValidation:rule="!has(self.defaultSize) || !has(self.maxSize) || quantity(string(self.defaultSize)).compareTo(quantity(string(self.maxSize))) <= 0",message="storage.defaultSize must not be above storage.maxSize",fieldPath=".defaultSize"
// +kubebuilder:validation:XValidation:rule="!has(self.maxSize) || has(self.defaultSize) || quantity(string(self.maxSize)).compareTo(quantity('1Gi')) >= 0",message="storage.maxSize is below the built-in default size, 1Gi: set storage.defaultSize within it",fieldPath=".maxSize"
type StoragePolicy struct {
	// DefaultSize of the database volume of an instance that sets no storageSize; 1Gi when
	// unset.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="storage.defaultSize must be positive"
	// +kubebuilder:validation:XValidation:rule="string(self).matches('^[0-9]+(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$') && quantity(string(self)).compareTo(quantity('1Pi')) <= 0",message="storage.defaultSize must be a whole number of bytes with an optional unit (such as 512Mi or 20Gi), at most 1Pi"
	// +optional
	DefaultSize *resource.Quantity `json:"defaultSize,omitempty"`

	// MaxSize is the largest database volume an instance may ask for.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="storage.maxSize must be positive"
	// +kubebuilder:validation:XValidation:rule="string(self).matches('^[0-9]+(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$') && quantity(string(self)).compareTo(quantity('1Pi')) <= 0",message="storage.maxSize must be a whole number of bytes with an optional unit (such as 512Mi or 20Gi), at most 1Pi"
	// +optional
	MaxSize *resource.Quantity `json:"maxSize,omitempty"`

	// StorageClassName of the database volume of an instance that sets none; the cluster's
	// default class when unset. It counts when the volume is made: a volume keeps its class.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// BackupLimits bound an instance's backups (its own spec.backup, or the class's).
type BackupLimits struct {
	// MaxCount is the most backups retention may keep: retention.count must be set, within it.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxCount *int32 `json:"maxCount,omitempty"`

	// MinInterval is the shortest time between two scheduled backups, such as 6h: a schedule
	// that runs more often is refused.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="backupLimits.minInterval must be positive"
	// +optional
	MinInterval *metav1.Duration `json:"minInterval,omitempty"`

	// MaxVolumeSize is the largest backup volume an instance may ask for.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="backupLimits.maxVolumeSize must be positive"
	// +optional
	MaxVolumeSize *resource.Quantity `json:"maxVolumeSize,omitempty"`
}

// PodsPolicy says what a class's instances may choose about their pods. Each is refused unless
// allowed: an image of the tenant's choosing runs with the instance's credentials, a priority
// class can preempt other tenants' pods, placement can reach nodes meant for others.
type PodsPolicy struct {
	// AllowImages allows spec.image and spec.database.managed.image.
	// +optional
	AllowImages bool `json:"allowImages,omitempty"`

	// AllowedPriorityClasses are the priority classes spec.priorityClassName may name.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	AllowedPriorityClasses []string `json:"allowedPriorityClasses,omitempty"`

	// AllowPlacement allows spec.nodeSelector, spec.tolerations and spec.affinity.
	// +optional
	AllowPlacement bool `json:"allowPlacement,omitempty"`
}

// AllowedAuth says which authentication methods a class's instances may use.
// +kubebuilder:validation:XValidation:rule="self.accounts || self.basicAuth || self.openIDConnect",message="allowedAuth must allow at least one method: an instance needs one"
type AllowedAuth struct {
	// Accounts allows Kinto accounts (spec.auth.accounts).
	// +optional
	Accounts bool `json:"accounts,omitempty"`

	// BasicAuth allows spec.auth.basicAuth.
	// +optional
	BasicAuth bool `json:"basicAuth,omitempty"`

	// OpenIDConnect allows OpenID Connect providers (spec.auth.openIDConnect).
	// +optional
	OpenIDConnect bool `json:"openIDConnect,omitempty"`
}

// ClassIngress is how a class exposes its instances.
type ClassIngress struct {
	// ClassName is the IngressClass of the Ingresses; the cluster's default class when unset.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	ClassName *string `json:"className,omitempty"`

	// Issuer is the cert-manager issuer of the certificate of domainTemplate's Ingress, served
	// over https; plain http when unset.
	// +optional
	Issuer *CertManagerIssuer `json:"issuer,omitempty"`

	// Annotations of domainTemplate's Ingress, for example for the ingress controller.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// AllowedHostSuffixes, when set, are the DNS suffixes an instance's own host
	// (spec.ingress.host, spec.gateway.host) must end with, such as members.example.org (which
	// allows notes.members.example.org); an empty list allows no host of the instance's own, only
	// domainTemplate's. Unset: any host.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`
	// +optional
	AllowedHostSuffixes []string `json:"allowedHostSuffixes,omitempty"`

	// AllowedAnnotations are the annotation keys an instance may set on its own Ingress
	// (spec.ingress.annotations), such as nginx.ingress.kubernetes.io/proxy-body-size: an
	// annotation is configuration of the shared ingress controller (ingress-nginx's
	// server-snippet is arbitrary proxy configuration), so none is allowed by default, and an
	// instance without a class may set none.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=317
	// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	// +optional
	AllowedAnnotations []string `json:"allowedAnnotations,omitempty"`
}

// KintoHostingClass is a plan a host offers: defaults and bounds for the instances that name it
// (spec.className), or for those that name none when it is the default class.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=khc,categories=kinto-hosting
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KintoHostingClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec KintoHostingClassSpec `json:"spec,omitempty"`
}

// KintoHostingClassList is a list of KintoHostingClasses.
// +kubebuilder:object:root=true
type KintoHostingClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KintoHostingClass `json:"items"`
}
