package portal

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

var templateFuncs = template.FuncMap{
	// titled hands the shared header its title with the page.
	"titled": func(title string, p page) titledPage { return titledPage{Title: title, Page: p} },
	"ago": func(t metav1.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t.Time).Truncate(time.Second).String() + " ago"
	},
}

// plan is a hosting class offered to the member.
type plan struct{ Name string }

// instanceView is what the page shows of one instance.
type instanceView struct {
	Namespace, Name, Plan, URL, State, DeletionPolicy string
	Hibernate, Deleting                               bool
	LastBackup                                        *v1alpha1.LastBackup
	Steps                                             []step
}

// step is one condition of the instance's creation, in the order they become true.
type step struct {
	Title, Status, Message string
}

// creationSteps are the conditions a new instance goes through, in order.
var creationSteps = []struct{ condition, title string }{
	{v1alpha1.ConditionHostingClass, "Plan applied"},
	{v1alpha1.ConditionDatabaseReady, "Database ready"},
	{v1alpha1.ConditionSchemaMigrated, "Database schema ready"},
	{v1alpha1.ConditionServerReady, "Kinto server ready"},
	{v1alpha1.ConditionReady, "Serving requests"},
}

func viewOf(inst *v1alpha1.KintoInstance) instanceView {
	v := instanceView{Namespace: inst.Namespace, Name: inst.Name, Plan: inst.Status.ClassName, URL: inst.Status.URL,
		DeletionPolicy: string(inst.Spec.DeletionPolicy), Hibernate: inst.Spec.Hibernate, Deleting: inst.DeletionTimestamp != nil,
		LastBackup: inst.Status.LastBackup}
	if v.Plan == "" {
		v.Plan = inst.Spec.ClassName
	}
	for _, s := range creationSteps {
		st := step{Title: s.title, Status: "Waiting"}
		if c := meta.FindStatusCondition(inst.Status.Conditions, s.condition); c != nil {
			st.Message = c.Message
			switch c.Status {
			case metav1.ConditionTrue:
				st.Status = "Done"
			case metav1.ConditionFalse:
				st.Status = "Not yet"
			}
		}
		v.Steps = append(v.Steps, st)
	}
	ready := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionReady)
	hibernating := meta.IsStatusConditionTrue(inst.Status.Conditions, v1alpha1.ConditionHibernating)
	switch {
	case v.Deleting:
		v.State = "Being deleted"
	case inst.Spec.Hibernate && hibernating:
		v.State = "Hibernating"
	case inst.Spec.Hibernate:
		v.State = "Going to sleep"
	case ready != nil && ready.Status == metav1.ConditionTrue:
		v.State = "Ready"
	case hibernating:
		v.State = "Waking up"
	default:
		v.State = "Starting"
	}
	return v
}

// titledPage is what the shared header ("top") gets.
type titledPage struct {
	Title string
	Page  page
}

// page is what every template gets.
type page struct {
	Member    *member
	Instances []instanceView
	Instance  *instanceView
	Backups   []v1alpha1.KintoBackup
	Plans     []plan
	Message   string
}

func (s *Server) render(w http.ResponseWriter, code int, name string, p page) {
	var b strings.Builder
	if err := s.pages.ExecuteTemplate(&b, name, p); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// fail shows the API server's refusal in the member's words, with its status code. A refusal
// to read an instance shows as "not found", so that a member cannot learn what others have.
func (s *Server) fail(w http.ResponseWriter, m *member, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code = int(status.Status().Code)
		msg = status.Status().Message
	}
	if code == http.StatusForbidden && strings.Contains(msg, `cannot get resource "kintoinstances"`) {
		code, msg = http.StatusNotFound, "no such instance"
	}
	s.render(w, code, "error", page{Member: m, Message: msg})
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, m *member) {
	var list v1alpha1.KintoInstanceList
	opts := []client.ListOption{client.InNamespace(m.Namespace)}
	if m.Admin {
		opts = nil
	}
	if err := m.kube.List(r.Context(), &list, opts...); apierrors.IsForbidden(err) {
		s.render(w, http.StatusForbidden, "error", page{Member: m,
			Message: fmt.Sprintf("Your space (namespace %s) is not open to you yet: ask the co-op's administrators.", m.Namespace)})
		return
	} else if err != nil {
		s.fail(w, m, err)
		return
	}
	p := page{Member: m, Plans: s.plans(r.Context(), m)}
	for i := range list.Items {
		p.Instances = append(p.Instances, viewOf(&list.Items[i]))
	}
	s.render(w, http.StatusOK, "home", p)
}

// plans are the hosting classes open to the member's namespace, as far as they may read them:
// classes without a namespace selector, and those whose selector picks their namespace.
func (s *Server) plans(ctx context.Context, m *member) []plan {
	var classes v1alpha1.KintoHostingClassList
	if err := m.kube.List(ctx, &classes); err != nil {
		return nil
	}
	var ns corev1.Namespace
	nsErr := m.kube.Get(ctx, client.ObjectKey{Name: m.Namespace}, &ns)
	var out []plan
	for _, c := range classes.Items {
		if c.Spec.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(c.Spec.NamespaceSelector)
			if err != nil || nsErr != nil || !sel.Matches(labels.Set(ns.Labels)) {
				continue
			}
		}
		out = append(out, plan{Name: c.Name})
	}
	return out
}

var instanceName = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

func (s *Server) create(w http.ResponseWriter, r *http.Request, m *member) {
	name, planName := r.PostFormValue("name"), r.PostFormValue("plan")
	if !instanceName.MatchString(name) || len(name) > 40 {
		s.render(w, http.StatusBadRequest, "error", page{Member: m, Message: "name: use lower-case letters, digits and '-', starting with a letter, at most 40 characters"})
		return
	}
	plans := s.plans(r.Context(), m)
	if !slices.Contains(plans, plan{Name: planName}) && (planName != "" || len(plans) > 0) {
		s.render(w, http.StatusBadRequest, "error", page{Member: m, Message: fmt.Sprintf("plan: %q is not offered to you", planName)})
		return
	}
	inst := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: name},
		Spec: v1alpha1.KintoInstanceSpec{ClassName: planName}}
	if err := m.kube.Create(r.Context(), inst); err != nil {
		s.fail(w, m, err)
		return
	}
	http.Redirect(w, r, "/instances/"+inst.Namespace+"/"+inst.Name, http.StatusSeeOther)
}

// instance reads the instance of the request's path as the member.
func (s *Server) instance(w http.ResponseWriter, r *http.Request, m *member) (*v1alpha1.KintoInstance, bool) {
	var inst v1alpha1.KintoInstance
	if err := m.kube.Get(r.Context(), client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}, &inst); err != nil {
		s.fail(w, m, err)
		return nil, false
	}
	return &inst, true
}

func (s *Server) instancePage(w http.ResponseWriter, r *http.Request, m *member) {
	inst, ok := s.instance(w, r, m)
	if !ok {
		return
	}
	var backups v1alpha1.KintoBackupList
	if err := m.kube.List(r.Context(), &backups, client.InNamespace(inst.Namespace)); err != nil {
		s.fail(w, m, err)
		return
	}
	v := viewOf(inst)
	p := page{Member: m, Instance: &v}
	for _, b := range backups.Items {
		if b.Spec.Instance == inst.Name {
			p.Backups = append(p.Backups, b)
		}
	}
	slices.SortFunc(p.Backups, func(a, b v1alpha1.KintoBackup) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
	s.render(w, http.StatusOK, "instance", p)
}

// progress is the instance's state and steps alone, which the instance page fetches every few
// seconds to follow its creation without a reload.
func (s *Server) progress(w http.ResponseWriter, r *http.Request, m *member) {
	inst, ok := s.instance(w, r, m)
	if !ok {
		return
	}
	v := viewOf(inst)
	s.render(w, http.StatusOK, "progress", page{Member: m, Instance: &v})
}

func (s *Server) backupNow(w http.ResponseWriter, r *http.Request, m *member) {
	inst, ok := s.instance(w, r, m)
	if !ok {
		return
	}
	backup := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, GenerateName: inst.Name + "-"},
		Spec: v1alpha1.KintoBackupSpec{Instance: inst.Name}}
	if err := m.kube.Create(r.Context(), backup); err != nil {
		s.fail(w, m, err)
		return
	}
	http.Redirect(w, r, "/instances/"+inst.Namespace+"/"+inst.Name, http.StatusSeeOther)
}

func (s *Server) hibernate(sleep bool) memberHandler {
	return func(w http.ResponseWriter, r *http.Request, m *member) {
		inst, ok := s.instance(w, r, m)
		if !ok {
			return
		}
		patch := client.MergeFrom(inst.DeepCopy())
		inst.Spec.Hibernate = sleep
		if err := m.kube.Patch(r.Context(), inst, patch); err != nil {
			s.fail(w, m, err)
			return
		}
		http.Redirect(w, r, "/instances/"+inst.Namespace+"/"+inst.Name, http.StatusSeeOther)
	}
}

func (s *Server) confirmDelete(w http.ResponseWriter, r *http.Request, m *member) {
	inst, ok := s.instance(w, r, m)
	if !ok {
		return
	}
	v := viewOf(inst)
	s.render(w, http.StatusOK, "delete", page{Member: m, Instance: &v})
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, m *member) {
	inst, ok := s.instance(w, r, m)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != inst.Name {
		v := viewOf(inst)
		s.render(w, http.StatusBadRequest, "delete", page{Member: m, Instance: &v, Message: "confirm: type the instance's name, " + inst.Name + ", to delete it"})
		return
	}
	if err := m.kube.Delete(r.Context(), inst, client.Preconditions{UID: &inst.UID}); err != nil {
		s.fail(w, m, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, m *member) {
	inst, ok := s.instance(w, r, m)
	if !ok {
		return
	}
	var backup v1alpha1.KintoBackup
	if err := m.kube.Get(r.Context(), client.ObjectKey{Namespace: inst.Namespace, Name: r.PathValue("backup")}, &backup); err != nil {
		s.fail(w, m, err)
		return
	}
	switch {
	case backup.Spec.Instance != inst.Name:
		s.render(w, http.StatusNotFound, "error", page{Member: m, Message: "no such backup of " + inst.Name})
	case backup.Status.Phase != v1alpha1.BackupCompleted:
		s.render(w, http.StatusConflict, "error", page{Member: m, Message: fmt.Sprintf("backup %s is not complete (%s)", backup.Name, backup.Status.Phase)})
	default:
		s.serveBackup(w, r, m, &backup)
	}
}
