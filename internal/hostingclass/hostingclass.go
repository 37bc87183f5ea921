// Package hostingclass makes an instance's effective spec under its KintoHostingClass: what the
// instance leaves unset comes from the class, else from the operator's built-in defaults, and what
// it asks for is checked against the class's bounds. The builders of internal/resources take the
// effective instance.
package hostingclass

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
	"github.com/kinto-storage/kinto-operator/internal/catalog"
)

// The built-in defaults of the fields a class may set, for instances under no class or under a
// class that leaves them unset. They are not CRD defaults: the API server would fill them in
// before the operator could tell that the instance left them to its class. The class CRD's rule on
// storage.maxSize repeats builtInStorageSize.
const (
	builtInReplicas    int32 = 1
	builtInStorageSize       = "1Gi"
)

func builtInResources() *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
}

// Effective returns a copy of inst in which each field a class may set is the instance's own
// value, else the class's default, else the built-in default; the class's backups go to an
// instance without spec.backup, and an Ingress under the class's domainTemplate to one exposed
// by neither an Ingress nor a Gateway. It also returns the ways inst exceeds its class, each a
// sentence naming the field and the bound, none when it fits. A nil class is no class: built-in
// defaults and no bounds.
func Effective(inst *v1alpha1.KintoInstance, class *v1alpha1.KintoHostingClass) (*v1alpha1.KintoInstance, []string) {
	out := inst.DeepCopy()
	var c v1alpha1.KintoHostingClassSpec
	if class != nil {
		c = class.Spec
	}
	s := &out.Spec
	if s.Replicas == nil {
		s.Replicas = ptr.To(ptr.Deref(ptr.Deref(c.Replicas, v1alpha1.ReplicasPolicy{}).Default, builtInReplicas))
	}
	if s.Resources == nil {
		s.Resources = builtInResources()
		if d := ptr.Deref(c.Resources, v1alpha1.ResourcesPolicy{}).Default; d != nil {
			s.Resources = d.DeepCopy()
		}
	}
	storage := ptr.Deref(c.Storage, v1alpha1.StoragePolicy{})
	if db := s.ManagedDatabase(); db != nil {
		if db.StorageSize == nil {
			db.StorageSize = ptr.To(resource.MustParse(builtInStorageSize))
			if storage.DefaultSize != nil {
				db.StorageSize = ptr.To(storage.DefaultSize.DeepCopy())
			}
		}
		if db.StorageClassName == nil && storage.StorageClassName != nil {
			db.StorageClassName = ptr.To(*storage.StorageClassName)
		}
	}
	if s.Backup == nil && c.Backup != nil {
		s.Backup = c.Backup.DeepCopy()
	}
	ingress := ptr.Deref(c.Ingress, v1alpha1.ClassIngress{})
	var problems []string
	switch {
	case s.Ingress == nil && s.Gateway == nil && c.DomainTemplate != "":
		var problem string
		if s.Ingress, problem = classIngress(out, class.Name, c.DomainTemplate, ingress); problem != "" {
			problems = append(problems, problem)
		}
	case s.Ingress != nil && s.Ingress.ClassName == nil && ingress.ClassName != nil:
		s.Ingress.ClassName = ptr.To(*ingress.ClassName)
	}
	problems = append(problems, ingressAnnotations(inst, class)...)
	if s.Backup != nil && s.Backup.Encryption != nil {
		// The API server checked the keys' form; age reads them.
		if _, err := encryption.SpecRecipients(s.Backup.Encryption); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if class == nil {
		return out, problems
	}
	// The instance's own host, not one its class's domainTemplate gave it.
	problems = append(problems, ownHost(&inst.Spec, class)...)
	return out, append(problems, exceeds(s, class)...)
}

// ingressAnnotations lists the annotations of the instance's own Ingress that its class does not
// allow: an annotation configures the ingress controller every tenant shares. Those of the
// class's domainTemplate Ingress are the host's own.
func ingressAnnotations(inst *v1alpha1.KintoInstance, class *v1alpha1.KintoHostingClass) []string {
	if inst.Spec.Ingress == nil || len(inst.Spec.Ingress.Annotations) == 0 {
		return nil
	}
	var allowed []string
	if class != nil && class.Spec.Ingress != nil {
		allowed = class.Spec.Ingress.AllowedAnnotations
	}
	var out []string
	for _, key := range slices.Sorted(maps.Keys(inst.Spec.Ingress.Annotations)) {
		if slices.Contains(allowed, key) {
			continue
		}
		switch {
		case class == nil:
			out = append(out, fmt.Sprintf("spec.ingress.annotations has %s: an instance without a hosting class may set no Ingress annotation", key))
		default:
			out = append(out, fmt.Sprintf("spec.ingress.annotations has %s, which hosting class %s does not allow (it allows %s)",
				key, class.Name, listOrNone(allowed)))
		}
	}
	return out
}

// beyondBounds lists the ways the resources at field ask for more than bounds: a limit above
// its bound or missing, a request above it.
func beyondBounds(field string, r corev1.ResourceRequirements, bounds v1alpha1.ResourceBounds, className string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(bounds)) {
		max := bounds[name]
		limit, ok := r.Limits[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s.limits.%s is not set, and hosting class %s allows at most %s: set a limit within it",
				field, name, className, max.String()))
		case limit.Cmp(max) > 0:
			out = append(out, fmt.Sprintf("%s.limits.%s is %s, above the %s hosting class %s allows", field, name, limit.String(), max.String(), className))
		}
		if request, ok := r.Requests[name]; ok && request.Cmp(max) > 0 {
			out = append(out, fmt.Sprintf("%s.requests.%s is %s, above the %s hosting class %s allows", field, name, request.String(), max.String(), className))
		}
	}
	return out
}

// backupBeyond lists the ways the effective backups exceed the class's limits.
func backupBeyond(b *v1alpha1.BackupSpec, limits *v1alpha1.BackupLimits, className string) []string {
	if b == nil || limits == nil {
		return nil
	}
	var out []string
	if max := limits.MaxCount; max != nil {
		switch count := ptr.Deref(b.Retention, v1alpha1.BackupRetention{}).Count; {
		case count == nil:
			out = append(out, fmt.Sprintf("spec.backup.retention.count is not set, and hosting class %s keeps at most %d backups: set a count within it", className, *max))
		case *count > *max:
			out = append(out, fmt.Sprintf("spec.backup.retention.count is %d, above the %d hosting class %s allows", *count, *max, className))
		}
	}
	if min := limits.MinInterval; min != nil && b.Schedule != "" {
		if gap, ok := shortestGap(b.Schedule); ok && gap < min.Duration {
			out = append(out, fmt.Sprintf("spec.backup.schedule %q runs every %s at times, more often than the %s hosting class %s allows",
				b.Schedule, gap, min.Duration, className))
		}
	}
	if max := limits.MaxVolumeSize; max != nil && b.Destination != nil && b.Destination.Volume != nil && b.Destination.Volume.Size.Cmp(*max) > 0 {
		out = append(out, fmt.Sprintf("spec.backup.destination.volume.size is %s, above the %s hosting class %s allows",
			b.Destination.Volume.Size.String(), max.String(), className))
	}
	return out
}

// shortestGap is the shortest time between two runs of a cron schedule over a year (every
// schedule repeats within one), false when it does not parse (the API refuses those).
func shortestGap(schedule string) (time.Duration, bool) {
	sched, err := cron.ParseStandard(schedule)
	if err != nil {
		return 0, false
	}
	start := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	prev := sched.Next(start)
	shortest := time.Duration(1<<63 - 1)
	for i := 0; i < 2000 && prev.Before(start.AddDate(1, 0, 0)); i++ {
		next := sched.Next(prev)
		shortest = min(shortest, next.Sub(prev))
		prev = next
	}
	return shortest, true
}

// podsBeyond lists what the instance chooses about its pods that the class does not allow.
func podsBeyond(s *v1alpha1.KintoInstanceSpec, pods *v1alpha1.PodsPolicy, className string) []string {
	if pods == nil {
		return nil
	}
	var out []string
	refused := func(what string) {
		out = append(out, fmt.Sprintf("%s, which hosting class %s does not allow", what, className))
	}
	if !pods.AllowImages {
		if s.Image != "" {
			refused("spec.image is set")
		}
		if db := s.ManagedDatabase(); db != nil && db.Image != "" {
			refused("spec.database.managed.image is set")
		}
	}
	if s.PriorityClassName != "" && !slices.Contains(pods.AllowedPriorityClasses, s.PriorityClassName) {
		out = append(out, fmt.Sprintf("spec.priorityClassName is %s, which hosting class %s does not allow (it allows %s)",
			s.PriorityClassName, className, listOrNone(pods.AllowedPriorityClasses)))
	}
	if !pods.AllowPlacement {
		if len(s.NodeSelector) > 0 {
			refused("spec.nodeSelector is set")
		}
		if len(s.Tolerations) > 0 {
			refused("spec.tolerations is set")
		}
		if s.Affinity != nil {
			refused("spec.affinity is set")
		}
	}
	return out
}

// ownHost lists what is wrong with the instance's own host under its class's suffixes.
func ownHost(s *v1alpha1.KintoInstanceSpec, class *v1alpha1.KintoHostingClass) []string {
	if class.Spec.Ingress == nil || class.Spec.Ingress.AllowedHostSuffixes == nil {
		return nil
	}
	suffixes := class.Spec.Ingress.AllowedHostSuffixes
	check := func(field, host string) []string {
		for _, suffix := range suffixes {
			if strings.HasSuffix(host, "."+suffix) {
				return nil
			}
		}
		if len(suffixes) == 0 {
			return []string{fmt.Sprintf("%s is %s: hosting class %s gives its instances the hosts of its domainTemplate only", field, host, class.Name)}
		}
		return []string{fmt.Sprintf("%s is %s, which hosting class %s does not allow (hosts must end in .%s)",
			field, host, class.Name, strings.Join(suffixes, " or ."))}
	}
	switch {
	case s.Ingress != nil:
		return check("spec.ingress.host", s.Ingress.Host)
	case s.Gateway != nil:
		return check("spec.gateway.host", s.Gateway.Host)
	}
	return nil
}

// classIngress is the Ingress a class's domainTemplate gives inst, and what is wrong with its
// host, if anything: the class's rules check the template, but only a name fills it (a label of
// the template may outgrow 63 characters).
func classIngress(inst *v1alpha1.KintoInstance, className, template string, ingress v1alpha1.ClassIngress) (*v1alpha1.IngressSpec, string) {
	host := strings.NewReplacer("{name}", inst.Name, "{namespace}", inst.Namespace).Replace(template)
	errs := validation.IsDNS1123Subdomain(host)
	for _, label := range strings.Split(host, ".") {
		if len(label) > validation.DNS1123LabelMaxLength {
			errs = append(errs, fmt.Sprintf("its label %s is longer than %d characters", label, validation.DNS1123LabelMaxLength))
		}
	}
	var problem string
	if len(errs) > 0 {
		problem = fmt.Sprintf("hosting class %s's domainTemplate gives this instance the host %q, which is not a DNS name: %s",
			className, host, strings.Join(errs, "; "))
	}
	spec := &v1alpha1.IngressSpec{Host: host, Annotations: maps.Clone(ingress.Annotations)}
	if ingress.ClassName != nil {
		spec.ClassName = ptr.To(*ingress.ClassName)
	}
	if ingress.Issuer != nil {
		spec.TLS = &v1alpha1.IngressTLS{Issuer: ingress.Issuer.DeepCopy()}
	}
	return spec, problem
}

// exceeds lists the ways an effective spec asks for more than class allows.
func exceeds(s *v1alpha1.KintoInstanceSpec, class *v1alpha1.KintoHostingClass) []string {
	c := class.Spec
	var out []string
	above := func(field, got, max string) {
		out = append(out, fmt.Sprintf("%s is %s, above the %s hosting class %s allows", field, got, max, class.Name))
	}
	if max := ptr.Deref(c.Replicas, v1alpha1.ReplicasPolicy{}).Max; max != nil && *s.Replicas > *max {
		above("spec.replicas", fmt.Sprint(*s.Replicas), fmt.Sprint(*max))
	}
	out = append(out, beyondBounds("spec.resources", *s.Resources, ptr.Deref(c.Resources, v1alpha1.ResourcesPolicy{}).Max, class.Name)...)
	if max := ptr.Deref(c.Storage, v1alpha1.StoragePolicy{}).MaxSize; max != nil {
		if db := s.ManagedDatabase(); db != nil && db.StorageSize.Cmp(*max) > 0 {
			above("spec.database.managed.storageSize", db.StorageSize.String(), max.String())
		}
	}
	if db := s.ManagedDatabase(); db != nil && len(c.DatabaseResources) > 0 {
		out = append(out, beyondBounds("spec.database.managed.resources", ptr.Deref(db.Resources, corev1.ResourceRequirements{}), c.DatabaseResources, class.Name)...)
	}
	out = append(out, backupBeyond(s.Backup, c.BackupLimits, class.Name)...)
	out = append(out, podsBeyond(s, c.Pods, class.Name)...)
	if c.Updates != nil && s.Updates != nil {
		if catalog.Looser(*c.Updates, *s.Updates) {
			out = append(out, fmt.Sprintf("spec.updates.automatic is %s, more than the %s hosting class %s allows (spec.updates.automatic may only be stricter)",
				s.Updates.Automatic, catalog.Automatic(*c.Updates, v1alpha1.InstanceUpdates{}), class.Name))
		}
		if s.Image != "" {
			out = append(out, fmt.Sprintf("spec.image is set while spec.updates follows the release catalogue of hosting class %s, whose images the host chooses", class.Name))
		}
	}
	if c.AllowedPlugins != nil {
		for _, p := range s.Plugins {
			if !slices.Contains(c.AllowedPlugins, p) {
				out = append(out, fmt.Sprintf("spec.plugins has %s, which hosting class %s does not allow (it allows %s)",
					p, class.Name, listOrNone(pluginNames(c.AllowedPlugins))))
			}
		}
	}
	if a := c.AllowedAuth; a != nil {
		notAllowed := func(what string) {
			out = append(out, fmt.Sprintf("%s, which hosting class %s does not allow", what, class.Name))
		}
		if s.AccountsEnabled() && !a.Accounts {
			notAllowed("spec.auth.accounts is enabled")
		}
		if s.Auth != nil && s.Auth.BasicAuth && !a.BasicAuth {
			notAllowed("spec.auth.basicAuth is on")
		}
		if len(s.OpenIDConnectProviders()) > 0 && !a.OpenIDConnect {
			notAllowed("spec.auth.openIDConnect lists providers")
		}
	}
	return out
}

func pluginNames(plugins []v1alpha1.Plugin) []string {
	names := make([]string, len(plugins))
	for i, p := range plugins {
		names[i] = string(p)
	}
	return names
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}
